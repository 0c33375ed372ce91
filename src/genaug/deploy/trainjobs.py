"""Submit, watch and delete TrainJobs through the Kubernetes API (issue 25, in progress).

The pipeline's CPU task uses this with its own ServiceAccount's token: create, get and
delete on ``trainjobs.trainer.kubeflow.org`` and nothing more. A TrainJob is finished when
its ``Complete`` or ``Failed`` condition is True (Kubeflow Trainer v2's TrainJob status).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
TERMINAL = ("Complete", "Failed")


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


class TrainJobs:
    """TrainJobs of one namespace, through kubernetes.client's CustomObjectsApi."""

    def __init__(self, api_client, namespace: str):
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
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
        return TrainJobError(f"{what}: the Kubernetes API answered {status}: {getattr(err, 'reason', err)}")

    def submit(self, job: dict) -> dict:
        from kubernetes.client.exceptions import ApiException

        name = job["metadata"]["name"]
        try:
            return self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, job)
        except ApiException as err:
            raise self._explain(err, f"submitting TrainJob {name}") from err

    def get(self, name: str) -> dict:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as err:
            raise self._explain(err, f"reading TrainJob {name}") from err

    def delete(self, name: str) -> bool:
        """Delete the job (its pods go with it); False when it was already gone."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name,
                                                     propagation_policy="Foreground")
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise self._explain(err, f"deleting TrainJob {name}") from err

    def wait(self, name: str, timeout_s: float, poll_s: float = 10.0, log=print) -> Outcome:
        """Poll until the job finishes; log each change of its conditions. Raises TrainJobError
        when it failed or when ``timeout_s`` passes (the job is left for the caller to delete)."""
        deadline, seen = time.monotonic() + timeout_s, None
        while True:
            job = self.get(name)
            conditions = [(c.get("type"), c.get("status"), c.get("reason")) for c in
                          (job.get("status") or {}).get("conditions") or []]
            if conditions != seen:
                log(f"[genaug] TrainJob {name}: " + (", ".join(f"{t}={s} ({r})" for t, s, r in conditions) or "pending"))
                seen = conditions
            outcome = state_of(job)
            if outcome and outcome.state == "Complete":
                return outcome
            if outcome:
                raise TrainJobError(f"TrainJob {name} failed ({outcome.reason}): {outcome.message}")
            if time.monotonic() >= deadline:
                raise TrainJobError(f"TrainJob {name} did not finish within {timeout_s:.0f} s; raise the timeout or "
                                    "look at its pods (kubectl -n {0} get pods -l jobset.sigs.k8s.io/jobset-name={1})"
                                    .format(self.namespace, name))
            time.sleep(poll_s)
