"""The TrainJob object (genaug.deploy.trainjob), built with kubeflow-trainer-api's typed models."""

import pytest

from genaug.deploy.trainjob import NO_SIDECAR, SecretEnv, TrainJobRequest, train_job


def _request(**over):
    base = dict(name="gen-abc", namespace="kubeflow", image="ghcr.io/genaug/genaug:0.1.0",
                command=["python", "-m", "genaug.cli", "step", "train_generator"], nodes=2, gpus_per_node=8,
                env={"GENAUG_S3_ENDPOINT": "minio.genaug.svc.cluster.local:9000"},
                secret_env=[SecretEnv("GENAUG_S3_ACCESS_KEY", "genaug-s3", "GENAUG_S3_ACCESS_KEY")])
    return TrainJobRequest(**{**base, **over})


def test_two_nodes_of_eight_gpus_on_the_torch_runtime_with_no_sidecar_and_a_ram_dev_shm():
    job = train_job(_request()).to_dict()
    assert (job["apiVersion"], job["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    spec = job["spec"]
    assert spec["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime",
                                  "name": "torch-distributed"}
    trainer = spec["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (2, 8)
    assert trainer["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": "8"}
    secret = [e for e in trainer["env"] if e["name"] == "GENAUG_S3_ACCESS_KEY"][0]
    assert "value" not in secret and secret["valueFrom"]["secretKeyRef"] == {"name": "genaug-s3",
                                                                           "key": "GENAUG_S3_ACCESS_KEY"}
    (patch,) = spec["runtimePatches"]
    (node,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    pod = node["template"]["spec"]["template"]
    assert pod["metadata"]["annotations"] == NO_SIDECAR
    assert pod["spec"]["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}]
    assert pod["spec"]["containers"][0]["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]


def test_no_nodes_or_gpus_is_refused():
    with pytest.raises(ValueError, match="at least one node"):
        _request(nodes=0)
