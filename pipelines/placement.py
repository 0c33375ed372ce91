"""Where and how each task runs on a cluster: image, CPU and memory, GPUs, the service
endpoints and credentials, retries and caching; one table, keyed by component name.

GPU steps run in the GPU image, the others in the slim CPU image; every task runs as the
images' non-root user, and a task that talks to the services carries the pod labels the
NetworkPolicies admit (manifests/base/services/network-policies.yaml).

``place_tasks()`` is called at the end of a pipeline function and configures every task
built so far, loop bodies included, so a new step gets a policy by adding one line here.
Locally, kfp.local ignores the Kubernetes settings and only warns about resources; the
compiled YAML carries all of it (tests/unit/test_pipeline_compile.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp import kubernetes
from kfp.dsl import pipeline_context
from kfp.dsl.pipeline_channel import PipelineChannel

from components import settings
from genaug.deploy import SHM_LIMIT as TRAINJOB_SHM


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    gpu: bool = False       # accelerators, a GPU node selector and toleration
    services: bool = True   # talks to S3 / MLflow / Triton: endpoints, credentials, retries
    # Every GPU of the pod (accelerator_count; genaug.steps.gpus runs one process per GPU) and
    # an in-memory /dev/shm for NCCL and the DataLoader (a pod's default is 64 MB). Otherwise
    # one GPU: synthesis and the metrics run in one process.
    all_gpus: bool = False


LIGHT = Resources("250m", "1", "512Mi", "2Gi")
CPU = Resources("2", "4", "8Gi", "16Gi")
GPU = Resources("4", "8", "16Gi", "48Gi", gpu=True)
TRAIN = Resources("4", "8", "16Gi", "48Gi", gpu=True, all_gpus=True)
SHM_LIMIT = TRAINJOB_SHM  # the same on a TrainJob's nodes; counts against the memory limit: medium Memory is RAM
OFFLINE = Resources("250m", "1", "512Mi", "2Gi", services=False)

POLICY: dict[str, Resources] = {
    "resolve-config": OFFLINE, "plan-experiment": OFFLINE, "synthesis-ratio": OFFLINE, "parent-run": OFFLINE,
    "arm-setup": OFFLINE, "experiment-arms": OFFLINE,
    "bundle-arms": Resources("500m", "2", "2Gi", "8Gi", services=False),
    "data-version": Resources("500m", "2", "1Gi", "4Gi"),  # may snapshot a source: hashing, streamed
    "start-tracking": LIGHT, "record-final-status": LIGHT, "report": LIGHT, "summarize-experiment": LIGHT,
    "prepare-data": CPU, "evaluate": CPU, "export-generator": CPU, "export-classifier": CPU,
    "promote-generator": CPU, "promote-classifier": CPU,
    "train-generator": TRAIN, "synthesize": GPU,
    # NODES > 1: a CPU task that submits and watches the TrainJob; the GPUs are the job's.
    "train-generator-trainjob": LIGHT, "train-classifier": TRAIN, "evaluate-generator": GPU,
    "fid-reference": GPU, "filter-synthetic": GPU, "run-config": GPU,
}
# Only the dataset step may come from KFP's cache; every other step must really rerun, so
# that a scheduled run retrains and re-measures.
CACHEABLE = {"prepare-data"}
# Tasks that are not retried: what fails data-version (an unknown dataset, a bad source) or
# prepare_data (a dataset that is missing, corrupt or unreadable) cannot change between
# attempts, and a newcomer without the data must hear so in seconds, not after minutes of
# back-off. Brief S3 outages are retried inside the S3 client.
NOT_RETRIED = {"data-version", "prepare-data"}
SERVICE_ENV = {  # environment variable -> key, in the ConfigMap
    "GENAUG_S3_ENDPOINT": "GENAUG_S3_ENDPOINT", "GENAUG_S3_SECURE": "GENAUG_S3_SECURE",
    "MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI", "GENAUG_TRITON_GRPC": "GENAUG_TRITON_GRPC",
    "GENAUG_TRITON_HTTP": "GENAUG_TRITON_HTTP"}
SECRET_ENV = {"GENAUG_S3_ACCESS_KEY": "GENAUG_S3_ACCESS_KEY", "GENAUG_S3_SECRET_KEY": "GENAUG_S3_SECRET_KEY"}
# The promote steps run with the promote identity under the same variable names.
PROMOTERS = {"promote-generator", "promote-classifier"}
PROMOTE_SECRET_ENV = {"GENAUG_PROMOTE_ACCESS_KEY": "GENAUG_S3_ACCESS_KEY",
                      "GENAUG_PROMOTE_SECRET_KEY": "GENAUG_S3_SECRET_KEY"}
# MLflow's accounts (genaug.services.mlflow_access): the pipeline's for every step, the
# promote account instead for the promote steps, under the variables MLflow's client reads.
MLFLOW_SECRET_ENV = {"GENAUG_MLFLOW_PIPELINE_USERNAME": "MLFLOW_TRACKING_USERNAME",
                     "GENAUG_MLFLOW_PIPELINE_PASSWORD": "MLFLOW_TRACKING_PASSWORD"}
PROMOTE_MLFLOW_SECRET_ENV = {"GENAUG_MLFLOW_PROMOTE_USERNAME": "MLFLOW_TRACKING_USERNAME",
                             "GENAUG_MLFLOW_PROMOTE_PASSWORD": "MLFLOW_TRACKING_PASSWORD"}
# The data-version step reads a DATA_SOURCE on another server with these (all optional).
SOURCE_SECRET_ENV = {key: key for key in ("GENAUG_SOURCE_S3_ENDPOINT", "GENAUG_SOURCE_S3_ACCESS_KEY",
                                          "GENAUG_SOURCE_S3_SECRET_KEY", "GENAUG_SOURCE_S3_SECURE")}
RETRIES, BACKOFF, BACKOFF_FACTOR, BACKOFF_MAX = 2, "30s", 2.0, "5m"


def component_key(task) -> str:
    """'train-generator' for a task of the train_generator component."""
    return task.component_spec.name.replace("_", "-")


def configure(task, policy: Resources, accelerator_type, accelerator_count) -> None:
    """Apply ``policy`` to ``task``; accelerator type and count may be pipeline parameters."""
    if policy.gpu and not settings.GPU_STEPS:
        policy = CPU
    task.set_cpu_request(policy.cpu_request).set_cpu_limit(policy.cpu_limit)
    task.set_memory_request(policy.memory_request).set_memory_limit(policy.memory_limit)
    task.set_caching_options(component_key(task) in CACHEABLE)
    task.set_container_image(settings.IMAGE if policy.gpu else settings.CPU_IMAGE)
    kubernetes.set_security_context(task, run_as_user=settings.RUN_AS_UID, run_as_group=settings.RUN_AS_UID,
                                    run_as_non_root=True)
    if policy.gpu:
        count = accelerator_count if policy.all_gpus else 1
        task.set_accelerator_type(accelerator_type).set_accelerator_limit(count)
        # Resource fields are not inputs to the compiler, which then leaves parameters used
        # only there out of the sub-DAGs (the exit handler's) that hold the task.
        task.register_pipeline_channels([c for c in (accelerator_type, count) if isinstance(c, PipelineChannel)])
        if policy.all_gpus:
            kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory",
                                       size_limit=SHM_LIMIT)
            if settings.BATCH_PER_GPU:
                task.set_env_variable("GENAUG_BATCH_PER_GPU", settings.BATCH_PER_GPU)
        label, _, value = settings.GPU_NODE_LABEL.partition("=")
        kubernetes.add_node_selector(task, label, value)
        kubernetes.add_toleration(task, key=settings.GPU_TOLERATION_KEY, operator="Exists", effect="NoSchedule")
    if policy.services:
        for key, value in settings.CLIENT_LABELS.items():
            kubernetes.add_pod_label(task, key, value)
        kubernetes.use_config_map_as_env(task, settings.CONFIG_MAP, SERVICE_ENV)
        if component_key(task) in PROMOTERS:
            kubernetes.use_secret_as_env(task, settings.PROMOTE_S3_SECRET, PROMOTE_SECRET_ENV)
            kubernetes.use_secret_as_env(task, settings.PROMOTE_MLFLOW_SECRET, PROMOTE_MLFLOW_SECRET_ENV)
        else:
            kubernetes.use_secret_as_env(task, settings.S3_SECRET, SECRET_ENV)
            kubernetes.use_secret_as_env(task, settings.MLFLOW_SECRET, MLFLOW_SECRET_ENV)
    if policy.services and component_key(task) not in NOT_RETRIED:
        task.set_retry(RETRIES, backoff_duration=BACKOFF, backoff_factor=BACKOFF_FACTOR,
                       backoff_max_duration=BACKOFF_MAX)
    if component_key(task) == "data-version":
        kubernetes.use_secret_as_env(task, settings.SOURCE_S3_SECRET, SOURCE_SECRET_ENV, optional=True)
    if component_key(task) in PROMOTERS:
        kubernetes.use_secret_as_env(task, settings.TRITON_ADMIN_SECRET,
                                     {"GENAUG_TRITON_ADMIN_KEY": "GENAUG_TRITON_ADMIN_KEY"})


def trainjob_settings() -> dict:
    """The compiled-in part of a TrainJob (genaug.steps.train_generator_trainjob.request_for):
    its nodes run the GPU image with the training step's resources and placement, and reach
    S3 and MLflow (not Triton: training never calls it) with the steps' endpoints and
    credentials, all from the tables above."""
    policy = TRAIN if settings.GPU_STEPS else CPU
    label, _, value = settings.GPU_NODE_LABEL.partition("=")
    env = ([{"name": var, "source": settings.CONFIG_MAP, "key": key, "kind": "configMap"}
            for key, var in SERVICE_ENV.items() if "TRITON" not in key] +
           [{"name": var, "source": secret, "key": key} for secret, table in
            ((settings.S3_SECRET, SECRET_ENV), (settings.MLFLOW_SECRET, MLFLOW_SECRET_ENV)) for key, var in table.items()])
    values = {"GENAUG_BATCH_PER_GPU": settings.BATCH_PER_GPU} if settings.BATCH_PER_GPU else {}
    return {"image": settings.IMAGE if settings.GPU_STEPS else settings.CPU_IMAGE, "env": env, "values": values,
            "placement": {"node_selector": {label: value} if settings.GPU_STEPS else {},
                          "toleration_key": settings.GPU_TOLERATION_KEY if settings.GPU_STEPS else "",
                          "run_as_user": settings.RUN_AS_UID,
                          "pod_labels": {k: v for k, v in settings.CLIENT_LABELS.items() if "triton" not in k}},
            "resources": {"requests": {"cpu": policy.cpu_request, "memory": policy.memory_request},
                          "limits": {"cpu": policy.cpu_limit, "memory": policy.memory_limit}}}


def place_tasks(accelerator_type, accelerator_count) -> None:
    """Configure every task of the pipeline being built (call it last in the pipeline function)."""
    for task in pipeline_context.Pipeline.get_default_pipeline().tasks.values():
        key = component_key(task)
        if key not in POLICY:
            raise KeyError(f"no placement policy for component {key!r}; add it to pipelines/placement.py POLICY")
        configure(task, POLICY[key], accelerator_type, accelerator_count)
