"""A stand-in for the parts of the Kubernetes API that the TrainJob task calls, on loopback.

There is no cluster on these machines, so kubernetes.client talks to this server, which
records every request as sent (each also as the RBAC verb and resource it needs) and
checks each submitted TrainJob against kubeflow-trainer-api's typed model. It serves:

- trainjobs.trainer.kubeflow.org/v1alpha1: create (409 when the name exists), get, watch
  (one event with the object as it is, then the server ends the watch), delete;
- pods, listed by label selector, and pods/log with timestamps: rank 0's pod and log.

A job either reports scripted conditions on successive reads (none, Created, then
``final``), or, with ``nodes`` set (a NodeRunner), really runs: every node's command runs
here as a process with the PET_* variables the torch-distributed runtime sets and its
environment resolved from the ConfigMap and Secret values the runner is given, rank 0's
output becomes its pod's log, and the job completes or fails with the processes.
``installed=False`` answers 404 for the group (no CRD); ``forbidden`` 403 to those verbs.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import subprocess
import threading
import types
import typing
import urllib.parse
from dataclasses import dataclass, field

from tests.http_stand_in import Handler, LoopbackServer

# What the TrainJob CRD and Trainer's validating webhook refuse that the typed models accept
# (they ignore unknown fields): a name that is no DNS-1035 label, torchrun's reserved
# variables (kubeflow/trainer pkg/constants TorchRunReservedEnvNames), a patch of a container
# the torch-distributed runtime does not have.
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
RESERVED_ENV = {"PET_NNODES", "PET_NPROC_PER_NODE", "PET_NODE_RANK", "PET_MASTER_ADDR", "PET_MASTER_PORT"}
RUNTIME_CONTAINERS = {"node": {"node"}}   # torch-distributed: replicated job -> its containers
JOBS = re.compile(r"^/apis/trainer\.kubeflow\.org/v1alpha1/namespaces/([^/]+)/trainjobs(?:/([^/]+))?$")
PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+)(/log)?)?$")


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class NodeRunner:
    """Runs a submitted TrainJob's nodes as local processes (the cluster's part)."""

    config_maps: dict[str, dict[str, str]]
    secrets: dict[str, dict[str, str]]
    path: str = os.environ.get("PATH", "")
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, job: dict, rank: int, port: int) -> dict[str, str]:
        trainer = job["spec"]["trainer"]
        env = {"PATH": self.path, "HOME": os.environ.get("HOME", "/tmp"), **self.extra_env,
               "PET_NNODES": str(trainer["numNodes"]), "PET_NPROC_PER_NODE": str(trainer["numProcPerNode"]),
               "PET_NODE_RANK": str(rank), "PET_MASTER_ADDR": "127.0.0.1", "PET_MASTER_PORT": str(port)}
        for var in trainer.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
                continue
            ref = var["valueFrom"]
            source = ref.get("secretKeyRef") or ref.get("configMapKeyRef")
            values = (self.secrets if "secretKeyRef" in ref else self.config_maps)[source["name"]]
            env[var["name"]] = values[source["key"]]  # a missing key fails the pod, as on a cluster
        return env

    def run(self, job: dict, log: list) -> bool:
        """Run every node; rank 0's output lines go to ``log``; True if all exited 0."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        trainer = job["spec"]["trainer"]
        procs = [subprocess.Popen(trainer["command"], env=self.env(job, rank, port), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, start_new_session=True)
                 for rank in range(trainer["numNodes"])]
        drains = [threading.Thread(target=lambda p=p, r=r: [log.append((_stamp(), line.rstrip("\n")))
                                                          if r == 0 else None for line in p.stdout], daemon=True)
                  for r, p in enumerate(procs)]
        for thread in drains:
            thread.start()
        codes = [p.wait() for p in procs]
        for thread in drains:
            thread.join()
        return all(code == 0 for code in codes)


