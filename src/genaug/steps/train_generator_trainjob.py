"""Train the generator across nodes as a Kubeflow Trainer TrainJob (the pipeline's NODES > 1).

A CPU task runs this: it stages the prepared dataset in S3 (genaug.steps.handoff), submits
a TrainJob whose every node runs ``torchrun -m genaug.cli step train_generator_staged``
(train_generator itself, with the run's own sections), watches it while relaying its
conditions and rank 0's log lines, and once it completes takes the generator rank 0
published and writes it where the in-pod step writes its own. The downstream steps cannot
tell the two apart. When the job fails or the timeout passes the job is deleted (its GPUs
freed) and the step fails; the pipeline's exit handler deletes it when the run is
cancelled (genaug.steps.final_status).
"""

from __future__ import annotations

import contextlib
import hashlib
import signal
import sys
import threading

from genaug.deploy.trainjob import DEFAULT_RUNTIME, EnvRef, Placement, TrainJobRequest, train_job
from genaug.params import load_options
from genaug.steps import handoff
from genaug.steps.gpus import step_target

DEFAULT_TIMEOUT_H = 48.0
NAME_PREFIX = "genaug-train-"


class Terminated(BaseException):
    """SIGTERM reached the task (KFP cancels a run by stopping its pods)."""


def job_name(run_uid: str) -> str:
    """The TrainJob of one pipeline run (KFP's run UUID, not its display name, which repeats):
    the same for every attempt of its task and for the exit handler, and a valid DNS-1035
    label (JobSet adds -node-0-0-xxxxx to pod names)."""
    return NAME_PREFIX + hashlib.sha256(run_uid.encode()).hexdigest()[:12]


@contextlib.contextmanager
def sigterm_raises():
    """Within the block SIGTERM raises Terminated, so that cleanup in ``finally`` runs when
    the run is cancelled (a pod gets SIGTERM and a grace period before it is killed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated(f"signal {signum}: the run was cancelled or the pod is being stopped")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def node_command(staging: str, data_sha256: str, parent_run_id: str, run) -> list[str]:
    """What every node runs; torchrun takes --nnodes, --node-rank, --nproc-per-node and the
    master's address from the PET_* variables the torch-distributed runtime sets."""
    return ["torchrun", *step_target("train_generator_staged", {
        "staging": staging, "data_sha256": data_sha256, "parent_run_id": parent_run_id,
        "generator": run.generator, "seed": run.seed, "gan": run.gan, "diffusion": run.diffusion,
        "sampler": run.sampler, "metrics": run.metrics})]


def request_for(name: str, namespace: str, command: list[str], nodes: int, gpus_per_node: int, runtime: str,
                timeout_h: float, job: dict) -> TrainJobRequest:
    """The TrainJobRequest; ``job`` is the pipeline's compiled-in part (pipelines/placement.py
    trainjob_settings): image, gpu_resource, env references, plain values, placement, resources."""
    placement = job.get("placement") or {}
    return TrainJobRequest(
        name=name, namespace=namespace, image=job["image"], command=command, nodes=nodes,
        gpus_per_node=gpus_per_node, runtime=runtime, gpu_resource=job.get("gpu_resource", "nvidia.com/gpu"),
        env=[EnvRef(**ref) for ref in job.get("env", [])], values=job.get("values", {}),
        placement=Placement(node_selector=placement.get("node_selector", {}),
                            toleration_key=placement.get("toleration_key", ""),
                            run_as_user=placement.get("run_as_user"), pod_labels=placement.get("pod_labels", {})),
        labels={"genaug.io/pipeline-run": name.removeprefix(NAME_PREFIX)},
        deadline_s=int(timeout_h * 3600) + 600, resources=job.get("resources", {}))


def train_generator_trainjob(data_path: str, options_path: str, out_path: str, html_path: str = "",
                             parent_run_id: str = "", run_uid: str = "", *, nodes: int, gpus_per_node: int,
                             job: dict, runtime: str = DEFAULT_RUNTIME, timeout_hours: float = DEFAULT_TIMEOUT_H,
                             poll_s: float = 10.0) -> dict:
    """Train the run's generator (``options_path``: run_options.json) on ``nodes`` nodes of
    ``gpus_per_node`` GPUs on the ``runtime`` ClusterTrainingRuntime; write it to
    ``out_path`` and its sample page to ``html_path``, as train_generator does. ``run_uid``:
    KFP's run UUID, which names the job. ``job``: see request_for. Returns train_generator's
    metadata and the TrainJob's name and shape. Unless the job completed, it is deleted on
    the way out, whatever stopped the wait (its failure, the timeout, an error, SIGTERM)."""
    from genaug.deploy.cluster import connect
    from genaug.deploy.trainjobs import TrainJobs
    from genaug.services.store import Store

    if nodes < 2:
        raise ValueError(f"NODES={nodes}: a TrainJob is for 2 or more nodes; NODES=1 trains in the pipeline's pod")
    if timeout_hours <= 0:
        raise ValueError(f"TrainJob timeout {timeout_hours} h must be > 0 hours")
    if not run_uid:
        raise ValueError("run_uid is empty: the TrainJob is named by the KFP run's UUID (dsl.PIPELINE_JOB_ID_PLACEHOLDER)")
    run = load_options(options_path)
    name = job_name(run_uid)
    api_client, namespace = connect()
    jobs, store, staging = TrainJobs(api_client, namespace), Store(), handoff.prefix(name)
    data_sha256 = handoff.stage_data(store, staging, data_path)
    command = node_command(staging, data_sha256, parent_run_id, run)
    request = request_for(name, namespace, command, nodes, gpus_per_node, runtime, timeout_hours, job)
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731  the KFP task's log
    say(f"[genaug] TrainJob {namespace}/{name}: {nodes} nodes x {gpus_per_node} GPUs on runtime {runtime!r}")
    completed = False
    with sigterm_raises():
        try:
            jobs.submit(train_job(request).to_dict())
            jobs.wait(name, timeout_s=timeout_hours * 3600, poll_s=poll_s, log=say)
            completed = True
        finally:
            if not completed:
                _stop(jobs, name, say)
    meta = handoff.collect(store, staging, out_path, html_path, data_sha256)
    handoff.drop_data(store, staging)
    return {**meta, "trainjob": name, "nodes": nodes, "gpus_per_node": gpus_per_node}


def _stop(jobs, name: str, say) -> None:
    """Delete the job on the way out of a failed wait; a failure to delete is said, and the
    wait's own error is the one raised (the job's activeDeadlineSeconds still stops it)."""
    try:
        if jobs.delete(name):
            say(f"[genaug] TrainJob {name} deleted: its GPUs are free")
    except Exception as err:  # the API is the likely cause of the wait's error too
        say(f"[genaug] TrainJob {name} could not be deleted ({err}); delete it by hand: kubectl delete trainjob {name}")
