"""The stack's secrets: S3 keys, MLflow's accounts and the Triton admin key, made once and
kept 0600.

Each is generated with ``secrets`` on the first ``up`` and reused afterwards. Reuse
matters for S3: SeaweedFS keeps accepting keys it once saw for the same data folder, so
rotating by regenerating would silently leave the old key valid.

The admin key guards Triton's model-repository API (load/unload/index). It is kept out of
``stack.env`` so that code which only infers never holds it; promotion reads it from
``admin.env`` (``GENAUG_TRITON_ADMIN_KEY``) or through ``admin_key()``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import string
from dataclasses import dataclass
from pathlib import Path

from genaug.stack.config import StatePaths, default_state_dir
from genaug.stack.errors import StackError

from genaug.services.names import ADMIN_KEY_ENV

_ALNUM_UPPER = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str


def _write_secret(path: Path, text: str) -> None:
    """Create ``path`` with mode 0600 from the start (never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _replace_secret(path: Path, text: str) -> None:
    """Replace a secret file whole: written 0600 beside it, then renamed over it."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    _write_secret(tmp, text)
    os.replace(tmp, path)


def _read_secret(path: Path) -> str:
    """Read a secret file, tightening its mode to 0600 if someone loosened it."""
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)
    return path.read_text().strip()


# One S3 identity per role, each with only what it needs (genaug.stack.seaweed grants them):
# pipeline: the steps' buckets, not Triton's; promote: Triton's repository and the ledger
# (promotion, the reconciler, operator commands); mlflow and triton: their servers.
ROLES = ("pipeline", "promote", "mlflow", "triton")


@dataclass(frozen=True)
class StackIdentities:
    """admin creates buckets (the launcher only); the others are ROLES."""

    admin: S3Credentials
    pipeline: S3Credentials
    promote: S3Credentials
    mlflow: S3Credentials
    triton: S3Credentials


def _new_pair(prefix: str) -> dict:
    """20-char access key, 40-char secret (AWS's lengths)."""
    return {"access_key": prefix + "".join(secrets.choice(_ALNUM_UPPER) for _ in range(20 - len(prefix))),
            "secret_key": "".join(secrets.choice(_ALNUM) for _ in range(40))}


def load_or_create_s3_identities(paths: StatePaths) -> StackIdentities:
    """The stack's S3 identities, created on first use (a stack made before roles existed
    keeps its admin pair and gains the role pairs)."""
    path = paths.s3_credentials
    if not path.exists():
        _write_secret(path, json.dumps(_new_pair("GENAUG")) + "\n")
    try:
        data = json.loads(_read_secret(path))
        admin = S3Credentials(data["access_key"], data["secret_key"])
        roles = data.get("roles") or {}
    except (ValueError, KeyError) as err:
        raise StackError(f"{path} is not the stack's S3 credentials file ({err}); restore it from a "
                         f"backup, or delete it AND {paths.seaweed} to start with empty storage") from err
    missing = [role for role in ROLES if role not in roles]
    if missing:
        roles.update({role: _new_pair(role[:3].upper()) for role in missing})
        _replace_secret(path, json.dumps({**data, "roles": roles}) + "\n")
    return StackIdentities(admin, **{role: S3Credentials(**roles[role]) for role in ROLES})



# MLflow's accounts (genaug.services.mlflow_access says what each may do).
MLFLOW_ROLES = ("admin", "pipeline", "promote", "reader")


@dataclass(frozen=True)
class MlflowAccounts:
    """The MLflow server's Flask secret key (CSRF; one value for every worker) and each
    role's password."""

    secret_key: str
    passwords: dict[str, str]


def _password() -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(32))


def load_or_create_mlflow_accounts(paths: StatePaths) -> MlflowAccounts:
    """The MLflow accounts, created on first use (a role added later gains a password)."""
    path = paths.mlflow_accounts
    if not path.exists():
        _write_secret(path, json.dumps({"secret_key": secrets.token_hex(32), "passwords": {}}) + "\n")
    try:
        data = json.loads(_read_secret(path))
        secret_key, passwords = data["secret_key"], dict(data["passwords"])
    except (ValueError, KeyError, TypeError) as err:
        raise StackError(f"{path} is not the stack's MLflow accounts file ({err}); restore it from a backup, "
                         f"or delete it AND {paths.mlflow}/basic_auth.db to make new accounts") from err
    missing = [role for role in MLFLOW_ROLES if role not in passwords]
    if missing:
        passwords.update({role: _password() for role in missing})
        _replace_secret(path, json.dumps({"secret_key": secret_key, "passwords": passwords}) + "\n")
    return MlflowAccounts(secret_key, passwords)


def load_or_create_admin_key(paths: StatePaths) -> str:
    """The Triton admin key (48 hex chars), created on first use."""
    if not paths.admin_key.exists():
        _write_secret(paths.admin_key, secrets.token_hex(24) + "\n")
    key = _read_secret(paths.admin_key)
    if not key:
        raise StackError(f"{paths.admin_key} is empty; delete it and run `python -m genaug.stack up` "
                         "to make a new admin key (a running Triton must be restarted: down, then up)")
    return key


def admin_key(state_dir: str | os.PathLike | None = None) -> str:
    """The Triton admin key of a stack.

    With ``state_dir`` given, read it from that stack's state folder. Without, use
    ``$GENAUG_TRITON_ADMIN_KEY`` (how a cluster injects it), else the default state folder.
    """
    if state_dir is None and os.environ.get(ADMIN_KEY_ENV):
        return os.environ[ADMIN_KEY_ENV]
    paths = StatePaths(Path(state_dir).resolve() if state_dir is not None else default_state_dir())
    if not paths.admin_key.exists():
        raise StackError(f"no Triton admin key at {paths.admin_key}; run `python -m genaug.stack up"
                         f" --state-dir {paths.root}` or export {ADMIN_KEY_ENV}")
    return _read_secret(paths.admin_key)

