"""The TrainJob that trains a generator across nodes on Kubeflow Trainer.

Built with the typed models of ``kubeflow-trainer-api`` 2.3.0 (TrainJob
``trainer.kubeflow.org/v1alpha1``): a value of the wrong type fails at construction. The
models ignore unknown fields, so the tests also check every key of the object against the
models' fields, and the name and variables against the CRD's and Trainer's webhook's rules
(tests/k8s_api_fixture.py ``refusals``). The job runs the training step (``genaug step train_generator_staged``, which is
``train_generator`` with its data and outputs in S3) under torchrun on the
``torch-distributed`` ClusterTrainingRuntime. That runtime's controller sets PET_NNODES,
PET_NPROC_PER_NODE, PET_NODE_RANK (the pod's Job completion index) and
PET_MASTER_ADDR/PORT in the trainer container, and torchrun reads each of its flags from
the PET_-prefixed variable, so the command is ``torchrun -m genaug.cli step ...`` with no
flags; each node runs one process per GPU (``numProcPerNode``).

Trainer 2.2 replaced ``podTemplateOverrides`` with ``runtimePatches`` (a list of patches,
each owned by a ``manager``); 2.3 is what is pinned. What genaug patches into the runtime's
``node`` job, on every node's pod:
- Istio sidecar injection off (a sidecar keeps a finished pod running and intercepts the
  rendezvous), and the client labels the NetworkPolicies admit to S3 and MLflow;
- a RAM-backed /dev/shm for NCCL and the DataLoader, mounted in the node container;
- the GPU nodes' selector and toleration, and the images' non-root user.
Endpoints and credentials reach the trainer container as environment variables from the
same ConfigMap and Secrets the pipeline's steps use, by reference only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubeflow_trainer_api import models as m

from genaug.deploy import SHM_LIMIT

API_VERSION, KIND = "trainer.kubeflow.org/v1alpha1", "TrainJob"
RUNTIME_KIND = "ClusterTrainingRuntime"
DEFAULT_RUNTIME = "torch-distributed"
NODE_JOB = "node"        # the torch-distributed runtime's replicated job and its container
MANAGER = "genaug.io/pipeline"
NO_SIDECAR = {"sidecar.istio.io/inject": "false"}
PART_OF = {"app.kubernetes.io/part-of": "genaug"}


@dataclass(frozen=True)
class EnvRef:
    """An environment variable taken from a key of a Secret (``kind="secret"``) or a ConfigMap."""

    name: str
    source: str
    key: str
    kind: str = "secret"

    def __post_init__(self):
        if self.kind not in ("secret", "configMap"):
            raise ValueError(f"an environment reference is to a secret or a configMap, not {self.kind!r}")


@dataclass(frozen=True)
class Placement:
    """Where the nodes' pods go and as whom they run (the pipeline's GPU placement)."""

    node_selector: dict[str, str] = field(default_factory=dict)
    toleration_key: str = ""
    run_as_user: int | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)


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
    env: list[EnvRef] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)   # plain settings, never a secret
    placement: Placement = field(default_factory=Placement)
    labels: dict[str, str] = field(default_factory=dict)
    deadline_s: int | None = None   # activeDeadlineSeconds: the cluster stops the job after this
    # CPU and memory per node, besides the GPUs: {"requests": {"cpu": "4"}, "limits": {...}}
    resources: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self):
        if self.nodes < 1 or self.gpus_per_node < 1:
            raise ValueError(f"a TrainJob needs at least one node and one GPU per node; got nodes={self.nodes}, "
                             f"gpus_per_node={self.gpus_per_node}")


def _env(refs: list[EnvRef], values: dict[str, str]) -> list[m.IoK8sApiCoreV1EnvVar]:
    out = [m.IoK8sApiCoreV1EnvVar(name=name, value=value) for name, value in sorted(values.items())]
    for ref in refs:
        source = (m.IoK8sApiCoreV1EnvVarSource(secretKeyRef=m.IoK8sApiCoreV1SecretKeySelector(
            name=ref.source, key=ref.key)) if ref.kind == "secret" else
            m.IoK8sApiCoreV1EnvVarSource(configMapKeyRef=m.IoK8sApiCoreV1ConfigMapKeySelector(
                name=ref.source, key=ref.key)))
        out.append(m.IoK8sApiCoreV1EnvVar(name=ref.name, valueFrom=source))
    return out


def _node_patch(placement: Placement) -> m.TrainerV1alpha1RuntimePatch:
    """Every node's pod of the runtime's node job: see the module's docstring."""
    labels = {**NO_SIDECAR, **PART_OF, **placement.pod_labels}
    tolerations = ([m.IoK8sApiCoreV1Toleration(key=placement.toleration_key, operator="Exists", effect="NoSchedule")]
                   if placement.toleration_key else None)
    security = (m.IoK8sApiCoreV1PodSecurityContext(runAsUser=placement.run_as_user, runAsGroup=placement.run_as_user,
                                                   runAsNonRoot=True) if placement.run_as_user is not None else None)
    pod = m.TrainerV1alpha1PodTemplatePatch(
        metadata=m.IoK8sApimachineryPkgApisMetaV1ObjectMeta(annotations=NO_SIDECAR, labels=labels),
        spec=m.TrainerV1alpha1PodSpecPatch(
            nodeSelector=placement.node_selector or None, tolerations=tolerations, securityContext=security,
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
    def quantities(which: str) -> dict:
        values = {**request.resources.get(which, {}), request.gpu_resource: str(request.gpus_per_node)}
        return {name: m.IoK8sApimachineryPkgApiResourceQuantity(value) for name, value in values.items()}

    return m.TrainerV1alpha1TrainJob(
        apiVersion=API_VERSION, kind=KIND,
        metadata=m.IoK8sApimachineryPkgApisMetaV1ObjectMeta(name=request.name, namespace=request.namespace,
                                                             labels={**PART_OF, **request.labels}),
        spec=m.TrainerV1alpha1TrainJobSpec(
            runtimeRef=m.TrainerV1alpha1RuntimeRef(name=request.runtime, kind=RUNTIME_KIND,
                                                   apiGroup=API_VERSION.split("/")[0]),
            activeDeadlineSeconds=request.deadline_s,
            trainer=m.TrainerV1alpha1Trainer(
                image=request.image, command=list(request.command), numNodes=request.nodes,
                numProcPerNode=request.gpus_per_node, env=_env(request.env, request.values),
                resourcesPerNode=m.IoK8sApiCoreV1ResourceRequirements(limits=quantities("limits"),
                                                                      requests=quantities("requests"))),
            runtimePatches=[_node_patch(request.placement)]))
