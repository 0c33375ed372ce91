"""The local stack, as the operator commands see it: the one module of genaug.ops that may
reach genaug.stack (tests/unit/test_layers.py), so backup, restore and gc stay the same code
on a cluster, where there is no such stack.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

from genaug.ops.manifest import BackupError
from genaug.ops.site import Site
from genaug.services import mlflow_access
from genaug.services.store import S3Config
from genaug.ops.databases import SqliteDatabase


def site(state_dir: Path | None = None) -> Site:
    """The stack in ``state_dir`` (default: $GENAUG_STATE_DIR or ./.genaug) as a Site."""
    from genaug.stack import ports
    from genaug.stack.config import StackConfig, StatePaths, default_state_dir
    from genaug.stack.credentials import load_or_create_mlflow_accounts, load_or_create_s3_identities

    paths = StatePaths((state_dir or default_state_dir()).resolve())
    recorded = ports.load_recorded(paths.ports_file)
    if not recorded or not paths.s3_credentials.exists() or not paths.mlflow_accounts.exists():
        raise BackupError(f"no stack in {paths.root}: start one with `make up` (or `python -m genaug.stack up "
                          f"--state-dir {paths.root}`), or name its folder with --state-dir")
    admin = load_or_create_s3_identities(paths).admin  # reads every bucket: an operator's command
    accounts = load_or_create_mlflow_accounts(paths).passwords
    passwords = {mlflow_access.ADMIN_USERNAME: accounts["admin"],
                 **{user: accounts[role] for role, user in mlflow_access.USERNAMES.items()}}
    return Site(S3Config(StackConfig(paths, recorded, Path(".")).address("s3"), admin.access_key, admin.secret_key),
                SqliteDatabase(paths.mlflow_db), SqliteDatabase(paths.mlflow_auth_db), passwords, paths.root)


def mlflow_db(state_dir: Path) -> Path:
    """The stack's MLflow tracking database (SQLite)."""
    from genaug.stack.config import StatePaths

    return StatePaths(Path(state_dir)).mlflow_db


def stop_mlflow(state_dir: Path) -> str:
    """Stop only the stack's MLflow server (S3 and Triton keep running); what was done."""
    from genaug.stack.launcher import stop_server

    return stop_server(state_dir, "mlflow")


def restart(state_dir: Path, out: Callable[[str], None]) -> list[str]:
    """`python -m genaug.stack up`: MLflow starts on the restored databases and the reconcile
    pass serves the champions. A child process, so that its environment stays its own."""
    from genaug.stack.config import default_triton_venv

    result = subprocess.run([sys.executable, "-m", "genaug.stack", "up", "--state-dir", str(state_dir),
                             "--triton-venv", str(default_triton_venv())], capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"the backup was restored but the stack did not start again: {result.stderr.strip()}; "
                          f"fix that and run `python -m genaug.stack up --state-dir {state_dir}`")
    lines = [line.strip() for line in result.stdout.splitlines() if "reconcile" in line]
    for line in lines:
        out(f"  {line}")
    return lines
