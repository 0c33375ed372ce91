"""Service endpoints and credentials: always from the environment, never from code.

Locally, ``make up`` writes them to ``.genaug/stack.env``; ``load_stack_env`` copies that
file's values into the environment without overriding what is already set, so a value
exported by hand (or injected by a Kubernetes Secret on a cluster) wins.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Sequence

from genaug.services.names import ADMIN_KEY_ENV

STACK_ENV_VAR = "GENAUG_STACK_ENV"


# The checkout this package runs from (an editable install): where `make up` wrote it.
CHECKOUT_STACK_ENV = Path(__file__).resolve().parents[3] / ".genaug" / "stack.env"


def stack_env_path() -> Path:
    """``$GENAUG_STACK_ENV``; else ``.genaug/stack.env`` in the current directory if it
    exists; else the one in this package's checkout (so commands work from any folder)."""
    if STACK_ENV_VAR in os.environ:
        return Path(os.environ[STACK_ENV_VAR])
    here = Path.cwd() / ".genaug" / "stack.env"
    return here if here.is_file() else CHECKOUT_STACK_ENV


def read_env_file(path: str | Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments are skipped; quotes are not interpreted."""
    values = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip().removeprefix("export ").strip()] = value.strip()
    return values


# Env files as last read, by path, with the (inode, size, mtime in ns) they had then.
# Promotion loads admin.env on every MLflow registry call and require() the stack's env on
# every endpoint look-up: a stat is enough while the file is unchanged. `make up` rewrites
# it by rename (a new inode), and another session's file has another path.
_READ: dict[Path, tuple[tuple[int, int, int], dict[str, str]]] = {}


def _env_file(path: Path) -> dict[str, str]:
    """``read_env_file(path)``, read again only when the file changed; {} if it is not a file."""
    try:
        info = path.stat()
    except OSError:
        return {}
    if not stat.S_ISREG(info.st_mode):
        return {}
    stamp = (info.st_ino, info.st_size, info.st_mtime_ns)
    known = _READ.get(path)
    if known is None or known[0] != stamp:
        known = _READ[path] = (stamp, read_env_file(path))
    return dict(known[1])


def load_stack_env(path: str | Path | None = None) -> dict[str, str]:
    """Fill unset environment variables from the stack's env file, if it exists.

    Every call fills them again, from the file as it is now (a test that removed a variable
    gets it back, as before), but an unchanged file is parsed only once."""
    values = _env_file(Path(path) if path else stack_env_path())
    for key, value in values.items():
        os.environ.setdefault(key, value)
    return values


def load_admin_env() -> dict[str, str]:
    """Fill unset variables from ``admin.env`` beside the stack's env file: the Triton admin
    key and the promote identity's S3 keys, which only promotion and operators read."""
    return load_stack_env(stack_env_path().with_name("admin.env"))


def admin_key() -> str:
    """Triton's admin key: $GENAUG_TRITON_ADMIN_KEY (from a Secret on a cluster), else the
    local stack's ``admin.env``."""
    load_admin_env()
    (key,) = require([ADMIN_KEY_ENV], "Triton's admin key (the local stack keeps it in .genaug/admin.env)")
    return key


def require(names: Sequence[str], what: str, error: type[Exception] = RuntimeError) -> list[str]:
    """The values of the environment variables ``names``, after ``load_stack_env``.

    Raises ``error`` naming every unset one and the fix: `make up` writes them, or export
    ``what`` (e.g. "the S3 endpoint and keys").
    """
    load_stack_env()
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise error(f"{', '.join(missing)} {verb} not set; run `make up` (it writes .genaug/stack.env) "
                    f"or export {what}")
    return [os.environ[name] for name in names]
