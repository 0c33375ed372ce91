"""Where the local stack keeps its state, which ports it uses, and its fixed names.

Everything a server needs to know about the stack is in a ``StackConfig``: the state
folder (``.genaug/`` by default) and the resolved loopback ports. Defaults live here and
nowhere else; every port can be overridden by its ``GENAUG_<NAME>_PORT`` variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

HOST = "127.0.0.1"  # every server binds loopback only


STATE_DIR_ENV = "GENAUG_STATE_DIR"
TRITON_VENV_ENV = "GENAUG_TRITON_VENV"


@dataclass(frozen=True)
class PortSpec:
    """One loopback port: its key in ports.json, its env override and its default."""

    name: str
    default: int
    purpose: str

    @property
    def env(self) -> str:
        return f"GENAUG_{self.name.upper()}_PORT"


# SeaweedFS opens a gRPC port next to every HTTP port (HTTP + 10000 unless given); all
# are set explicitly so that two stacks on one machine never collide on a hidden port.
PORTS: tuple[PortSpec, ...] = (
    PortSpec("s3", 8333, "SeaweedFS S3 API"),
    PortSpec("s3_grpc", 18333, "SeaweedFS S3 gRPC"),
    PortSpec("weed_master", 9333, "SeaweedFS master"),
    PortSpec("weed_master_grpc", 19333, "SeaweedFS master gRPC"),
    PortSpec("weed_volume", 9340, "SeaweedFS volume server"),
    PortSpec("weed_volume_grpc", 19340, "SeaweedFS volume gRPC"),
    PortSpec("weed_filer", 8888, "SeaweedFS filer"),
    PortSpec("weed_filer_grpc", 18888, "SeaweedFS filer gRPC"),
    PortSpec("weed_admin", 23646, "SeaweedFS admin server"),
    PortSpec("weed_admin_grpc", 33646, "SeaweedFS admin gRPC"),
    PortSpec("mlflow", 5000, "MLflow tracking server"),
    PortSpec("triton_http", 8000, "Triton HTTP"),
    PortSpec("triton_grpc", 8001, "Triton gRPC"),
    PortSpec("triton_metrics", 8002, "Triton metrics"),
)
PORT_SPECS = {spec.name: spec for spec in PORTS}


def default_state_dir() -> Path:
    """``$GENAUG_STATE_DIR``, else ``.genaug`` in the current directory (the repo root under make)."""
    return Path(os.environ.get(STATE_DIR_ENV, ".genaug")).resolve()


def default_triton_venv() -> Path:
    """``$GENAUG_TRITON_VENV``, else ``.genaug/triton-venv`` in the current directory.

    Independent of ``--state-dir`` on purpose: test sessions use throwaway state folders
    but should share one ~400 MB venv instead of installing it every session.
    """
    return Path(os.environ.get(TRITON_VENV_ENV, Path(".genaug") / "triton-venv")).resolve()


@dataclass(frozen=True)
class StatePaths:
    """The files and folders of one stack under its state folder."""

    root: Path

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"  # <server>.pid files

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    @property
    def stack_env(self) -> Path:
        return self.root / "stack.env"

    @property
    def admin_env(self) -> Path:
        return self.root / "admin.env"

    @property
    def s3_credentials(self) -> Path:
        return self.root / "s3-credentials.json"

    @property
    def mlflow_accounts(self) -> Path:
        return self.root / "mlflow-accounts.json"

    @property
    def mlflow_reader_env(self) -> Path:
        return self.root / "mlflow-reader.env"

    @property
    def admin_key(self) -> Path:
        return self.root / "triton-admin.key"

    @property
    def seaweed(self) -> Path:
        return self.root / "seaweedfs"

    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        return self.mlflow / "mlflow.db"        # MLflow's tracking database (SQLite)

    @property
    def mlflow_auth_db(self) -> Path:
        return self.mlflow / "basic_auth.db"    # MLflow's accounts and grants (SQLite)

    @property
    def triton(self) -> Path:
        return self.root / "triton"

    def log(self, server: str) -> Path:
        return self.logs / f"{server}.log"

    def pid(self, server: str) -> Path:
        return self.run / f"{server}.pid"

    def create(self) -> None:
        """Make the folders; the root is 0700 because it holds keys."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # also when it already existed (e.g. made by the venv lock)
        for folder in (self.logs, self.run):
            folder.mkdir(exist_ok=True)


@dataclass(frozen=True)
class StackConfig:
    """Everything the server modules need: state paths, resolved ports, the Triton venv."""

    paths: StatePaths
    ports: Mapping[str, int]
    triton_venv: Path
    host: str = HOST

    def address(self, port_name: str) -> str:
        """``host:port`` of one named port."""
        return f"{self.host}:{self.ports[port_name]}"
