"""The MLflow tracking server: sqlite in the state folder, artifacts proxied into S3.

Clients only talk to MLflow (``mlflow-artifacts:`` URIs); the server alone holds the S3
keys and writes into ``s3://genaug-mlflow``.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from genaug.services.names import MLFLOW_BUCKET
from genaug.stack.config import StackConfig
from genaug.stack.credentials import S3Credentials
from genaug.stack.errors import StackError


def mlflow_binary() -> Path:
    path = Path(sys.executable).parent / "mlflow"
    if not path.exists():
        raise StackError(f"no `mlflow` beside {sys.executable}; run `make venv` (pyproject pins mlflow==3.17.2)")
    return path


class MlflowServer:
    name = "mlflow"
    port_names = ("mlflow",)
    # ~14 s on a new database and ~5 s on restart with 2 idle cores; the CPU may be shared.
    ready_timeout_s = 180.0

    def __init__(self, cfg: StackConfig, creds: S3Credentials):
        self.cfg = cfg
        self.creds = creds
        self.db = cfg.paths.mlflow / "mlflow.db"

    @property
    def hint(self) -> str:
        return (f"read the log above: alembic/database errors mean {self.db} is damaged or from "
                "another MLflow version (move it away to start a new one); 'address already in use' "
                "means a port clash (set GENAUG_MLFLOW_PORT or use --free-ports)")

    @property
    def url(self) -> str:
        return f"http://{self.cfg.address('mlflow')}"

    def describe(self) -> str:
        return self.url

    def prepare(self) -> None:
        self.db.parent.mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict[str, str]]:
        argv = [str(mlflow_binary()), "server",
                "--backend-store-uri", f"sqlite:///{self.db}",
                "--artifacts-destination", f"s3://{MLFLOW_BUCKET}",
                "--host", self.cfg.host, "--port", str(self.cfg.ports["mlflow"]),
                "--workers", "1"]
        env = dict(os.environ)
        # MLflow 3.17's job runner (GenAI judges, trace rollups; nothing this project uses)
        # starts 8 extra ~240 MB processes and doubles start-up on 2 cores. Export
        # MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true to get it back.
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        env.update({
            "MLFLOW_S3_ENDPOINT_URL": f"http://{self.cfg.address('s3')}",
            "AWS_ACCESS_KEY_ID": self.creds.access_key,
            "AWS_SECRET_ACCESS_KEY": self.creds.secret_key,
        })
        return argv, env

    def healthy(self) -> tuple[bool, str]:
        """GET /health answers 200 'OK'."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                body = response.read().decode(errors="replace").strip()
                return response.status == 200, f"/health: {response.status} {body[:40]}"
        except (urllib.error.URLError, OSError) as err:
            return False, f"/health: {err}"
