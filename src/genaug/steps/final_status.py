"""The exit handler's step: record how the pipeline run ended in MLflow, whatever happened.

KFP runs it after every other task, also when one failed or the run was cancelled. A step
that died without closing its MLflow run (killed for memory, a lost node) would otherwise
stay RUNNING for ever, and a run that failed validation would leave no trace at all.
"""

from __future__ import annotations

from genaug.services import tracking
from genaug.steps.timing import timed_step

# KFP's PipelineTaskFinalStatus.state -> the MLflow run status it ends as.
MLFLOW_STATUS = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "CANCELLED": "KILLED", "CANCELED": "KILLED"}


@timed_step
def final_status(pipeline_run_id: str, state: str, error_message: str = "", nodes: int = 1, run_uid: str = "") -> dict:
    """Tag every MLflow run of ``pipeline_run_id`` with the final ``state`` (KFP's: SUCCEEDED,
    FAILED, CANCELLED) and end the ones still RUNNING with the matching MLflow status (a
    step run left RUNNING by a run that succeeded ends KILLED). With no MLflow run yet and a
    run that did not succeed, one is created so that the failure shows.

    With ``nodes`` > 1 the generator trained as a TrainJob (named by ``run_uid``, KFP's run
    UUID); a run that did not succeed (failed, cancelled) deletes it first, so that its nodes
    stop and free their GPUs even when MLflow cannot be reached.

    Returns {"state", "mlflow_runs": number tagged, "parent_run_id"}.
    """
    status = MLFLOW_STATUS.get(state.upper(), "FAILED")
    stop_error = None
    if nodes > 1 and status != "FINISHED":
        try:
            _stop_trainjob(run_uid or pipeline_run_id)
        except Exception as err:  # MLflow is still told how the run ended; then this fails the task
            stop_error = err
    tags = {"genaug.final_status": state}
    if status != "FINISHED":
        tags["genaug.error"] = error_message or f"the pipeline run ended {state}"
    runs = tracking.runs_of_pipeline_run(pipeline_run_id)
    parents = [r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags]
    for run in runs:
        nested = run.info.run_id not in parents
        tracking.close_run(run.info.run_id, "KILLED" if nested and status == "FINISHED" else status, tags)
    parent = parents[0] if parents else None
    if parent is None and status != "FINISHED":
        parent = tracking.start_failed_run(pipeline_run_id, tags)
    print(f"[genaug] pipeline run {pipeline_run_id} ended {state}; MLflow run {parent} says so", flush=True)
    if stop_error is not None:
        raise stop_error
    return {"state": state, "mlflow_runs": len(runs), "parent_run_id": parent}


def _stop_trainjob(run_uid: str) -> None:
    from genaug.deploy.cluster import connect
    from genaug.deploy.trainjobs import TrainJobs
    from genaug.steps.train_generator_trainjob import job_name

    name = job_name(run_uid)
    api_client, namespace = connect()
    deleted = TrainJobs(api_client, namespace).delete(name)
    print(f"[genaug] TrainJob {namespace}/{name}: " + ("deleted" if deleted else "none to delete"), flush=True)
