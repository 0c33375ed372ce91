"""Submit, watch and delete TrainJobs through the Kubernetes API, and relay rank 0's log.

The pipeline's CPU task uses this with its own ServiceAccount's token (the Role in
manifests/base/pipeline-access: create, get, watch and delete on
``trainjobs.trainer.kubeflow.org``; list pods and get pods/log for the relay). A TrainJob
is finished when its ``Complete`` or ``Failed`` condition is True (Kubeflow Trainer v2's
TrainJob status). Every request has a client-side timeout, so a half-open connection
cannot outlast the wait's own; a watch or read that fails on the way (a dropped
connection, an API server restarting) is retried until the deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
TERMINAL = ("Complete", "Failed")
# JobSet names the runtime's node Job <trainjob>-node-0 (kubeflow/trainer's torch plugin sets
# PET_MASTER_ADDR=<trainjob>-node-0-0.<trainjob>); node rank = the pod's completion index.
RANK0_SELECTOR = "batch.kubernetes.io/job-name={name}-node-0,batch.kubernetes.io/job-completion-index=0"
NODE_CONTAINER = "node"
REQUEST_TIMEOUT_S = 60          # connect and read, for single requests
RETRY_S = 5.0                   # after a transient failure of a watch or a read
TRANSIENT_STATUS = {0, 410, 429, 500, 502, 503, 504}   # 0: kubernetes.client's "no HTTP answer"


class TrainJobError(RuntimeError):
    """A TrainJob could not be submitted, failed, or did not finish in time; the message
    names the job and the fix."""


@dataclass(frozen=True)
class Outcome:
    state: str        # Complete | Failed
    reason: str
    message: str


def state_of(job: dict) -> Outcome | None:
    """The finished state of a TrainJob object, or None while it runs."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in TERMINAL and condition.get("status") == "True":
            return Outcome(condition["type"], condition.get("reason", ""), condition.get("message", ""))
    return None


def describe(job: dict) -> str:
    """Its conditions in one line: ``Created=True (JobSetCreated), ...`` or ``pending``."""
    conditions = (job.get("status") or {}).get("conditions") or []
    return ", ".join(f"{c.get('type')}={c.get('status')} ({c.get('reason', '')})" for c in conditions) or "pending"


