"""genaug.services.tracking against the real MLflow server of the test stack."""

import mlflow
import pytest

from genaug.services import tracking
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


def test_final_status_closes_what_a_failed_run_left_running(stack):
    from genaug.steps import get

    parent = tracking.start_pipeline_run({"dataset": "mnist"}, {"genaug.pipeline_run_id": "p-fail"})
    with tracking.step_run(parent, "train_generator") as child:  # as if its pod died mid-step:
        child_id = child.info.run_id
    mlflow.MlflowClient().update_run(child_id, status="RUNNING")  # ... nothing closed it
    meta = get("final_status")("p-fail", "FAILED", "Task train-generator failed.")
    assert meta["parent_run_id"] == parent and meta["mlflow_runs"] == 2
    client = mlflow.MlflowClient()
    for run_id in (parent, child_id):
        run = client.get_run(run_id)
        assert run.info.status == "FAILED"
        assert run.data.tags["genaug.final_status"] == "FAILED"
        assert run.data.tags["genaug.error"] == "Task train-generator failed."


def test_final_status_of_a_successful_run_keeps_it_finished(stack):
    from genaug.steps import get

    parent = tracking.start_pipeline_run({"dataset": "mnist"}, {"genaug.pipeline_run_id": "p-ok"})
    tracking.finish_pipeline_run(parent, summary={"accuracy_real": 0.5})
    get("final_status")("p-ok", "SUCCEEDED")
    run = mlflow.MlflowClient().get_run(parent)
    assert run.info.status == "FINISHED" and run.data.tags["genaug.final_status"] == "SUCCEEDED"
    assert "genaug.error" not in run.data.tags
    # A run that failed before it had an MLflow run still leaves one that says so.
    meta = get("final_status")("p-early", "FAILED", "")
    early = mlflow.MlflowClient().get_run(meta["parent_run_id"])
    assert early.info.status == "FAILED" and early.data.tags["genaug.pipeline_run_id"] == "p-early"


def _step_results(label_fidelity: float) -> dict:
    """What the steps of one run hand the report step (the parts it reads), with their seconds."""
    onnx = {"max_abs_diff": 0.0, "units": "levels", "path": "/x.onnx"}
    return {"prepare_data": {"content_hash": "abc", "source": "download into /cache/data",
                             "data_version": "no-copy-2026-12-04", "seconds": 1.0},
            "train_generator": {"seconds": 2.0},
            "train_classifier_augmented": {"n_train_real": 100, "n_train_synthetic": 50, "seconds": 3.0},
            "evaluate": {"accuracy_real": 0.8, "accuracy_augmented": 0.82, "accuracy_delta": 0.02, "cas": 0.5,
                         "label_fidelity": label_fidelity,
                         "real": {"macro_f1": 0.79, "balanced_accuracy": 0.78, "per_class": {"0": {"f1": 0.79, "recall": 0.78}}},
                         "augmented": {"macro_f1": 0.81, "balanced_accuracy": 0.8, "per_class": {"0": {"f1": 0.81, "recall": 0.8}}},
                         "n_test": 200, "seconds": 4.0},
            "export_generator": {"generator": onnx, "seconds": 5.0},
            "export_classifier": {"classifier": {**onnx, "variant": "real"}, "seconds": 1.0}}


def test_the_experiment_shows_model_training_and_settings_are_params_not_metrics(stack, tmp_path):
    from genaug.params import resolve
    from genaug.steps import get
    from genaug.steps.report import table

    client = mlflow.MlflowClient()
    start = get("start_tracking")("mnist", "ddim", "cnn", "smoke", 3, 0.5, "p-settings")
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    # MLflow 3 opens an experiment without this tag in its GenAI view (traces, prompts).
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    settings = resolve({"dataset": "mnist", "generator": "ddim", "profile": "smoke", "seed": 3, "guidance": 2.0,
                        "sample_steps": 20, "fraction": 0.5}).parameters()
    summary = get("report")(settings, {"start_tracking": start, **_step_results(0.91)}, {},
                            str(tmp_path / "summary.json"))
    assert summary["label_fidelity"] == 0.91 and "synthetic label fidelity" in table(summary)
    assert "data version no-copy-2026-12-04, from download into /cache/data" in table(summary)
    run = client.get_run(start["parent_run_id"])
    for name in ("seed", "ratio", "eta", "guidance", "sample_steps", "fraction", "margin", "floor"):
        assert name not in run.data.metrics, name
        assert name in run.data.params, name
    assert run.data.params["eta"] == "0.0" and run.data.params["fraction"] == "0.5"  # the profile's, resolved
    assert run.data.metrics["label_fidelity"] == 0.91 and run.data.metrics["accuracy_real"] == 0.8
    assert run.info.status == "FINISHED"



def test_arms_logging_one_dataset_version_at_the_same_moment_all_succeed(stack):
    """The arms of an experiment run data_version together and each logs the same dataset
    version; MLflow's store looks the row up, then inserts it, so all but one of them meet
    its unique constraint unless the insert is tried again."""
    import threading

    parent = tracking.start_pipeline_run({"dataset": "mnist"}, {"genaug.pipeline_run_id": "p-race"})
    failures: list[BaseException] = []
    for attempt in range(4):  # each round a new version, so each round a fresh insert race
        version = f"{attempt:02d}" + "ab" * 31
        start = threading.Barrier(6)

        def arm():
            start.wait()
            try:
                tracking.log_dataset(parent, "race-mnist", version, "built-in mnist files")
            except BaseException as err:  # noqa: BLE001 - collected, asserted below
                failures.append(err)

        threads = [threading.Thread(target=arm) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    inputs = mlflow.MlflowClient().get_run(parent).inputs.dataset_inputs
    assert sorted(i.dataset.digest[:2] for i in inputs) == ["00", "01", "02", "03"]