@dataclass
class FakeCluster:
    installed: bool = True
    forbidden: set = field(default_factory=set)      # RBAC verbs answered 403: create, get, watch, ...
    final: str = "Complete"                          # scripted end: Complete | Failed | "" (never)
    reads_to_finish: int = 3
    runner: NodeRunner | None = None                 # really run the nodes instead
    watch_failures: list = field(default_factory=list)  # HTTP codes the next watches answer, in turn
    deleted_while_watched: bool = False              # the next watch reports the job DELETED
    requests: list = field(default_factory=list)     # (method, path, query, body)
    access: list = field(default_factory=list)       # (verb, resource) of each request: what RBAC sees
    jobs: dict = field(default_factory=dict)         # name -> object
    reads: dict = field(default_factory=dict)        # name -> reads so far
    ran: dict = field(default_factory=dict)          # name -> {"log": [(stamp, line)], "ok": bool | None}
    deleted: list = field(default_factory=list)

    def conditions(self, name: str) -> list[dict]:
        if self.runner is not None:
            ok = self.ran[name]["ok"]
            done = [] if ok is None else [{"type": "Complete" if ok else "Failed", "status": "True",
                                           "reason": "JobSetCompleted" if ok else "JobSetFailed",
                                           "message": "" if ok else "node-0-0: exit code 1"}]
            return [{"type": "Created", "status": "True", "reason": "JobSetCreated"}, *done]
        n = self.reads.get(name, 0)
        out = [{"type": "Created", "status": "True", "reason": "JobSetCreated"}] if n >= 2 else []
        if self.final and n >= self.reads_to_finish:
            out.append({"type": self.final, "status": "True", "reason": f"JobSet{self.final}",
                        "message": "jobset completed" if self.final == "Complete" else "node-0-0: exit code 1"})
        return out

    def created(self, name: str) -> None:
        """Scripted jobs log two lines once created; run jobs log what rank 0 prints."""
        self.ran[name] = {"log": [], "ok": None}
        if self.runner is None:
            self.ran[name]["log"] += [(_stamp(), "[genaug] step train_generator: started"), (_stamp(), "step 1/2")]
            return

        def run():
            try:
                self.ran[name]["ok"] = self.runner.run(self.jobs[name], self.ran[name]["log"])
            except Exception as err:  # e.g. a Secret key the job names does not exist: the pod fails
                self.ran[name]["log"].append((_stamp(), f"pod failed to start: {err!r}"))
                self.ran[name]["ok"] = False
        threading.Thread(target=run, daemon=True).start()

    def view(self, name: str) -> dict:
        self.reads[name] = self.reads.get(name, 0) + 1
        return {**self.jobs[name], "status": {"conditions": self.conditions(name)}}

    def rank0_pods(self, namespace: str, selector: str) -> list[dict]:
        wanted = dict(part.split("=", 1) for part in selector.split(","))
        out = []
        for name in self.jobs:
            labels = {"batch.kubernetes.io/job-name": f"{name}-node-0", "batch.kubernetes.io/job-completion-index": "0",
                      "jobset.sigs.k8s.io/jobset-name": name}
            if name in self.ran and wanted.items() <= labels.items():
                out.append({"metadata": {"name": f"{name}-node-0-0-x7k2p", "namespace": namespace, "labels": labels,
                                         "creationTimestamp": "2026-12-05T00:00:00Z"},
                            "status": {"phase": "Running" if self.ran[name]["ok"] is None else "Succeeded"}})
        return out


def unknown_fields(model, data, path: str = "") -> list[str]:
    """The keys of ``data`` that ``model`` (a kubeflow-trainer-api pydantic model, or a type
    built of them) has no field for: what the models would drop without a word."""
    from pydantic import BaseModel

    origin, args = typing.get_origin(model), typing.get_args(model)
    if origin in (typing.Union, types.UnionType):
        return unknown_fields(next(a for a in args if a is not type(None)), data, path)
    if origin is list and isinstance(data, list):
        return [u for i, item in enumerate(data) for u in unknown_fields(args[0], item, f"{path}[{i}]")]
    if origin is dict and isinstance(data, dict):
        return [u for k, v in data.items() for u in unknown_fields(args[1], v, f"{path}.{k}")]
    if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(data, dict) \
            and "root" not in model.model_fields:
        fields = {(f.alias or name): f for name, f in model.model_fields.items()}
        return [u for key, value in data.items()
                for u in ([f"{path}.{key}"] if key not in fields else
                          unknown_fields(fields[key].annotation, value, f"{path}.{key}"))]
    return []