def _transient(err: Exception) -> bool:
    """A failure worth retrying: no answer, or the API server busy or restarting."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    return isinstance(err, HTTPError) or (isinstance(err, ApiException) and (err.status or 0) in TRANSIENT_STATUS)


class RankZeroLog:
    """Rank 0's log lines, each relayed once: call ``relay()`` now and then. Reading logs is a
    convenience: when RBAC refuses it one line says so and the relay stops; any other
    failure (the container not started yet, a pod gone) waits for the next call."""

    def __init__(self, core_api, namespace: str, job: str, log=print):
        self.core, self.namespace, self.job, self.log = core_api, namespace, job, log
        self.last: dict[str, str] = {}      # pod -> RFC 3339 stamp of the last line relayed
        self.read_at: dict[str, float] = {}  # pod -> monotonic time of the last read
        self.off = False

    def relay(self) -> None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        if self.off:
            return
        try:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=RANK0_SELECTOR.format(name=self.job),
                                                 _request_timeout=REQUEST_TIMEOUT_S)
            for pod in sorted(pods.items, key=lambda p: str(p.metadata.creation_timestamp or "")):
                if (pod.status.phase or "Pending") != "Pending":
                    self._relay_pod(pod.metadata.name)
        except ApiException as err:
            if err.status in (401, 403):
                self.off = True
                self.log(f"[genaug] rank 0's log is not relayed (the API answered {err.status} {err.reason}); the "
                         "pipeline's Role needs list on pods and get on pods/log, or read it with kubectl logs")
        except HTTPError:
            pass  # no answer this time; the next call reads again

    def _relay_pod(self, pod: str) -> None:
        # After the first read, only the last seconds (with a margin): the stamps drop repeats.
        since = int(time.monotonic() - self.read_at[pod]) + 10 if pod in self.read_at else None
        started = time.monotonic()
        text = self.core.read_namespaced_pod_log(pod, self.namespace, container=NODE_CONTAINER, timestamps=True,
                                                 since_seconds=since, _request_timeout=REQUEST_TIMEOUT_S)
        self.read_at[pod] = started
        last = self.last.get(pod, "")
        for line in text.splitlines():
            stamp, _, message = line.partition(" ")
            if stamp > last:  # RFC 3339 stamps of one pod compare as text
                self.log(f"[{pod}] {message}")
                last = stamp
        self.last[pod] = last


class TrainJobs:
    """TrainJobs of one namespace, through kubernetes.client's CustomObjectsApi."""

    def __init__(self, api_client, namespace: str):
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace

    def _explain(self, err, what: str) -> TrainJobError:
        status = getattr(err, "status", None)
        if status == 404:
            return TrainJobError(f"{what}: the cluster has no {GROUP}/{VERSION} API; Kubeflow Trainer is not "
                                 "installed (docs/kubeflow.md says how), or NODES=1 trains inside the pipeline's pod")
        if status == 403:
            return TrainJobError(f"{what}: the pipeline's ServiceAccount may not do this on {PLURAL}.{GROUP} in "
                                 f"namespace {self.namespace!r}; apply manifests/base/pipeline-access (its Role grants "
                                 "create, get, watch and delete on trainjobs)")
        if status == 422:
            return TrainJobError(f"{what}: the API refused the object: {getattr(err, 'body', '') or err}")
        return TrainJobError(f"{what}: the Kubernetes API answered {status}: {getattr(err, 'reason', err)}")

    def submit(self, job: dict) -> dict:
        """Create ``job``. A job of that name already there (this task's earlier attempt) is
        returned as it is, unless it failed: then it is replaced."""
        from kubernetes.client.exceptions import ApiException

        name = job["metadata"]["name"]
        try:
            return self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, job,
                                                            _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as err:
            if err.status != 409:
                raise self._explain(err, f"submitting TrainJob {name}") from err
        existing = self.get(name)
        outcome = state_of(existing)
        if outcome is None or outcome.state == "Complete":
            print(f"[genaug] TrainJob {name} exists already ({describe(existing)}): following it", flush=True)
            return existing
        print(f"[genaug] TrainJob {name} of an earlier attempt failed ({outcome.reason}); submitting it again",
              flush=True)
        self.delete(name)
        self._gone(name)
        return self.submit(job)

    def _gone(self, name: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.exists(name):
            if time.monotonic() > deadline:
                raise TrainJobError(f"TrainJob {name} was deleted but still exists after {timeout_s:.0f} s; "
                                    "look at its finalizers")
            time.sleep(1.0)

    def exists(self, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self.get(name, raw=True)
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise self._explain(err, f"reading TrainJob {name}") from err

    def get(self, name: str, raw: bool = False) -> dict:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name,
                                                         _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as err:
            if raw:
                raise
            raise self._explain(err, f"reading TrainJob {name}") from err

    def delete(self, name: str) -> bool:
        """Delete the job (its pods go with it); False when it was already gone."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name,
                                                     propagation_policy="Foreground",
                                                     _request_timeout=REQUEST_TIMEOUT_S)
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise self._explain(err, f"deleting TrainJob {name}") from err

    def _changes(self, name: str, window_s: float):
        """The job's states for up to ``window_s`` seconds (a watch the server ends)."""
        from kubernetes import watch

        for event in watch.Watch().stream(self.api.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
                                          PLURAL, field_selector=f"metadata.name={name}",
                                          timeout_seconds=max(1, int(window_s)),
                                          _request_timeout=(REQUEST_TIMEOUT_S, window_s + 30)):
            if event["type"] == "DELETED":
                raise TrainJobError(f"TrainJob {name} was deleted while the pipeline waited for it")
            yield event["object"]

    def wait(self, name: str, timeout_s: float, poll_s: float = 10.0, log=print) -> Outcome:
        """Watch until the job finishes, logging each change of its conditions and rank 0's
        new log lines. Raises TrainJobError when it failed or ``timeout_s`` passed (the job is
        left for the caller to delete)."""
        from kubernetes.client.exceptions import ApiException

        deadline, seen, relay = time.monotonic() + timeout_s, None, RankZeroLog(self.core, self.namespace, name, log)
        job = self.get(name)
        while True:
            if describe(job) != seen:
                seen = describe(job)
                log(f"[genaug] TrainJob {name}: {seen}")
            relay.relay()
            outcome = state_of(job)
            if outcome and outcome.state == "Complete":
                return outcome
            if outcome:
                raise TrainJobError(f"TrainJob {name} failed ({outcome.reason}): {outcome.message}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TrainJobError(f"TrainJob {name} did not finish within {timeout_s:.0f} s; raise the timeout "
                                    f"(trainjob_timeout_hours) or look at its pods: kubectl -n {self.namespace} get "
                                    f"pods -l jobset.sigs.k8s.io/jobset-name={name}")
            try:
                for job in self._changes(name, min(poll_s, left)):
                    if describe(job) != seen or state_of(job):
                        break
            except Exception as err:
                if not _transient(err):
                    raise self._explain(err, f"watching TrainJob {name}") if isinstance(err, ApiException) else err
                log(f"[genaug] watching TrainJob {name} failed for now ({type(err).__name__}: "
                    f"{str(err).splitlines()[0][:200] if str(err) else ''}); again in {RETRY_S:.0f} s")
                time.sleep(min(RETRY_S, max(0.0, deadline - time.monotonic())))
