"""Submitting, watching and deleting a TrainJob, and relaying rank 0's log, against a
recording stand-in of the Kubernetes API (tests/k8s_api_fixture.py), which checks every
object with the typed model."""

import pytest

from genaug.deploy.trainjob import TrainJobRequest, train_job
from genaug.deploy.trainjobs import TrainJobError, TrainJobs
from tests.k8s_api_fixture import ClusterApi, FakeCluster

PATH = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/kubeflow/trainjobs"


@pytest.fixture
def cluster():
    with ClusterApi(FakeCluster()) as api:
        yield api


def _job(name="gen-abc"):
    return train_job(TrainJobRequest(name, "kubeflow", "ghcr.io/genaug/genaug:0.1.0", ["torchrun", "-m", "genaug.cli"],
                                     2, 8)).to_dict()


def test_the_exact_object_is_submitted_then_watched_to_completion_with_rank_0s_log_and_deleted(cluster):
    jobs, lines = TrainJobs(cluster.api_client(), "kubeflow"), []
    jobs.submit(_job())
    outcome = jobs.wait("gen-abc", timeout_s=30, poll_s=0.01, log=lines.append)
    assert outcome.state == "Complete"
    assert cluster.fake.requests[0][:2] == ("POST", PATH) and cluster.fake.requests[0][3] == _job()
    assert lines[0].endswith("pending") and "Complete=True" in lines[-1]
    relayed = [line for line in lines if line.startswith("[gen-abc-node-0-0-")]
    assert [r.split("] ", 1)[1] for r in relayed] == ["[genaug] step train_generator: started", "step 1/2"]  # once each
    assert ("watch", "trainjobs") in cluster.fake.access and ("get", "pods/log") in cluster.fake.access
    assert jobs.delete("gen-abc") and not jobs.delete("gen-abc")  # gone: False, no error


def test_a_second_attempt_follows_a_running_job_and_replaces_a_failed_one(cluster):
    jobs = TrainJobs(cluster.api_client(), "kubeflow")
    jobs.submit(_job())
    jobs.submit(_job())  # 409: the earlier attempt's job, still running, is followed
    assert [r[0] for r in cluster.fake.requests] == ["POST", "POST", "GET"] and not cluster.fake.deleted
    cluster.fake.final, cluster.fake.reads["gen-abc"] = "Failed", 5
    jobs.submit(_job())
    assert cluster.fake.deleted == ["gen-abc"] and "gen-abc" in cluster.fake.jobs  # deleted, then submitted anew


def test_a_failed_job_and_a_timeout_raise_with_the_reason(cluster):
    jobs = TrainJobs(cluster.api_client(), "kubeflow")
    cluster.fake.final = "Failed"
    jobs.submit(_job("failing"))
    with pytest.raises(TrainJobError, match="failed .*exit code 1"):
        jobs.wait("failing", timeout_s=30, poll_s=0.01)
    cluster.fake.final = ""
    jobs.submit(_job("stuck"))
    with pytest.raises(TrainJobError, match="did not finish within 0 s.*jobset-name=stuck"):
        jobs.wait("stuck", timeout_s=0.0, poll_s=0.01)


def test_no_trainer_installed_and_no_rbac_name_the_fix(cluster):
    jobs = TrainJobs(cluster.api_client(), "kubeflow")
    cluster.fake.installed = False
    with pytest.raises(TrainJobError, match="Kubeflow Trainer is not installed"):
        jobs.submit(_job())
    cluster.fake.installed, cluster.fake.forbidden = True, {"create"}
    with pytest.raises(TrainJobError, match="may not do this on trainjobs.trainer.kubeflow.org.*pipeline-access"):
        jobs.submit(_job())


def test_a_log_the_role_may_not_read_is_said_once_and_the_wait_goes_on(cluster):
    jobs, lines = TrainJobs(cluster.api_client(), "kubeflow"), []
    cluster.fake.forbidden = {"pods/log"}
    jobs.submit(_job())
    assert jobs.wait("gen-abc", timeout_s=30, poll_s=0.01, log=lines.append).state == "Complete"
    assert sum("is not relayed (the API answered 403" in line for line in lines) == 1


def test_a_dropped_watch_is_retried_and_a_deleted_job_ends_the_wait(cluster, monkeypatch):
    from genaug.deploy import trainjobs

    monkeypatch.setattr(trainjobs, "RETRY_S", 0.01)
    jobs, lines = TrainJobs(cluster.api_client(), "kubeflow"), []
    jobs.submit(_job())
    cluster.fake.watch_failures = [503, 500]
    assert jobs.wait("gen-abc", timeout_s=30, poll_s=0.01, log=lines.append).state == "Complete"
    assert sum("failed for now" in line for line in lines) == 2 and not cluster.fake.watch_failures
    jobs.submit(_job("other"))
    cluster.fake.deleted_while_watched, cluster.fake.final = True, ""
    with pytest.raises(TrainJobError, match="other was deleted while the pipeline waited"):
        jobs.wait("other", timeout_s=30, poll_s=0.01)


def test_what_the_api_server_would_refuse_is_refused_by_the_stand_in_too(cluster):
    """The typed models drop unknown fields without a word; the stand-in does not."""
    jobs, job = TrainJobs(cluster.api_client(), "kubeflow"), _job("Bad_Name")
    job["spec"]["trainer"]["numNodez"] = 3
    job["spec"]["trainer"]["env"] = [{"name": "PET_NNODES", "value": "2"}]
    with pytest.raises(TrainJobError, match="refused the object") as err:
        jobs.submit(job)
    for problem in ("unknown field .spec.trainer.numNodez", "'Bad_Name' is not a DNS-1035 label",
                    "reserved envs: PET_NNODES"):
        assert problem in str(err.value)
