"""A private local stack (S3, MLflow, Triton) for the benchmarks that need servers: fresh
state in a temporary folder on free loopback ports, stopped and deleted afterwards, so a
benchmark never resumes a checkpoint or hits a cache that an earlier run left."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from genaug.services.endpoints import read_env_file
from genaug.stack.config import default_triton_venv

REPO = Path(__file__).resolve().parents[1]


def _stack(command: str, state: Path) -> None:
    argv = [sys.executable, "-m", "genaug.stack", command, "--state-dir", str(state)]
    if command == "up":
        # The Triton venv is shared with `make up`: built once, never per benchmark.
        argv += ["--free-ports", "--triton-venv", str(default_triton_venv().resolve())]
    env = {k: v for k, v in os.environ.items() if not (k.startswith("GENAUG_") and k.endswith("_PORT"))}
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"genaug.stack {command} failed:\n{proc.stdout}\n{proc.stderr}")


@contextlib.contextmanager
def private_stack():
    """Yield (state folder, environment with the stack's endpoints and keys)."""
    with tempfile.TemporaryDirectory(prefix="genaug-bench-") as tmp:
        state = Path(tmp) / "stack"
        _stack("up", state)
        try:
            env = {**read_env_file(state / "stack.env"), **read_env_file(state / "admin.env"),
                   "GENAUG_STACK_ENV": str(state / "stack.env"), "GENAUG_KFP_CACHE_DIR": str(Path(tmp) / "kfp-cache")}
            yield Path(tmp), env
        finally:
            _stack("down", state)
