"""genaug.tracking against the real MLflow server of the test stack."""

import mlflow
import pytest

from genaug import tracking
from genaug.steps.timing import timed_step


@timed_step
def _step(x: int, parent_run_id: str = "") -> dict:
    tracking.log_params({"x": x})
    tracking.log_history({"epoch": [1, 2], "loss": [0.5, 0.25]}, "epoch")
    return {"x": x}


def test_parent_and_nested_step_runs(stack):
    parent = tracking.start_pipeline_run({"dataset": "mnist", "seed": 3},
                                         {"genaug.pipeline_run_id": "p-1", "genaug.dataset": "mnist"})
    meta = _step(7, parent_run_id=parent)
    client = mlflow.MlflowClient()
    child = client.get_run(meta["mlflow_run_id"])
    assert child.data.tags["mlflow.parentRunId"] == parent
    assert child.data.tags["genaug.pipeline_run_id"] == "p-1"  # inherited from the parent
    assert child.data.params["x"] == "7" and child.data.metrics["seconds"] >= 0
    assert [m.value for m in client.get_metric_history(child.info.run_id, "loss")] == [0.5, 0.25]
    tracking.finish_pipeline_run(parent, summary={"accuracy_real": 0.9, "dataset": "mnist"})
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and run.data.metrics["accuracy_real"] == 0.9
    assert "summary.json" in [a.path for a in client.list_artifacts(parent)]


def test_registry_alias(stack):
    name = "test-tracking-model"
    v1 = tracking.register_version(name, "s3://x/1", None, {"k": 1})
    v2 = tracking.register_version(name, "s3://x/2", None, {"k": 2})
    tracking.set_alias(name, "champion", v2)
    tracking.set_alias(name, "previous", v1)
    assert tracking.alias_version(name, "champion") == v2 and tracking.alias_version(name, "previous") == v1
    tracking.set_alias(name, "previous", None)
    assert tracking.alias_version(name, "previous") is None


def test_server_down_is_named(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(tracking.TrackingError, match=r"cannot reach MLflow at http://127\.0\.0\.1:9"):
        tracking.check_server(timeout_s=2)
