"""``up``, ``down`` and ``status`` of the local stack: S3, then MLflow and Triton.

Order matters only at start: MLflow and Triton both need S3. MLflow (the slow one,
~5-15 s) is launched first and Triton is prepared and launched while it boots; both are
then awaited. ``up`` holds an exclusive lock on the state folder, so two ``up``/``down``
calls on one stack never interleave.
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from genaug.services import mlflow_access
from genaug.services.names import TRITON_BUCKET
from genaug.stack import ports as port_plan
from genaug.stack import procs
from genaug.stack.config import StackConfig, StatePaths
from genaug.stack.credentials import (ADMIN_KEY_ENV, MlflowAccounts, load_or_create_admin_key,
                                     load_or_create_mlflow_accounts, load_or_create_s3_identities)
from genaug.stack.envfile import write_env
from genaug.stack.errors import StackError
from genaug.stack.mlflow_server import MlflowServer
from genaug.stack.seaweed import SeaweedS3
from genaug.stack.triton_server import TritonServer

Out = Callable[[str], None]
POLL_S = 0.25  # readiness poll interval


class Server(Protocol):
    name: str
    port_names: tuple[str, ...]
    ready_timeout_s: float
    hint: str

    def describe(self) -> str: ...
    def prepare(self) -> None: ...
    def command(self) -> tuple[list[str], dict[str, str]]: ...
    def healthy(self) -> tuple[bool, str]: ...


@dataclass
class Started:
    """A server ``up`` launched (or found running) and when, for the timing report."""

    server: Server
    proc: procs.Proc
    launched_at: float
    fresh: bool
    ready_s: float | None = None    # launch -> healthy, seconds
    prepare_s: float = 0.0          # venv/work-folder preparation before launch, seconds


@dataclass
class UpResult:
    env: dict[str, str]
    pids: dict[str, int]
    timings_s: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def _state_lock(paths: StatePaths, out: Out):
    """One `up`/`down` at a time per state folder; a second one waits, then sees the result."""
    paths.create()
    with open(paths.lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            out(f"  waiting for another `up`/`down` on {paths.root} to finish ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _servers(cfg: StackConfig, out: Out) -> tuple[SeaweedS3, MlflowServer, TritonServer]:
    ids = load_or_create_s3_identities(cfg.paths)
    key = load_or_create_admin_key(cfg.paths)
    accounts = load_or_create_mlflow_accounts(cfg.paths)
    return (SeaweedS3(cfg, ids), MlflowServer(cfg, ids.mlflow, accounts),
            TritonServer(cfg, ids.triton, key, setup_creds=ids.admin, log=out))


def _launch(server: Server, paths: StatePaths, out: Out) -> Started:
    """Start ``server`` unless its recorded process runs (then it is only awaited)."""
    proc = procs.running(paths.pid(server.name))
    if proc is not None:
        return Started(server, proc, time.monotonic(), fresh=False)
    paths.pid(server.name).unlink(missing_ok=True)
    t0 = time.monotonic()
    server.prepare()
    prepare_s = time.monotonic() - t0
    argv, env = server.command()
    shown = getattr(server, "shown_command", lambda: argv)()
    proc = procs.spawn(server.name, argv, env, paths.log(server.name), paths.pid(server.name),
                       cwd=paths.root, shown_argv=shown)
    out(f"  {server.name}: started PID {proc.pid}, log {paths.log(server.name)}")
    return Started(server, proc, time.monotonic(), fresh=True, prepare_s=prepare_s)


def _await(pending: list[Started], paths: StatePaths) -> None:
    """Poll every pending server's health until ready, each timed from its own launch.

    A server that exits, or is not ready within its ``ready_timeout_s``, is stopped and
    reported with the tail of its log; servers already ready stay up (``up`` is idempotent).
    """
    pending = list(pending)
    detail: dict[str, str] = {}
    while pending:
        for started in list(pending):
            server = started.server
            ok, detail[server.name] = server.healthy()
            if ok:
                started.ready_s = time.monotonic() - started.launched_at
                pending.remove(started)
            elif not procs.is_alive(started.proc):
                _fail(started, paths, detail[server.name], exited=True)
            elif time.monotonic() > started.launched_at + server.ready_timeout_s:
                _fail(started, paths, detail[server.name], exited=False)
        if pending:
            time.sleep(POLL_S)


def _fail(started: Started, paths: StatePaths, detail: str, exited: bool) -> None:
    server = started.server
    log = paths.log(server.name)
    if exited:
        code = procs.exit_code(started.proc)
        what = f"exited during start-up{'' if code is None else f' (exit code {code})'}"
    else:
        state = "started" if started.fresh else "already running"
        what = (f"({state}, PID {started.proc.pid}) was not healthy after {server.ready_timeout_s:.0f} s "
                "and has been stopped")
    procs.stop(paths.pid(server.name), timeout_s=10)
    raise StackError(f"{server.name} {what}; last health check: {detail}.\n"
                     f"Last lines of {log}:\n{procs.log_tail(log)}\nFix: {server.hint}")


def promote_env(creds, accounts: MlflowAccounts) -> dict[str, str]:
    """The promote identity: its S3 keys and its MLflow account."""
    from genaug.services.store import PROMOTE_ACCESS_ENV, PROMOTE_SECRET_ENV

    return {PROMOTE_ACCESS_ENV: creds.access_key, PROMOTE_SECRET_ENV: creds.secret_key,
            mlflow_access.PROMOTE_USERNAME_ENV: mlflow_access.USERNAMES["promote"],
            mlflow_access.PROMOTE_PASSWORD_ENV: accounts.passwords["promote"]}


def mlflow_login(cfg: StackConfig, accounts: MlflowAccounts, role: str) -> dict[str, str]:
    """MLflow's URL and one role's account, as the MLflow client reads them."""
    return {"MLFLOW_TRACKING_URI": f"http://{cfg.address('mlflow')}",
            "MLFLOW_TRACKING_USERNAME": mlflow_access.USERNAMES[role],
            "MLFLOW_TRACKING_PASSWORD": accounts.passwords[role]}


def _stack_env(cfg: StackConfig, s3: SeaweedS3, mlflow: MlflowServer) -> dict[str, str]:
    # The steps' identity: every bucket but Triton's repository; MLflow's pipeline account.
    return {
        "GENAUG_S3_ENDPOINT": cfg.address("s3"),
        "GENAUG_S3_ACCESS_KEY": s3.identities.pipeline.access_key,
        "GENAUG_S3_SECRET_KEY": s3.identities.pipeline.secret_key,
        "GENAUG_S3_SECURE": "false",
        **mlflow_login(cfg, mlflow.accounts, "pipeline"),
        "GENAUG_TRITON_GRPC": cfg.address("triton_grpc"),
        "GENAUG_TRITON_HTTP": cfg.address("triton_http"),
        # host:port of Triton's Prometheus page (/metrics), for a local Prometheus to scrape.
        "GENAUG_TRITON_METRICS": cfg.address("triton_metrics"),
    }


def _resolve_config(paths: StatePaths, triton_venv: Path, free_ports: bool) -> StackConfig:
    recorded = port_plan.load_recorded(paths.ports_file)
    groups = {"s3": SeaweedS3.port_names, "mlflow": MlflowServer.port_names,
              "triton": TritonServer.port_names}
    keep = [name for server, names in groups.items() if procs.running(paths.pid(server)) for name in names]
    ports = port_plan.resolve(recorded, keep, free_ports)
    port_plan.save(paths.ports_file, ports)
    return StackConfig(paths, ports, triton_venv)


def up(state_dir: Path, triton_venv: Path, free_ports: bool = False, out: Out = print) -> UpResult:
    """Start (or keep) the three servers, write stack.env/admin.env, reload the champions."""
    t0 = time.monotonic()
    paths = StatePaths(state_dir)
    with _state_lock(paths, out):
        SeaweedS3.check_state(paths)
        cfg = _resolve_config(paths, triton_venv, free_ports)
        s3, mlflow, triton = _servers(cfg, out)
        write_env(paths.admin_env, {ADMIN_KEY_ENV: triton.admin_key,
                                    **promote_env(s3.identities.promote, mlflow.accounts)},
                  "Triton admin key (unlocks load/unload), and the S3 keys and MLflow account that may\n"
                  "change what is served: Triton's repository, the promotion ledger and the models'\n"
                  "aliases. Only promotion and operators should read this file.")
        write_env(paths.mlflow_reader_env, mlflow_login(cfg, mlflow.accounts, "reader"),
                  "MLflow's read-only account, for people who browse the UI (log in with these)\n"
                  "or the API: set -a; . .genaug/mlflow-reader.env; set +a")

        first = _launch(s3, paths, out)
        _await([first], paths)
        s3.after_ready()
        if procs.running(paths.pid(mlflow.name)) and mlflow.runs_without_auth():
            out(f"  mlflow: {procs.stop(paths.pid(mlflow.name), 20.0)} (it ran without accounts; "
                "restarting it with MLflow's basic-auth app)")
        rest = [_launch(mlflow, paths, out), _launch(triton, paths, out)]
        _await(rest, paths)
        from genaug.services.tracking import EXPERIMENT

        mlflow.after_ready(EXPERIMENT)

        env = _stack_env(cfg, s3, mlflow)
        write_env(paths.stack_env, env, "Endpoints of the genaug local stack, written by "
                  "`python -m genaug.stack up`.\nUse: set -a; . .genaug/stack.env; set +a")
        report = _reconcile(cfg, s3, triton, mlflow)

    timings = {}
    out(f"genaug stack up (state {paths.root}):")
    for started in [first, *rest]:
        if started.fresh:
            timings[started.server.name] = started.ready_s
            timings[f"{started.server.name}_prepare"] = started.prepare_s
            state = f"started, ready in {started.ready_s:.1f} s"
            if started.prepare_s >= 0.5:
                state += f" (+{started.prepare_s:.1f} s preparing)"
        else:
            state = "already running"
        out(f"  {started.server.name:<7} {started.server.describe():<60} PID {started.proc.pid:<7} {state}")
    out(f"  reconcile with the ledger in s3://{TRITON_BUCKET}/ledger/: " + "; ".join(report.lines()))
    timings["total"] = time.monotonic() - t0
    out(f"  endpoints: {paths.stack_env}   admin key: {paths.admin_env}   ({timings['total']:.1f} s)")
    return UpResult(env, {s.server.name: s.proc.pid for s in [first, *rest]}, timings)


def _reconcile(cfg: StackConfig, s3: SeaweedS3, triton: TritonServer, mlflow: MlflowServer):
    """Serve the ledger's champions (Triton starts empty) and finish or undo any promotion
    that stopped before its commit; the aliases too, through the stack's MLflow, as the
    promote identity."""
    import os

    from genaug.services.triton import Triton
    from genaug.serving.reconcile import reconcile
    from genaug.services.store import S3Config, Store

    # The promote login tracking.as_promote switches to, too: one inherited from another
    # stack's admin.env (a sourced shell, `genaug restore`'s caller) would be refused here.
    os.environ.update({**mlflow_login(cfg, mlflow.accounts, "promote"),
                       mlflow_access.PROMOTE_USERNAME_ENV: mlflow_access.USERNAMES["promote"],
                       mlflow_access.PROMOTE_PASSWORD_ENV: mlflow.accounts.passwords["promote"]})
    promote = s3.identities.promote
    store = Store(S3Config(cfg.address("s3"), promote.access_key, promote.secret_key), timeout_s=5.0)
    return reconcile(store, Triton(cfg.address("triton_grpc"), admin_key=triton.admin_key), aliases=True)


def down(state_dir: Path, timeout_s: float = 20.0, out: Out = print) -> None:
    """Stop the recorded processes (Triton, MLflow, then S3) and remove their pid files."""
    paths = StatePaths(state_dir)
    if not paths.root.exists():
        out(f"genaug stack: nothing at {paths.root}")
        return
    with _state_lock(paths, out):
        for name in ("triton", "mlflow", "s3"):
            out(f"  {name:<7} {procs.stop(paths.pid(name), timeout_s)}")
        # The endpoints are gone; a stale stack.env would turn 'not running' into timeouts.
        paths.stack_env.unlink(missing_ok=True)
    out(f"genaug stack down (state {paths.root})")


def stop_server(state_dir: Path, name: str, timeout_s: float = 20.0) -> str:
    """Stop one of the stack's servers (e.g. MLflow, while its database is replaced); the next
    ``up`` starts it again. Returns what happened."""
    paths = StatePaths(state_dir)
    with _state_lock(paths, lambda line: None):
        return procs.stop(paths.pid(name), timeout_s)


def status(state_dir: Path, out: Out = print) -> bool:
    """Print each server's process and health; True when all three are healthy."""
    paths = StatePaths(state_dir)
    recorded = port_plan.load_recorded(paths.ports_file)
    if not recorded or not (paths.s3_credentials.exists() and paths.admin_key.exists()):
        out(f"genaug stack: no stack recorded in {paths.root}; run `python -m genaug.stack up`")
        return False
    cfg = StackConfig(paths, recorded, Path("."))
    all_ok = True
    for server in _servers(cfg, out):
        proc = procs.running(paths.pid(server.name))
        if proc is None:
            ok, detail, pid = False, "not running", "-"
        else:
            ok, detail = server.healthy()
            pid = str(proc.pid)
        all_ok &= ok
        out(f"  {server.name:<7} {'healthy' if ok else 'DOWN':<8} PID {pid:<7} {server.describe():<60} {detail}")
    return all_ok
