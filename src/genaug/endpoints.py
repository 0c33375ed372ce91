"""Service endpoints and credentials: always from the environment, never from code.

Locally, ``make up`` writes them to ``.genaug/stack.env``; ``load_stack_env`` copies that
file's values into the environment without overriding what is already set, so a value
exported by hand (or injected by a Kubernetes Secret on a cluster) wins.
"""

from __future__ import annotations

import os
from pathlib import Path

STACK_ENV_VAR = "GENAUG_STACK_ENV"


# The checkout this package runs from (an editable install): where `make up` wrote it.
CHECKOUT_STACK_ENV = Path(__file__).resolve().parents[2] / ".genaug" / "stack.env"


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


def load_stack_env(path: str | Path | None = None) -> dict[str, str]:
    """Fill unset environment variables from the stack's env file, if it exists."""
    path = Path(path) if path else stack_env_path()
    if not path.is_file():
        return {}
    values = read_env_file(path)
    for key, value in values.items():
        os.environ.setdefault(key, value)
    return values


def require(name: str, fix: str = "run `make up` (or export it)") -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set; {fix}")
    return value
