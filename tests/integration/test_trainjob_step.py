"""The pipeline's TrainJob task end to end, against the Kubernetes API stand-in
(tests/k8s_api_fixture.py) and the session's real S3 and MLflow.

The stand-in plays the cluster: it runs the submitted job's command on two "nodes" (two
torchrun processes here, one gloo rank each, with the PET_* variables the torch-distributed
runtime sets and the environment resolved from the ConfigMap and Secrets the job names).
So the task's staging, the nodes' real two-node training, rank 0's hand-off through S3, the
relayed log and the generator the task writes are all real; only the scheduling is not.
"""

import pytest

from components import settings
from genaug import checkpoint
from genaug.params import write_options
from genaug.steps import get
from genaug.steps.train_generator_trainjob import job_name
from pipelines import placement
from tests.configs import smoke
from tests.k8s_api_fixture import ClusterApi, FakeCluster, NodeRunner

RUN_ID = "genaug-trainjob-test"


@pytest.fixture
def cluster(stack, tiny_fmnist, tmp_path, monkeypatch):
    """The stand-in with a NodeRunner, a kubeconfig for it, and the stack's environment back
    (tiny_fmnist's offline_env removes it)."""
    import sys

    from tests.conftest import REPO

    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    env = stack.env
    runner = NodeRunner(
        config_maps={settings.CONFIG_MAP: {key: env.get(key, "") for key in placement.SERVICE_ENV}},
        secrets={settings.S3_SECRET: {k: env[k] for k in placement.SECRET_ENV},
                 settings.MLFLOW_SECRET: {"GENAUG_MLFLOW_PIPELINE_USERNAME": env["MLFLOW_TRACKING_USERNAME"],
                                          "GENAUG_MLFLOW_PIPELINE_PASSWORD": env["MLFLOW_TRACKING_PASSWORD"]}},
        path=f"{sys.prefix}/bin:/usr/bin:/bin",
        extra_env={"PYTHONPATH": f"{REPO / 'src'}:{REPO}", "OMP_NUM_THREADS": "1",
                   "GENAUG_STACK_ENV": str(tmp_path / "no-stack.env")})
    with ClusterApi(FakeCluster(runner=runner)) as api:
        monkeypatch.setenv("KUBECONFIG", api.kubeconfig(tmp_path / "kubeconfig", "team-a"))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield api


def _inputs(tmp_path, **params):
    data, options = tmp_path / "prepared", tmp_path / "run_options.json"
    config = smoke(generator="dcgan", **params)
    get("prepare_data")(str(data), data=config.data)
    write_options(config, str(options))
    return str(data), str(options)


def test_two_nodes_train_and_the_task_hands_on_rank_0s_generator(cluster, tmp_path, capfd):
    data, options = _inputs(tmp_path)
    parent = get("start_tracking")("fashion_mnist", "dcgan", "cnn", "smoke", 0, 0.5, RUN_ID)["parent_run_id"]
    model, page = tmp_path / "model.pt", tmp_path / "samples.html"
    meta = get("train_generator_trainjob")(data, options, str(model), str(page), parent_run_id=parent,
                                            run_uid=RUN_ID, nodes=2, gpus_per_node=1, poll_s=0.2,
                                            job={**placement.trainjob_settings(), "gpu_resource": "nvidia.com/gpu"})
    name = job_name(RUN_ID)
    assert (meta["trainjob"], meta["nodes"]) == (name, 2)
    # The task's model is rank 0's, whole: it loads as train_generator's own output does.
    _, loaded = checkpoint.load(str(model), "generator")
    assert loaded["arch"] == "dcgan" and loaded["meta"]["data_hash"] == meta["data_hash"] and page.is_file()
    assert meta["mlflow_run_id"]  # rank 0 logged its training to the run's MLflow parent
    submitted = cluster.fake.requests[0][3]
    assert submitted["spec"]["trainer"]["numNodes"] == 2
    # Two ranks trained: rank 0 said so in the log the task relayed.
    err = capfd.readouterr().err
    assert f"[{name}-node-0-0-x7k2p] [genaug] step train_generator: started" in err and "Complete=True" in err
    # What the task asked of the API is what the pipeline's Role grants, and nothing else.
    assert set(cluster.fake.access) <= {("create", "trainjobs"), ("get", "trainjobs"), ("watch", "trainjobs"),
                                        ("delete", "trainjobs"), ("list", "pods"), ("get", "pods/log")}


def test_a_failing_node_or_a_timeout_fails_the_task_and_deletes_the_job(cluster, tmp_path):
    data, options = _inputs(tmp_path)
    job = {**placement.trainjob_settings(), "gpu_resource": "nvidia.com/gpu"}
    cluster.fake.runner.secrets[settings.S3_SECRET] = {"GENAUG_S3_ACCESS_KEY": "nobody",
                                                        "GENAUG_S3_SECRET_KEY": "wrong"}
    from genaug.deploy.trainjobs import TrainJobError

    with pytest.raises(TrainJobError, match="failed"):
        get("train_generator_trainjob")(data, options, str(tmp_path / "m.pt"), "", run_uid=RUN_ID + "-bad",
                                        nodes=2, gpus_per_node=1, poll_s=0.2, job=job)
    assert cluster.fake.deleted == [job_name(RUN_ID + "-bad")]
    cluster.fake.runner, cluster.fake.final = None, ""  # a job that never ends
    with pytest.raises(TrainJobError, match="did not finish within 1 s"):
        get("train_generator_trainjob")(data, options, str(tmp_path / "m.pt"), "", run_uid=RUN_ID + "-slow",
                                        nodes=2, gpus_per_node=1, poll_s=0.2, job=job, timeout_hours=1 / 3600)
    assert cluster.fake.deleted[-1] == job_name(RUN_ID + "-slow") and not (tmp_path / "m.pt").exists()


def test_a_cancelled_run_deletes_its_trainjob_in_the_exit_handler(cluster):
    from genaug.deploy.trainjob import TrainJobRequest, train_job
    from genaug.deploy.trainjobs import TrainJobs

    cluster.fake.runner, cluster.fake.final = None, ""  # a job that runs until it is deleted
    name = job_name(RUN_ID + "-cancelled")
    TrainJobs(cluster.api_client(), "team-a").submit(
        train_job(TrainJobRequest(name, "team-a", settings.IMAGE, ["torchrun"], 2, 8)).to_dict())
    get("final_status")("genaug-run-display-name", "CANCELLED", nodes=2, run_uid=RUN_ID + "-cancelled")
    assert cluster.fake.deleted == [name]
    get("final_status")("genaug-run-display-name", "SUCCEEDED", nodes=2, run_uid=RUN_ID + "-ok")
    assert cluster.fake.deleted == [name]  # a run that succeeded leaves its completed job be
