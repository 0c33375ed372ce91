"""The real local stack (SeaweedFS S3, MLflow, Triton) for the integration tests.

One stack per test session, started by the same launcher a developer runs
(``python -m genaug.stack up --free-ports --state-dir <tmp>``), so the tests exercise
exactly what ``make up`` starts. Its endpoints and keys (stack.env and admin.env) are
exported into ``os.environ`` for the session, so library code finds them as it would
after ``make up``. Teardown runs ``down`` and fails if any started process survives.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from genaug.services.endpoints import read_env_file

REPO = Path(__file__).resolve().parents[1]
# Shared across sessions (and with `make up`): installing Triton's venv costs ~30 s once.
TRITON_VENV = Path(os.environ.get("GENAUG_TRITON_VENV", REPO / ".genaug" / "triton-venv"))
# A hang guard for the launcher, not a performance assertion: a cold `up` installs a venv.
LAUNCHER_TIMEOUT_S = 900


def _alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return raw[raw.rindex(")") + 2] != "Z"


def _group(pgid: int) -> list[int]:
    """Live members of process group ``pgid``, read straight from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pgid:
            try:
                raw = (entry / "stat").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            fields = raw[raw.rindex(")") + 2:].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


@dataclass
class LocalStack:
    """Endpoints, keys and the state folder of the session's stack."""

    state_dir: Path
    env: dict[str, str]
    admin_key: str
    started_pids: set[int] = field(default_factory=set)

    @property
    def s3_endpoint(self) -> str:
        return self.env["GENAUG_S3_ENDPOINT"]

    @property
    def access_key(self) -> str:
        return self.env["GENAUG_S3_ACCESS_KEY"]

    @property
    def secret_key(self) -> str:
        return self.env["GENAUG_S3_SECRET_KEY"]

    def keys(self, role: str = "pipeline"):
        """S3Credentials of one of the stack's identities: admin, pipeline, promote, mlflow, triton."""
        from genaug.stack.config import StatePaths
        from genaug.stack.credentials import load_or_create_s3_identities

        return getattr(load_or_create_s3_identities(StatePaths(self.state_dir)), role)

    @property
    def mlflow_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]

    @property
    def triton_grpc(self) -> str:
        return self.env["GENAUG_TRITON_GRPC"]

    @property
    def triton_http(self) -> str:
        return self.env["GENAUG_TRITON_HTTP"]

    @property
    def triton_metrics(self) -> str:
        """host:port of Triton's Prometheus page (/metrics)."""
        return self.env["GENAUG_TRITON_METRICS"]

    def launcher(self, *args: str) -> subprocess.CompletedProcess:
        """Run ``python -m genaug.stack <args> --state-dir <state>``; output captured."""
        env = {k: v for k, v in os.environ.items()
               # A developer's port overrides must not steer the test stack.
               if not (k.startswith("GENAUG_") and k.endswith("_PORT"))}
        command = [sys.executable, "-m", "genaug.stack", *args, "--state-dir", str(self.state_dir)]
        if args[0] == "up":
            command += ["--free-ports", "--triton-venv", str(TRITON_VENV)]
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=LAUNCHER_TIMEOUT_S)

    def pids(self) -> dict[str, int]:
        """PIDs of the servers as their pid files record them now."""
        return {pid_file.stem: int(json.loads(pid_file.read_text())["pid"])
                for pid_file in (self.state_dir / "run").glob("*.pid")}

    @staticmethod
    def alive(pid: int) -> bool:
        """True if ``pid`` or any member of its process group still runs."""
        return _alive(pid) or bool(_group(pid))

    def up(self) -> subprocess.CompletedProcess:
        result = self.launcher("up")
        self.started_pids |= set(self.pids().values())
        return result


def _output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


@contextlib.contextmanager
def running_stack(state_dir: Path):
    """Start a stack in ``state_dir``; yield its LocalStack with its endpoints and keys in
    ``os.environ`` for the block; then stop it and check that nothing it started survived."""
    handle = LocalStack(state_dir, {}, "")
    result = handle.up()
    if result.returncode != 0:
        handle.launcher("down")
        pytest.fail(f"`python -m genaug.stack up` failed:\n{_output(result)}", pytrace=False)
    handle.env = read_env_file(handle.state_dir / "stack.env")
    admin = read_env_file(handle.state_dir / "admin.env")
    handle.admin_key = admin["GENAUG_TRITON_ADMIN_KEY"]

    patch = pytest.MonkeyPatch()
    for key, value in {**handle.env, **admin}.items():
        patch.setenv(key, value)
    # The local runs' KFP cache belongs to this stack, so no earlier session's entry is hit.
    patch.setenv("GENAUG_KFP_CACHE_DIR", str(handle.state_dir / "kfp-cache"))
    try:
        yield handle
    finally:
        patch.undo()
        handle.started_pids |= set(handle.pids().values())
        result = handle.launcher("down")
        survivors = {pid: _group(pid) for pid in sorted(handle.started_pids) if handle.alive(pid)}
        assert result.returncode == 0, f"`down` failed:\n{_output(result)}"
        assert not survivors, f"processes still alive after `down` (PID: group members): {survivors}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """Start the stack for the session; yield a LocalStack; stop it and check nothing survived."""
    with running_stack(tmp_path_factory.mktemp("genaug-stack")) as handle:
        yield handle
