"""The cluster's MLflow start against a real PostgreSQL (Debian's, which `make test` installs):
`genaug.deploy.mlflow_accounts serve` creates the auth database beside the tracking one,
starts MLflow's basic-auth app on it, and the set-up Job's `provision` makes the accounts.
The server is the session's (tests/postgres_fixture.py)."""

import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from genaug.deploy import mlflow_accounts
from genaug.services import mlflow_access
from genaug.stack.ports import free_port


def _serve(folder: Path, pg: dict, port: int, admin_password: str) -> subprocess.Popen:
    """The MLflow Deployment's command, as its container runs it."""
    env = {**os.environ, **pg, "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
           "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "MLFLOW_BACKEND_STORE_URI": f"postgresql+psycopg://mlflow:{pg['PGPASSWORD']}@127.0.0.1:"
                                       f"{pg['GENAUG_POSTGRES_PORT']}/mlflow",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    argv = [sys.executable, "-m", "genaug.deploy.mlflow_accounts", "serve", "--ini", str(folder / "basic_auth.ini"),
            "--", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--artifacts-destination", str(folder / "artifacts")]
    with open(folder / "mlflow.log", "a") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180  # a hang guard: a first start migrates two databases
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"MLflow did not start:\n{(folder / 'mlflow.log').read_text()[-3000:]}")
            time.sleep(0.5)


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


def test_the_server_makes_its_auth_database_and_the_job_its_accounts(postgres, tmp_path, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    port, admin_password = free_port(), secrets.token_hex(12)
    passwords = {role: secrets.token_hex(12) for role in mlflow_access.USERNAMES}
    proc = _serve(tmp_path, postgres, port, admin_password)
    try:
        ini = (tmp_path / "basic_auth.ini").read_text()
        assert f"@127.0.0.1:{postgres['GENAUG_POSTGRES_PORT']}/mlflow_auth" in ini
        assert postgres["PGPASSWORD"] not in ini and admin_password not in ini
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", admin_password)
        for role, password in passwords.items():
            monkeypatch.setenv(mlflow_accounts.password_env(role), password)
        assert mlflow_accounts.main(["provision"]) == 0
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_access.USERNAMES["pipeline"])
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", passwords["pipeline"])
        client = MlflowClient(f"http://127.0.0.1:{port}")
        run = client.create_run(client.get_experiment_by_name("genaug").experiment_id)
        client.log_metric(run.info.run_id, "accuracy", 0.5)
        with pytest.raises(MlflowException, match="403"):
            client.delete_run(run.info.run_id)
    finally:
        _stop(proc)
    # A restart finds the auth database and the accounts in it.
    proc = _serve(tmp_path, postgres, port, admin_password)
    try:
        assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.5}
    finally:
        _stop(proc)
    log = (tmp_path / "mlflow.log").read_text()
    assert log.count("created database mlflow_auth") == 1, log[-2000:]
