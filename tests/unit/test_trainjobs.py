"""Submitting, waiting for and deleting a TrainJob against a recording stand-in of the
Kubernetes API (tests/k8s_api_fixture.py), which checks every object with the typed model."""

import pytest

from genaug.deploy.trainjob import TrainJobRequest, train_job
from genaug.deploy.trainjobs import TrainJobError, TrainJobs
from tests.k8s_api_fixture import FakeTrainer, TrainerApi

PATH = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/kubeflow/trainjobs"


@pytest.fixture
def trainer():
    api = TrainerApi(FakeTrainer())
    yield api
    api.close()


def _job(name="gen-abc"):
    return train_job(TrainJobRequest(name, "kubeflow", "ghcr.io/genaug/genaug:0.1.0", ["python", "-m", "genaug.cli"],
                                     2, 8)).to_dict()


def test_the_exact_object_is_submitted_then_watched_to_completion_and_deleted(trainer):
    jobs, lines = TrainJobs(trainer.api_client(), "kubeflow"), []
    jobs.submit(_job())
    outcome = jobs.wait("gen-abc", timeout_s=30, poll_s=0.01, log=lines.append)
    assert outcome.state == "Complete"
    assert [r[:2] for r in trainer.fake.requests][0] == ("POST", PATH)
    assert trainer.fake.requests[0][2] == _job()  # exactly what train_job built
    assert lines[0].endswith("pending") and "Complete=True" in lines[-1]
    assert jobs.delete("gen-abc") and not jobs.delete("gen-abc")  # gone: False, no error


def test_a_failed_job_and_a_timeout_raise_with_the_reason(trainer):
    jobs = TrainJobs(trainer.api_client(), "kubeflow")
    trainer.fake.final = "Failed"
    jobs.submit(_job("failing"))
    with pytest.raises(TrainJobError, match="failed .*exit code 1"):
        jobs.wait("failing", timeout_s=30, poll_s=0.01)
    trainer.fake.final = ""
    jobs.submit(_job("stuck"))
    with pytest.raises(TrainJobError, match="did not finish within 0 s"):
        jobs.wait("stuck", timeout_s=0.0, poll_s=0.01)


def test_no_trainer_installed_and_no_rbac_name_the_fix(trainer):
    jobs = TrainJobs(trainer.api_client(), "kubeflow")
    trainer.fake.installed = False
    with pytest.raises(TrainJobError, match="Kubeflow Trainer is not installed"):
        jobs.submit(_job())
    trainer.fake.installed, trainer.fake.forbidden = True, {"create"}
    with pytest.raises(TrainJobError, match="may not do this on trainjobs.trainer.kubeflow.org.*pipeline-access"):
        jobs.submit(_job())
