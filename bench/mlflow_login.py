"""What MLflow's accounts cost a step: one logged metric without accounts, with the
basic-auth app checking the password's hash on every request, and with the login cached
(genaug's setting, mlflow_access.LOGIN_CACHE_S).

    python -m bench.mlflow_login [--calls 40]

Three bare MLflow servers (sqlite, artifacts in a temporary folder, free loopback ports),
started here and stopped afterwards; each is timed on the same calls in turns (median of
3). The ratio is genaug's setting over no accounts; the target is within 1.5x.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.harness import Report, interleaved
from genaug.services import mlflow_access
from genaug.stack.mlflow_server import ServerAuth, server_command
from genaug.stack.ports import free_port


@contextlib.contextmanager
def _server(folder: Path, login_cache_s: int | None):
    """A bare MLflow server, started as the stack starts its own (artifacts in ``folder``);
    with ``login_cache_s`` its basic-auth app. Yields (URL, env of the admin's login)."""
    folder.mkdir(parents=True)
    port, password = free_port(), secrets.token_hex(16)
    auth, login = None, {}
    if login_cache_s is not None:
        (folder / "auth.ini").write_text(mlflow_access.auth_config(f"sqlite:///{folder}/auth.db", login_cache_s))
        auth = ServerAuth(folder / "auth.ini", password, secrets.token_hex(16))
        login = {"MLFLOW_TRACKING_USERNAME": mlflow_access.ADMIN_USERNAME, "MLFLOW_TRACKING_PASSWORD": password}
    argv, env = server_command(f"sqlite:///{folder}/mlflow.db", str(folder / "artifacts"), "127.0.0.1", port, auth)
    with open(folder / "server.log", "w") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"MLflow did not start; see {folder / 'server.log'}") from None
                time.sleep(0.5)
        yield url, login
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


@contextlib.contextmanager
def _logged_in(login: dict):
    """MLflow's client reads its login from the environment on every request."""
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    saved = {name: os.environ.pop(name, None) for name in names}
    os.environ.update(login)
    try:
        yield
    finally:
        for name in names:
            os.environ.pop(name, None)
        os.environ.update({name: value for name, value in saved.items() if value is not None})


def _logger(url: str, login: dict, calls: int):
    """A function that logs ``calls`` metrics to a new run, as ``login``."""
    from mlflow import MlflowClient

    def log_metrics():
        with _logged_in(login):
            client = MlflowClient(url)
            run_id = client.create_run("0").info.run_id
            for i in range(calls):
                client.log_metric(run_id, "loss", float(i), step=i)

    return log_metrics


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args(argv)
    report = Report("mlflow_login", f"{args.calls} logged metrics: no accounts, accounts, accounts with the "
                                    f"login cached {mlflow_access.LOGIN_CACHE_S} s")
    with tempfile.TemporaryDirectory(prefix="genaug-bench-") as tmp, contextlib.ExitStack() as servers:
        plain = servers.enter_context(_server(Path(tmp) / "plain", None))
        hashed = servers.enter_context(_server(Path(tmp) / "hashed", 0))
        cached = servers.enter_context(_server(Path(tmp) / "cached", mlflow_access.LOGIN_CACHE_S))
        times = interleaved({"plain": _logger(*plain, args.calls), "hashed": _logger(*hashed, args.calls),
                             "cached": _logger(*cached, args.calls)})
    for label, key in (("no accounts", "plain"), ("accounts, hash checked on every request", "hashed"),
                       ("accounts, login cached (genaug)", "cached")):
        report.figure(f"{label}: ms per logged metric", times[key] / args.calls * 1000, "ms")
    ratio = times["cached"] / times["plain"]
    report.note(f"the hash check alone costs {times['hashed'] / times['plain']:.1f}x no accounts")
    return report.done("accounts with the login cached / no accounts (time)", ratio, "within 1.5x", ratio <= 1.5)


if __name__ == "__main__":
    main(sys.argv[1:])
