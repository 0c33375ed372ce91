"""The TrainJob object (genaug.deploy.trainjob), built with kubeflow-trainer-api's typed
models, as the pipeline's TrainJob task builds it for NODES=2 with 8 GPUs per node."""

import pytest

from components import settings
from genaug.deploy.trainjob import NO_SIDECAR, EnvRef, TrainJobRequest
from genaug.steps.train_generator_trainjob import job_name
from pipelines.trainjob_preview import main, preview


def test_two_nodes_of_eight_gpus_on_the_torch_runtime_with_no_sidecar_and_a_ram_dev_shm():
    job = preview({"generator": "ddim", "profile": "smoke"}, nodes=2, gpus_per_node=8, run_id="genaug-ab12c")
    assert (job["apiVersion"], job["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert job["metadata"]["name"] == job_name("genaug-ab12c") and len(job["metadata"]["name"]) <= 30
    spec = job["spec"]
    assert spec["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime",
                                  "name": "torch-distributed"}
    assert spec["activeDeadlineSeconds"] == 48 * 3600 + 600  # the cluster stops it if the task is gone
    trainer = spec["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"], trainer["image"]) == (2, 8, settings.IMAGE)
    assert trainer["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": "8", "cpu": "8", "memory": "48Gi"}
    # torchrun with no flags: the runtime's PET_* variables give nodes, rank and rendezvous.
    assert trainer["command"][:5] == ["torchrun", "-m", "genaug.cli", "step", "train_generator_staged"]
    assert "--nnodes" not in " ".join(trainer["command"])
    env = {e["name"]: e for e in trainer["env"]}
    assert all("value" not in e for e in env.values())  # every value by reference: no secret in the object
    assert "GENAUG_BATCH_PER_GPU" not in env  # unset at compile time: each GPU its whole share
    assert env["GENAUG_S3_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {"name": settings.S3_SECRET,
                                                                        "key": "GENAUG_S3_SECRET_KEY"}
    assert env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": settings.MLFLOW_SECRET, "key": "GENAUG_MLFLOW_PIPELINE_PASSWORD"}
    assert env["GENAUG_S3_ENDPOINT"]["valueFrom"]["configMapKeyRef"]["name"] == settings.CONFIG_MAP
    assert not any("TRITON" in name for name in env)  # training never calls Triton
    (patch,) = spec["runtimePatches"]
    (node,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert node["name"] == "node"
    pod = node["template"]["spec"]["template"]
    assert pod["metadata"]["annotations"] == NO_SIDECAR
    labels = pod["metadata"]["labels"]  # the NetworkPolicies admit it to S3 and MLflow, not to Triton
    assert labels["genaug.io/s3-client"] == labels["genaug.io/mlflow-client"] == "true"
    assert "genaug.io/triton-client" not in labels
    assert pod["spec"]["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}]
    assert pod["spec"]["containers"] == [{"name": "node", "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]}]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["tolerations"][0]["key"] == settings.GPU_TOLERATION_KEY


def test_no_nodes_or_gpus_and_an_unknown_source_are_refused():
    with pytest.raises(ValueError, match="at least one node"):
        TrainJobRequest("x", "ns", "img", ["torchrun"], nodes=0, gpus_per_node=8)
    with pytest.raises(ValueError, match="a secret or a configMap, not 'file'"):
        EnvRef("X", "s", "k", kind="file")


def test_nodes_above_one_is_refused_on_this_machine_before_anything_starts(capsys):
    from pipelines import run_local

    assert run_local.main(["--nodes", "2", "--runs", "/nonexistent"]) == 2
    assert "TARGET=kfp" in capsys.readouterr().err


def test_the_preview_prints_the_object_and_names_a_bad_parameter(capsys):
    import yaml

    assert main(["--nodes", "2", "--gpus-per-node", "8", "--generator", "ddim"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["spec"]["trainer"]["numNodes"] == 2
    assert main(["--nodes", "0"]) == 2 and "at least one node" in capsys.readouterr().err


def test_a_compiled_in_batch_per_gpu_reaches_every_node(monkeypatch):
    monkeypatch.setattr(settings, "BATCH_PER_GPU", "16")
    job = preview({"generator": "ddim", "profile": "smoke"}, nodes=2, gpus_per_node=8)
    env = {e["name"]: e for e in job["spec"]["trainer"]["env"]}
    assert env["GENAUG_BATCH_PER_GPU"] == {"name": "GENAUG_BATCH_PER_GPU", "value": "16"}


def test_sigterm_while_waiting_raises_so_that_the_job_is_deleted_on_the_way_out():
    """KFP cancels a run by stopping its pods: SIGTERM, then a grace period."""
    import os
    import signal

    from genaug.steps.train_generator_trainjob import Terminated, sigterm_raises

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_raises():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 1.0) if hasattr(signal, "sigtimedwait") else None
    assert signal.getsignal(signal.SIGTERM) is before
