"""A stand-in for the Kubeflow Pipelines v2beta1 REST API, on loopback, for the submit tests.

There is no KFP cluster on these machines, so the real kfp.Client talks to this server,
which records every request exactly as the client sends it (method, path, query, JSON
body, uploaded pipeline file) and keeps just enough state to answer the calls genaug
makes: pipelines and versions, experiments, runs (PENDING -> RUNNING -> final state on
successive reads) and recurring runs. Everything it does not know is a 404.
"""

from __future__ import annotations

import itertools
import json
import urllib.parse
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

from tests.http_stand_in import Handler as JsonHandler
from tests.http_stand_in import LoopbackServer

API = "/apis/v2beta1"


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict   # lower-case names
    body: dict | None = None
    upload: bytes | None = None


@dataclass
class FakeKfp:
    token: str | None = None          # when set, requests without "Bearer <token>" get a 401
    multi_user: bool = False
    final_state: str = "SUCCEEDED"    # what runs end as
    requests: list = field(default_factory=list)
    pipelines: dict = field(default_factory=dict)   # id -> {"display_name", "versions": {id: name}}
    experiments: dict = field(default_factory=dict)  # id -> {"display_name", "namespace"}
    runs: dict = field(default_factory=dict)         # id -> {"body", "reads"}
    recurring: dict = field(default_factory=dict)    # id -> body
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def new_id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    def made(self, method: str, path_suffix: str) -> list[Request]:
        """The recorded requests with this method whose path ends with ``path_suffix``."""
        return [r for r in self.requests if r.method == method and r.path.endswith(path_suffix)]


def _name_filter(query: dict) -> str | None:
    """The display_name that a KFP list filter asks for, or None."""
    raw = query.get("filter")
    if not raw:
        return None
    for predicate in json.loads(raw).get("predicates", []):
        if predicate.get("key") == "display_name":
            return predicate.get("stringValue") or predicate.get("string_value")
    return None


def _handler(state: FakeKfp):
    class Handler(JsonHandler):
        _reply = JsonHandler.reply

        def _record(self) -> Request:
            url = urllib.parse.urlsplit(self.path)
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            raw = self.read_body()
            req = Request(self.command, url.path, query, {k.lower(): v for k, v in self.headers.items()})
            ctype = self.headers.get("Content-Type", "")
            if raw and ctype.startswith("multipart/form-data"):
                message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
                for part in message.iter_parts():
                    if part.get_param("name", header="content-disposition") == "uploadfile":
                        req.upload = part.get_payload(decode=True)
            elif raw:
                req.body = json.loads(raw)
            state.requests.append(req)
            return req

        def _route(self):
            req = self._record()
            if state.token and req.headers.get("authorization") != f"Bearer {state.token}":
                return self._reply(401, {"error": "Unauthenticated", "code": 16})
            p, q, b = req.path.removeprefix(API), req.query, req.body
            m = self.command
            if (m, p) == ("GET", "/healthz"):
                return self._reply(200, {"multi_user": state.multi_user})
            if (m, p) == ("GET", "/pipelines"):
                name = _name_filter(q)
                found = [{"pipeline_id": i, "display_name": v["display_name"]}
                         for i, v in state.pipelines.items() if name in (None, v["display_name"])]
                return self._reply(200, {"pipelines": found, "total_size": len(found)} if found else {})
            if (m, p) == ("POST", "/pipelines/upload"):
                pid, vid = state.new_id("pipeline"), state.new_id("version")
                state.pipelines[pid] = {"display_name": q["name"], "versions": {vid: q["name"]}}
                return self._reply(200, {"pipeline_id": pid, "display_name": q["name"]})
            if (m, p) == ("POST", "/pipelines/upload_version"):
                pid = q["pipelineid"]
                if pid not in state.pipelines:
                    return self._reply(404, {"error": f"pipeline {pid} not found", "code": 5})
                vid = state.new_id("version")
                state.pipelines[pid]["versions"][vid] = q["name"]
                return self._reply(200, {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": q["name"]})
            if m == "GET" and p.startswith("/pipelines/") and p.endswith("/versions"):
                pid, name = p.split("/")[2], _name_filter(q)
                versions = state.pipelines.get(pid, {}).get("versions", {})
                found = [{"pipeline_id": pid, "pipeline_version_id": v, "display_name": n}
                         for v, n in versions.items() if name in (None, n)]
                return self._reply(200, {"pipeline_versions": found, "total_size": len(found)} if found else {})
            if (m, p) == ("GET", "/experiments"):
                name = _name_filter(q)
                found = [{"experiment_id": i, **v} for i, v in state.experiments.items()
                         if name in (None, v["display_name"]) and q.get("namespace") in (None, v["namespace"])]
                return self._reply(200, {"experiments": found} if found else {})
            if (m, p) == ("POST", "/experiments"):
                eid = state.new_id("experiment")
                state.experiments[eid] = {"display_name": b["display_name"], "namespace": b.get("namespace")}
                return self._reply(200, {"experiment_id": eid, **state.experiments[eid]})
            if (m, p) == ("POST", "/runs"):
                rid = state.new_id("run")
                state.runs[rid] = {"body": b, "reads": 0}
                return self._reply(200, {**b, "run_id": rid, "state": "PENDING"})
            if m == "GET" and p.startswith("/runs/"):
                run = state.runs.get(p.split("/")[2])
                if run is None:
                    return self._reply(404, {"error": "run not found", "code": 5})
                run["reads"] += 1
                now = ["PENDING", "RUNNING"][min(run["reads"] - 1, 1)] if run["reads"] < 3 else state.final_state
                error = {"message": "train-generator failed"} if now == "FAILED" else None
                return self._reply(200, {**run["body"], "run_id": p.split("/")[2], "state": now,
                                         **({"error": error} if error else {})})
            if (m, p) == ("POST", "/recurringruns"):
                rid = state.new_id("recurring")
                state.recurring[rid] = b
                return self._reply(200, {**b, "recurring_run_id": rid, "status": "ENABLED"})
            if (m, p) == ("GET", "/recurringruns"):
                name = _name_filter(q)
                found = [{**v, "recurring_run_id": i} for i, v in state.recurring.items()
                         if name in (None, v["display_name"]) and q.get("experiment_id") in (None, v["experiment_id"])]
                return self._reply(200, {"recurringRuns": found, "recurring_runs": found} if found else {})
            if m == "DELETE" and p.startswith("/recurringruns/"):
                state.recurring.pop(p.split("/")[2], None)
                return self._reply(200, {})
            return self._reply(404, {"error": f"no route {m} {p}", "code": 5})

        do_GET = do_POST = do_DELETE = _route

    return Handler


class KfpApiServer(LoopbackServer):
    """``with KfpApiServer(FakeKfp()) as (url, state):`` a recording KFP API on 127.0.0.1."""

    def __init__(self, state: FakeKfp):
        super().__init__(_handler(state))
        self.state = state

    def __enter__(self):
        return super().__enter__(), self.state
