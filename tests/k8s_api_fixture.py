"""A stand-in for the Kubernetes API's TrainJob resource (trainer.kubeflow.org/v1alpha1), on
loopback, for the TrainJob tests.

There is no cluster on these machines, so kubernetes.client talks to this server, which
records every request as sent and checks each submitted TrainJob against
kubeflow-trainer-api's typed model. A job reports its conditions on successive reads
(none, then Created, then the configured final condition). ``installed=False`` answers 404
for the group (no CRD); ``forbidden`` answers 403 to those verbs (RBAC).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = re.compile(r"^/apis/trainer\.kubeflow\.org/v1alpha1/namespaces/([^/]+)/trainjobs(?:/([^/?]+))?")


@dataclass
class FakeTrainer:
    installed: bool = True
    forbidden: set = field(default_factory=set)      # verbs answered 403: create, get, delete
    final: str = "Complete"                          # Complete | Failed | "" (never finishes)
    reads_to_finish: int = 3
    requests: list = field(default_factory=list)     # (method, path, body)
    jobs: dict = field(default_factory=dict)         # name -> object
    reads: dict = field(default_factory=dict)        # name -> reads so far

    def conditions(self, name: str) -> list[dict]:
        n = self.reads.get(name, 0)
        out = [{"type": "Created", "status": "True", "reason": "JobSetCreated"}] if n >= 2 else []
        if self.final and n >= self.reads_to_finish:
            out.append({"type": self.final, "status": "True", "reason": f"JobSet{self.final}",
                        "message": "jobset completed" if self.final == "Complete" else "node-0-0: exit code 1"})
        return out


def _handler(fake: FakeTrainer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _status(self, code: int, reason: str) -> None:
            self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                              "code": code, "message": reason})

        def _route(self, verb: str):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            fake.requests.append((self.command, self.path, body))
            match = PATH.match(self.path)
            if not fake.installed or not match:
                return self._status(404, "NotFound")
            if verb in fake.forbidden:
                return self._status(403, "Forbidden")
            return match.group(1), match.group(2), body

        def do_POST(self):
            routed = self._route("create")
            if routed:
                from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

                _, _, body = routed
                TrainerV1alpha1TrainJob.from_dict(body)  # the real schema, typed: a bad field raises here
                fake.jobs[body["metadata"]["name"]] = body
                self._send(201, body)

        def do_GET(self):
            routed = self._route("get")
            if routed:
                _, name, _ = routed
                if name not in fake.jobs:
                    return self._status(404, "NotFound")
                fake.reads[name] = fake.reads.get(name, 0) + 1
                self._send(200, {**fake.jobs[name], "status": {"conditions": fake.conditions(name)}})

        def do_DELETE(self):
            routed = self._route("delete")
            if routed:
                _, name, _ = routed
                if fake.jobs.pop(name, None) is None:
                    return self._status(404, "NotFound")
                self._send(200, {"kind": "Status", "status": "Success"})

    return Handler


class TrainerApi:
    """A running stand-in: ``.fake`` its state and records, ``.api_client()`` a client of it."""

    def __init__(self, fake: FakeTrainer):
        self.fake = fake
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def api_client(self):
        from kubernetes import client

        config = client.Configuration(host=f"http://127.0.0.1:{self.server.server_address[1]}")
        return client.ApiClient(config)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