def refusals(body: dict) -> list[str]:
    """Why the API server (schema, CEL rules, Trainer's webhook) would refuse ``body``."""
    from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob

    TrainerV1alpha1TrainJob.from_dict(body)  # the typed model: wrong types raise here
    out = [f"unknown field {u}" for u in unknown_fields(TrainerV1alpha1TrainJob, body)]
    name = body["metadata"]["name"]
    if len(name) > 63 or not DNS_1035.match(name):
        out.append(f"metadata.name {name!r} is not a DNS-1035 label of at most 63 characters")
    env = {e["name"] for e in body["spec"]["trainer"].get("env", [])}
    out += [f"spec.trainer.env must not have reserved envs: {n}" for n in sorted(env & RESERVED_ENV)]
    for patch in body["spec"].get("runtimePatches", []):
        for job in patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]:
            containers = {c["name"] for c in job["template"]["spec"]["template"]["spec"].get("containers", [])}
            if job["name"] not in RUNTIME_CONTAINERS or containers - RUNTIME_CONTAINERS[job["name"]]:
                out.append(f"runtimePatches: the runtime has no job/container {job['name']}/{sorted(containers)}")
    return out


def _access(method: str, path: str, query: dict) -> tuple[str, str]:
    """The RBAC (verb, resource) of a request."""
    jobs, pods = JOBS.match(path), PODS.match(path)
    resource = "trainjobs" if jobs else ("pods/log" if pods and pods.group(3) else "pods")
    named = bool((jobs or pods) and (jobs or pods).group(2))
    verb = {"POST": "create", "DELETE": "delete"}.get(method) or (
        "get" if named else ("watch" if query.get("watch") in ("true", "True", "1") else "list"))
    return verb, resource


def _handler(fake: FakeCluster):
    class Cluster(Handler):
        def _status(self, code: int, reason: str) -> None:
            self.reply(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                              "code": code, "message": reason})

        def _route(self):
            url = urllib.parse.urlsplit(self.path)
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            raw = self.read_body()
            body = json.loads(raw) if raw else None
            fake.requests.append((self.command, url.path, query, body))
            verb, resource = _access(self.command, url.path, query)
            fake.access.append((verb, resource))
            jobs, pods = JOBS.match(url.path), PODS.match(url.path)
            if (jobs and not fake.installed) or not (jobs or pods):
                return self._status(404, "NotFound")
            if verb in fake.forbidden or resource in fake.forbidden:
                return self._status(403, "Forbidden")
            if jobs:
                return self._jobs(verb, jobs.group(2), query, body)
            return self._pods(verb, pods.group(1), pods.group(2), query)

        def _jobs(self, verb, name, query, body):
            if verb == "create":
                problems = refusals(body)
                if problems:
                    return self._status(422, "Invalid: " + "; ".join(problems))
                name = body["metadata"]["name"]
                if name in fake.jobs:
                    return self._status(409, "AlreadyExists")
                fake.jobs[name] = body
                fake.created(name)
                return self.reply(201, body)
            if verb == "watch":
                if fake.watch_failures:
                    return self._status(fake.watch_failures.pop(0), "ServiceUnavailable")
                name = query.get("fieldSelector", "").removeprefix("metadata.name=")
                kind = "DELETED" if fake.deleted_while_watched else "MODIFIED"
                events = [{"type": kind, "object": fake.view(name)}] if name in fake.jobs else []
                return self.reply(200, "".join(json.dumps(e) + "\n" for e in events))
            if name not in fake.jobs:
                return self._status(404, "NotFound")
            if verb == "delete":
                fake.jobs.pop(name)
                fake.deleted.append(name)
                return self.reply(200, {"kind": "Status", "status": "Success"})
            return self.reply(200, fake.view(name))

        def _pods(self, verb, namespace, pod, query):
            if verb == "list":
                return self.reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                        "items": fake.rank0_pods(namespace, query.get("labelSelector", ""))})
            job = next((n for n in fake.ran if pod and pod.startswith(f"{n}-node-0-0-")), None)
            if job is None:
                return self._status(404, "NotFound")
            lines = list(fake.ran[job]["log"])
            return self.reply(200, "".join(f"{stamp} {line}\n" for stamp, line in lines), "text/plain")

        do_GET = do_POST = do_DELETE = _route

    return Cluster


class ClusterApi(LoopbackServer):
    """``with ClusterApi(FakeCluster()) as api:`` ``api.fake`` its state and records,
    ``api.api_client()`` a client of it, ``api.kubeconfig(path, namespace)`` one for connect()."""

    def __init__(self, fake: FakeCluster):
        super().__init__(_handler(fake))
        self.fake = fake

    def __enter__(self):
        super().__enter__()
        return self

    def api_client(self):
        from kubernetes import client

        return client.ApiClient(client.Configuration(host=self.url))

    def kubeconfig(self, path, namespace: str) -> str:
        import yaml

        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "task", "user": {"token": "stand-in"}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "task",
                                                           "namespace": namespace}}]}))
        return str(path)
