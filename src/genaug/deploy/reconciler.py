"""The sidecar that makes a Triton pod serve the champions, and keeps it so.

    python -m genaug.deploy.reconciler [--triton 127.0.0.1:8001] [--interval 30] [--port 8081]

Triton runs in explicit model-control mode and starts empty. This loop waits for it to be
live, then every ``interval`` seconds runs one reconciliation pass
(``genaug.serving.reconcile``): it loads any champion Triton does not serve, reverts a
promotion whose pod died before its commit, and re-pins config.pbtxt and the MLflow
aliases to the ledger, so a restarted pod, a model that failed to load, a crashed
promotion and a promotion made while the pod was down all converge. Each model is
loaded and checked on its own: one that fails is retried next pass and never blocks the
others, and it does not make the pod unready, because a pod that serves nine champions
must stay in the Service while the tenth is broken.

It answers on ``port``:
- ``/readyz``: 200 once the first pass against a live Triton has finished, whatever each
  model's outcome (the pod's readiness: clients never see a half-started repository);
- ``/healthz``: 200 while passes keep finishing (liveness: a wedged loop is restarted);
- ``/models``: JSON, per model: state (``serving`` or ``failed``), reason, last change;
- ``/metrics``: Prometheus' text format: champions, readiness, the last retrain that reached
  promotion (genaug.deploy.metrics; the monitoring component scrapes it).

Environment: GENAUG_S3_* (the promote identity: repairs write the repository and the
ledger), GENAUG_TRITON_ADMIN_KEY, and MLFLOW_TRACKING_URI to re-pin the aliases (without
it the aliases are left as they are).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from genaug.deploy import metrics
from genaug.services.endpoints import admin_key
from genaug.serving.reconcile import ReconcileReport, reconcile


class ModelStates:
    """What the last passes found, per model; thread-safe (the HTTP server reads it)."""

    def __init__(self, stale_after_s: float):
        self._lock = threading.Lock()
        self.stale_after_s = stale_after_s
        self.models: dict[str, dict] = {}
        self.first_pass_done = False
        self.last_pass = 0.0
        self.ledger_error: str | None = None
        self.ledger: dict[str, metrics.LedgerFacts] = {}
        self.started = time.time()

    def record(self, report: ReconcileReport, now: float) -> list[str]:
        """Fold a pass into the states; the lines that changed, for the log."""
        changes = []
        with self._lock:
            self.ledger_error = report.ledger_error
            seen = {**{n: ("serving", "") for n in report.already + list(report.repaired)},
                    **{n: ("busy", "a promotion holds its lease") for n in report.busy},
                    **{n: ("failed", why) for n, why in report.failed.items()}}
            for name, (state, reason) in seen.items():
                old = self.models.get(name)
                if old is None or (old["state"], old["reason"]) != (state, reason):
                    self.models[name] = {"state": state, "reason": reason, "since": now}
                    changes.append(f"{name}: {state}" + (f" ({reason})" if reason else ""))
            for name in set(self.models) - set(seen):
                del self.models[name]
                changes.append(f"{name}: no longer in the ledger")
            self.first_pass_done = True
            self.last_pass = now
        if report.ledger_error:
            changes.append(f"ledger unreadable: {report.ledger_error}")
        changes += [f"{name}: repaired ({', '.join(done)})" for name, done in report.repaired.items()]
        return changes

    def record_ledger(self, facts: dict[str, metrics.LedgerFacts] | None) -> None:
        """Keep what the ledger says for /metrics; None: it could not be read this pass."""
        with self._lock:
            self.ledger = facts or {}
            if facts is None and self.ledger_error is None:
                self.ledger_error = "the ledger's records could not be read for the metrics"

    def metrics_text(self) -> str:
        with self._lock:
            return metrics.text(metrics.families(dict(self.ledger), dict(self.models),
                                                 ledger_up=self.ledger_error is None, started_s=self.started))

    def ready(self) -> bool:
        with self._lock:
            return self.first_pass_done

    def alive(self, now: float) -> bool:
        with self._lock:
            return not self.first_pass_done or now - self.last_pass < self.stale_after_s

    def snapshot(self) -> dict:
        with self._lock:
            return {"models": dict(self.models), "ledger_error": self.ledger_error,
                    "last_pass": self.last_pass, "first_pass_done": self.first_pass_done}


def _handler(states: ModelStates):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            if self.path == "/readyz":
                self._send(200 if states.ready() else 503, {"ready": states.ready()})
            elif self.path == "/healthz":
                alive = states.alive(time.time())
                self._send(200 if alive else 503, {"alive": alive})
            elif self.path == "/models":
                self._send(200, states.snapshot())
            elif self.path == "/metrics":
                self._send(200, states.metrics_text(), metrics.CONTENT_TYPE)
            else:
                self._send(404, {"error": "try /readyz, /healthz, /models or /metrics"})

        def _send(self, code: int, body: dict | str, content_type: str = "application/json"):
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # probes every few seconds would flood the log
            pass

    return Handler


def serve(states: ModelStates, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Answer /readyz, /healthz, /models and /metrics from ``states`` on ``host:port`` (0: a
    free port, see ``server_address``), in a daemon thread; ``shutdown()`` stops it."""
    server = ThreadingHTTPServer((host, port), _handler(states))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def triton_live(triton_grpc: str) -> bool:
    import tritonclient.grpc as grpcclient

    try:
        with grpcclient.InferenceServerClient(triton_grpc) as triton:
            return bool(triton.is_server_live(client_timeout=5))
    except Exception:  # noqa: BLE001 - not up yet, in any way
        return False


def run_pass(states: ModelStates, triton_grpc: str, key: str, store, log=print) -> bool:
    """One reconciliation pass; False (nothing recorded) while Triton is not live yet."""
    from genaug.services.triton import Triton

    if not triton_live(triton_grpc):
        return False
    for line in states.record(reconcile(store, Triton(triton_grpc, admin_key=key)), time.time()):
        log(f"[reconciler] {line}", flush=True)
    states.record_ledger(ledger_facts(store))
    return True


def ledger_facts(store) -> dict[str, metrics.LedgerFacts] | None:
    """What /metrics shows of the ledger, read after the pass (its repairs included); None
    when the ledger cannot be read (the pass reports why)."""
    from genaug.serving.ledger import Ledger

    try:
        return metrics.read_facts(Ledger(store))
    except Exception:  # noqa: BLE001 - unreadable in any way: genaug_ledger_up says so
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genaug.deploy.reconciler", description=__doc__.split("\n\n")[0])
    parser.add_argument("--triton", default="127.0.0.1:8001", help="Triton gRPC host:port (same pod)")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between passes")
    parser.add_argument("--port", type=int, default=8081, help="port of /readyz, /healthz, /models, /metrics")
    parser.add_argument("--once", action="store_true", help="one pass, then exit (1 if a model failed)")
    args = parser.parse_args(argv)

    from genaug.services.store import Store

    key, s3 = admin_key(), Store(timeout_s=5.0)
    # A pass may load several models, each bounded by reconcile's load timeout.
    states = ModelStates(stale_after_s=3 * args.interval + 600)
    if args.once:
        while not run_pass(states, args.triton, key, s3):
            time.sleep(1.0)
        return 0 if all(m["state"] == "serving" for m in states.snapshot()["models"].values()) else 1
    serve(states, args.port)
    print(f"[reconciler] Triton {args.triton}, every {args.interval:g} s; status on :{args.port}/models", flush=True)
    while True:
        done = run_pass(states, args.triton, key, s3)
        time.sleep(args.interval if done else 2.0)


if __name__ == "__main__":
    sys.exit(main())
