"""The TrainJob that trains a generator across nodes on Kubeflow Trainer (issue 25, in progress).

Built with the typed models of ``kubeflow-trainer-api`` (2.3.0: TrainJob
``trainer.kubeflow.org/v1alpha1``), so a misspelt field fails at construction, not in the
cluster. The job runs the same command a pipeline step runs (``genaug step train_generator
...``) on the ``torch-distributed`` ClusterTrainingRuntime, whose torchrun gives every node
``--nnodes``/``--node-rank`` and the rendezvous; each node runs one process per GPU.

Trainer 2.3 patches the runtime's pod template through ``runtimePatches`` (a list of
patches, each owned by a ``manager``); earlier releases (2.0-2.1) had ``podSpecOverrides``.
What genaug patches into the runtime's ``node`` job:
- every node's pods: Istio sidecar injection off (a sidecar keeps a finished pod running
  and intercepts the rendezvous), and a RAM-backed /dev/shm for NCCL;
- the node container: the /dev/shm mount.
Credentials reach the trainer container as environment variables from the same Secrets the
pipeline's steps use, by reference only.

The torch-distributed runtime's controller sets PET_NNODES, PET_NPROC_PER_NODE,
PET_NODE_RANK and PET_MASTER_ADDR/PORT in the trainer container; torchrun reads each of its
flags from the PET_-prefixed variable, so the command is ``torchrun -m genaug.cli step
...`` with no flags (to confirm against kubeflow/trainer's runtime manifests). The pods carry
``trainer.kubeflow.org/job-name=<name>``, which the rank-0 log relay selects on.

Still to do for issue 25: the CPU task that submits, watches (state and rank-0 log lines),
times out and deletes it; the NODES parameter with its dsl.If branch and exit handler; the
Role rules; docs/kubeflow.md (what Trainer v2.2 changed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubeflow_trainer_api import models as m

API_VERSION, KIND = "trainer.kubeflow.org/v1alpha1", "TrainJob"
RUNTIME_KIND = "ClusterTrainingRuntime"
DEFAULT_RUNTIME = "torch-distributed"
NODE_JOB = "node"        # the torch-distributed runtime's replicated job and container
MANAGER = "genaug.io/pipeline"
SHM_LIMIT = "8Gi"
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable taken from a Secret's key."""

    name: str
    secret: str
    key: str


@dataclass(frozen=True)
class TrainJobRequest:
    name: str
    namespace: str
    image: str
    command: list[str]
    nodes: int
    gpus_per_node: int
    runtime: str = DEFAULT_RUNTIME
    gpu_resource: str = "nvidia.com/gpu"
    env: dict[str, str] = field(default_factory=dict)          # plain values (endpoints)
    secret_env: list[SecretEnv] = field(default_factory=list)  # credentials, by reference
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.nodes < 1 or self.gpus_per_node < 1:
            raise ValueError(f"a TrainJob needs at least one node and one GPU per node; got nodes={self.nodes}, "
                             f"gpus_per_node={self.gpus_per_node}")


def _env(request: TrainJobRequest) -> list:
    plain = [m.IoK8sApiCoreV1EnvVar(name=k, value=v) for k, v in sorted(request.env.items())]
    secret = [m.IoK8sApiCoreV1EnvVar(name=s.name, valueFrom=m.IoK8sApiCoreV1EnvVarSource(
        secretKeyRef=m.IoK8sApiCoreV1SecretKeySelector(name=s.secret, key=s.key))) for s in request.secret_env]
    return plain + secret


def _node_patch() -> m.TrainerV1alpha1RuntimePatch:
    """No Istio sidecar and a RAM-backed /dev/shm on every node of the runtime's node job."""
    pod = m.TrainerV1alpha1PodTemplatePatch(
        metadata=m.IoK8sApimachineryPkgApisMetaV1ObjectMeta(annotations=NO_SIDECAR, labels=NO_SIDECAR),
        spec=m.TrainerV1alpha1PodSpecPatch(
            volumes=[m.IoK8sApiCoreV1Volume(name="dshm", emptyDir=m.IoK8sApiCoreV1EmptyDirVolumeSource(
                medium="Memory", sizeLimit=m.IoK8sApimachineryPkgApiResourceQuantity(SHM_LIMIT)))],
            containers=[m.TrainerV1alpha1ContainerPatch(
                name=NODE_JOB, volumeMounts=[m.IoK8sApiCoreV1VolumeMount(name="dshm", mountPath="/dev/shm")])]))
    job = m.TrainerV1alpha1ReplicatedJobPatch(name=NODE_JOB, template=m.TrainerV1alpha1JobTemplatePatch(
        spec=m.TrainerV1alpha1JobSpecPatch(template=pod)))
    return m.TrainerV1alpha1RuntimePatch(manager=MANAGER, trainingRuntimeSpec=m.TrainerV1alpha1TrainingRuntimeSpecPatch(
        template=m.TrainerV1alpha1JobSetTemplatePatch(spec=m.TrainerV1alpha1JobSetSpecPatch(replicatedJobs=[job]))))


def train_job(request: TrainJobRequest) -> m.TrainerV1alpha1TrainJob:
    """The TrainJob object for ``request`` (typed; ``.to_dict()`` is what the API receives)."""
    gpus = m.IoK8sApimachineryPkgApiResourceQuantity(str(request.gpus_per_node))
    return m.TrainerV1alpha1TrainJob(
        apiVersion=API_VERSION, kind=KIND,
        metadata=m.IoK8sApimachineryPkgApisMetaV1ObjectMeta(name=request.name, namespace=request.namespace,
                                                             labels={"app.kubernetes.io/part-of": "genaug",
                                                                     **request.labels}),
        spec=m.TrainerV1alpha1TrainJobSpec(
            runtimeRef=m.TrainerV1alpha1RuntimeRef(name=request.runtime, kind=RUNTIME_KIND,
                                                   apiGroup=API_VERSION.split("/")[0]),
            trainer=m.TrainerV1alpha1Trainer(
                image=request.image, command=list(request.command), numNodes=request.nodes,
                numProcPerNode=request.gpus_per_node, env=_env(request),
                resourcesPerNode=m.IoK8sApiCoreV1ResourceRequirements(limits={request.gpu_resource: gpus},
                                                                      requests={request.gpu_resource: gpus})),
            runtimePatches=[_node_patch()]))
