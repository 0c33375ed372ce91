"""MLflow tracking: one parent run per pipeline run, one nested run per step.

The tracking server comes from MLFLOW_TRACKING_URI, the account from
MLFLOW_TRACKING_USERNAME/PASSWORD (genaug.services.mlflow_access says what each may do).
Step code logs through the small functions below, which write to the active run and do
nothing when there is none, so a step run by hand (``genaug step ...``) needs no server.
The registry functions act as the promote identity where one is given beside the
pipeline's (GENAUG_PROMOTE_MLFLOW_*, the local stack's admin.env).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from genaug.services import mlflow_access
from genaug.services.endpoints import load_admin_env, load_stack_env, require

EXPERIMENT = os.environ.get("GENAUG_EXPERIMENT", "genaug")
# MLflow 3's UI picks an experiment's view by this tag; without it a new experiment may open
# in the GenAI view (traces, prompts). genaug trains models: runs, metrics and models.
EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"
# MLflow keeps at most 6000 characters of a param; the UI shows far fewer.
PARAM_CHARS = 500

# MLflow's client retries a dead server for minutes by default; a step should fail in
# seconds and say which server it could not reach.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


class TrackingError(RuntimeError):
    """The tracking server is missing or unreachable; the message names it and the fix."""


def tracking_uri() -> str:
    (uri,) = require(["MLFLOW_TRACKING_URI"], "the tracking server's URL", TrackingError)
    return uri


def check_server(timeout_s: float = 5.0) -> str:
    """Return the tracking URI after a GET /health answers 200 and the server accepts the
    account (checked once per process and account); raise TrackingError otherwise."""
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as resp:
                if resp.status != 200:
                    raise TrackingError(f"MLflow at {uri} answered {resp.status} on /health")
        except (urllib.error.URLError, OSError) as err:
            raise TrackingError(f"cannot reach MLflow at {uri} ({err}); start it with `make up` "
                                f"or fix MLFLOW_TRACKING_URI") from err
        _check_login(uri, timeout_s)
    return uri


_LOGINS_SEEN: set[tuple[str, str, str]] = set()


def _check_login(uri: str, timeout_s: float) -> None:
    """Fail now, naming the account and where it comes from, if MLflow refuses it; a
    server without accounts (no basic-auth app) answers 404 here and is left alone."""
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME", ""), os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    key = (uri, user, password)
    if key in _LOGINS_SEEN:
        return
    request = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/users/current")
    if user:
        request.add_header("Authorization", mlflow_access.basic_auth(user, password))
    try:
        urllib.request.urlopen(request, timeout=timeout_s).close()
    except urllib.error.HTTPError as err:
        if err.code == 401:
            who = f"account {user!r}" if user else "an anonymous request (MLFLOW_TRACKING_USERNAME is not set)"
            raise TrackingError(f"MLflow at {uri} refused {who}: set MLFLOW_TRACKING_USERNAME and "
                                "MLFLOW_TRACKING_PASSWORD (locally `make up` writes them to .genaug/stack.env; "
                                "on a cluster they come from Secret genaug-mlflow)") from None
        if err.code != 404:
            raise TrackingError(f"MLflow at {uri} answered {err.code} when checking account {user!r}") from None
    except (urllib.error.URLError, OSError) as err:
        raise TrackingError(f"cannot reach MLflow at {uri} ({err}); start it with `make up`") from err
    _LOGINS_SEEN.add(key)


def _mlflow():
    import mlflow

    mlflow.set_tracking_uri(check_server())
    return mlflow


def client():
    """An MlflowClient of the checked tracking server."""
    return _mlflow().MlflowClient()


def _open_experiment(mlflow):
    """The genaug experiment (created on first use), marked as model training; returns it."""
    experiment = mlflow.set_experiment(EXPERIMENT)
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING_KIND:
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    return experiment


def start_pipeline_run(params: dict, tags: dict, name: str | None = None) -> str:
    """Create the parent run of one pipeline run (left RUNNING); return its run id."""
    mlflow = _mlflow()
    _open_experiment(mlflow)
    name = name or f"{params.get('dataset')}-{params.get('generator')}-{params.get('profile')}-s{params.get('seed')}"
    with mlflow.start_run(run_name=name, tags={k: str(v) for k, v in tags.items()}) as run:
        mlflow.log_params(params)
    # Leaving the block marks it FINISHED; it is running again while steps log to it.
    client = mlflow.MlflowClient()
    client.update_run(run.info.run_id, status="RUNNING")
    return run.info.run_id


def finish_pipeline_run(run_id: str, status: str = "FINISHED", summary: dict | None = None,
                        settings: dict | None = None) -> None:
    """Log the run's ``settings`` (seed, ratio, eta, ...) as params and the other numbers of
    its ``summary`` as metrics, the whole summary as summary.json; then close the run.

    A setting is an input, not a result: as a metric, ``eta -1`` would be charted and
    compared like an accuracy. Settings the run already holds as params are left as they are
    (MLflow refuses to change a logged param)."""
    from mlflow.entities import Param

    client = _mlflow().MlflowClient()
    settings = settings or {}
    if settings:
        logged = client.get_run(run_id).data.params
        client.log_batch(run_id, params=[Param(key, str(value)[:PARAM_CHARS])
                                         for key, value in settings.items() if key not in logged])
    if summary is not None:
        for key, value in summary.items():
            if key not in settings and _finite_number(value):
                client.log_metric(run_id, key, float(value))
        client.log_dict(run_id, summary, "summary.json")
    client.set_terminated(run_id, status=status)


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def log_to(run_id: str, content: str | dict, name: str) -> None:
    """Log text or a dict (as JSON) as artifact ``name`` of run ``run_id``, active or not."""
    client = _mlflow().MlflowClient()
    if isinstance(content, dict):
        client.log_dict(run_id, content, name)
    else:
        client.log_text(run_id, content, name)


def run_url(run_id: str) -> str:
    """The MLflow UI page of a run."""
    mlflow = _mlflow()
    run = mlflow.get_run(run_id)
    return f"{tracking_uri().rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run_id}"


@contextlib.contextmanager
def step_run(parent_run_id: str, name: str, tags: dict | None = None):
    """A nested run under ``parent_run_id``, active for the block; FAILED if the block raises."""
    mlflow = _mlflow()
    parent = mlflow.get_run(parent_run_id)
    mlflow.set_experiment(experiment_id=parent.info.experiment_id)
    inherited = {k: v for k, v in parent.data.tags.items() if k.startswith("genaug.")}
    with mlflow.start_run(run_name=name, parent_run_id=parent_run_id, nested=True,
                          tags={**inherited, "genaug.step": name, **{k: str(v) for k, v in (tags or {}).items()}}) as run:
        yield run


# MLflow keeps at most 36 characters of a dataset's digest (mlflow.utils.validation).
DIGEST_CHARS = 36


def log_dataset(parent_run_id: str, name: str, version: str, uri: str, profile: dict | None = None) -> None:
    """Log dataset ``name`` at ``version`` as an input (context "training") of the run
    ``parent_run_id`` and of the active step run, if any: its digest the version (the first
    36 characters; the profile holds all of it), its source ``uri``."""
    mlflow = _mlflow()
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.entities import Dataset, DatasetInput, InputTag

    # A URI (the snapshot's manifest) or, for a built-in dataset's files, their description.
    source = resolve_dataset_source(uri) if uri.startswith("s3://") else CodeDatasetSource({"description": uri})
    entity = Dataset(name=name, digest=version[:DIGEST_CHARS], source_type=source._get_source_type(),
                     source=source.to_json(), profile=json.dumps({"version": version, **(profile or {})}))
    context = [InputTag(key="mlflow.data.context", value="training")]
    _log_inputs_once_raced(mlflow.MlflowClient(), parent_run_id, [DatasetInput(entity, context)])
    if (active := _active()) is not None:
        _log_inputs_once_raced(active.MlflowClient(), active.active_run().info.run_id, [DatasetInput(entity, context)])


def _log_inputs_once_raced(client, run_id: str, inputs: list) -> None:
    """log_inputs, again once when another task inserted the same dataset row at the same
    moment: MLflow's store looks up (experiment, name, digest) and then inserts, so two arms
    of an experiment logging one dataset version can collide on its unique constraint. The
    second try finds the row and only links it."""
    from mlflow.exceptions import MlflowException

    try:
        client.log_inputs(run_id, datasets=inputs)
    except MlflowException as err:
        if "UNIQUE constraint" not in str(err) and "duplicate key" not in str(err):
            raise
        time.sleep(0.5)
        client.log_inputs(run_id, datasets=inputs)


def set_parent_tags(parent_run_id: str, tags: dict) -> None:
    client = _mlflow().MlflowClient()
    for key, value in tags.items():
        client.set_tag(parent_run_id, key, str(value))


# -- logging into the active run (no-ops without one) ----------------------------------

def _active():
    try:
        import mlflow
    except ImportError:  # pragma: no cover - mlflow is a dependency
        return None
    return mlflow if mlflow.active_run() is not None else None


def log_params(params: dict) -> None:
    if (mlflow := _active()) is not None:
        mlflow.log_params({k: str(v)[:PARAM_CHARS] for k, v in params.items()})


def log_metrics(metrics: dict, step: int | None = None) -> None:
    """Log the finite numeric values of ``metrics``; others are skipped."""
    if (mlflow := _active()) is not None:
        clean = {k: float(v) for k, v in metrics.items() if _finite_number(v)}
        if clean:
            mlflow.log_metrics(clean, step=step)


def log_history(history: dict, step_key: str) -> None:
    """Per-step curves: ``history`` holds equal-length lists, ``history[step_key]`` the x axis."""
    if _active() is None:
        return
    steps = history[step_key]
    for i, step in enumerate(steps):
        log_metrics({k: v[i] for k, v in history.items() if k != step_key and isinstance(v, list)}, step=int(step))


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    if (mlflow := _active()) is not None:
        mlflow.log_artifact(str(path), artifact_path)


def log_file_as(path: str | Path, name: str) -> str | None:
    """Log the file at ``path`` as the artifact ``name`` ('onnx/generator/model.onnx') of
    the active run, whatever the file is called on disk; return the URI of the folder it
    lands in ('runs:/<id>/onnx/generator'), or None outside a run."""
    run_id = active_run_id()
    if run_id is None:
        return None
    import shutil
    import tempfile

    folder, _, filename = name.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / filename
        shutil.copyfile(path, target)
        log_artifact(target, folder or None)
    return f"runs:/{run_id}/{folder}" if folder else f"runs:/{run_id}"


def log_text(text: str, name: str) -> None:
    if (mlflow := _active()) is not None:
        mlflow.log_text(text, name)


def log_dict(value: dict, name: str) -> None:
    if (mlflow := _active()) is not None:
        mlflow.log_dict(value, name)


def active_run_id() -> str | None:
    mlflow = _active()
    return mlflow.active_run().info.run_id if mlflow is not None else None


# -- model registry --------------------------------------------------------------------

# MLflow's client reads its account from the environment on every request, so acting as
# promote means changing the process's environment: one block at a time.
_PROMOTE_SWAP = threading.RLock()


@contextlib.contextmanager
def as_promote(what: str):
    """The block's MLflow calls go as the promote identity when one is given beside the
    pipeline's (GENAUG_PROMOTE_MLFLOW_*, from admin.env); otherwise as the process's own
    account (a cluster's promote step, whose account is promote's). A refusal becomes a
    TrackingError naming the account, what it tried and which identity may.

    Blocks in several threads take turns; a call another thread makes meanwhile outside
    such a block also goes as promote (promotion runs no such call beside it)."""
    with _PROMOTE_SWAP, _promote_account(what):
        yield


@contextlib.contextmanager
def _promote_account(what: str):
    load_admin_env()
    swap = {"MLFLOW_TRACKING_USERNAME": os.environ.get(mlflow_access.PROMOTE_USERNAME_ENV),
            "MLFLOW_TRACKING_PASSWORD": os.environ.get(mlflow_access.PROMOTE_PASSWORD_ENV)}
    swap = {k: v for k, v in swap.items() if v}
    saved = {k: os.environ.get(k) for k in swap}
    os.environ.update(swap)
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as err:
        if err.error_code not in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
            raise
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "(none)")
        raise TrackingError(f"MLflow refused account {user!r} to {what} ({err.error_code}): that takes the promote "
                            f"identity ({mlflow_access.USERNAMES['promote']}, MANAGE on registered models); locally "
                            f"{mlflow_access.PROMOTE_USERNAME_ENV}/{mlflow_access.PROMOTE_PASSWORD_ENV} in "
                            ".genaug/admin.env, on a cluster the promote step's Secret genaug-mlflow-promote") from err
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def register_version(name: str, source: str, run_id: str | None, tags: dict) -> str:
    """A new version of registered model ``name`` (created on first use); return its number."""
    client = _mlflow().MlflowClient()
    from mlflow.exceptions import MlflowException

    with as_promote(f"register a version of model {name!r}"):
        try:
            client.get_registered_model(name)
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            client.create_registered_model(name, description="genaug model; served by Triton under this name")
        version = client.create_model_version(name, source=source, run_id=run_id,
                                              tags={k: str(v) for k, v in tags.items()})
    return str(version.version)


def alias_version(name: str, alias: str) -> str | None:
    """The version number that ``alias`` points at, or None."""
    client = _mlflow().MlflowClient()
    from mlflow.exceptions import MlflowException

    with as_promote(f"read alias {alias!r} of model {name!r}"):
        try:
            return str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException as err:
            if _refused(err) and _model_exists(client, name):
                raise
            return None


def _refused(err) -> bool:
    return err.error_code in ("PERMISSION_DENIED", "UNAUTHENTICATED")


def _model_exists(client, name: str) -> bool:
    """Whether registered model ``name`` exists. MLflow's accounts answer 403, not 404, on a
    version or alias of a model that does not exist (so as not to tell whether it does);
    asking for the model itself tells, and is refused only when the account may not read it."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
        return True
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise


def set_alias(name: str, alias: str, version: str | None) -> None:
    """Point ``alias`` at ``version``; None removes the alias."""
    client = _mlflow().MlflowClient()
    from mlflow.exceptions import MlflowException

    with as_promote(f"move alias {alias!r} of model {name!r}"):
        if version is None:
            try:
                client.delete_registered_model_alias(name, alias)
            except MlflowException as err:
                if _refused(err) and _model_exists(client, name):
                    raise
        else:
            client.set_registered_model_alias(name, alias, version)


def tag_version(name: str, version: str, tags: dict) -> None:
    """Set tags on version ``version`` of registered model ``name``."""
    client = _mlflow().MlflowClient()
    with as_promote(f"tag version {version} of model {name!r}"):
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, str(value))


def configured() -> bool:
    """True when a tracking server is configured (MLFLOW_TRACKING_URI, or the stack's env file)."""
    load_stack_env()
    return bool(os.environ.get("MLFLOW_TRACKING_URI"))


# -- the end of a pipeline run, whatever happened -------------------------------------

def runs_of_pipeline_run(pipeline_run_id: str) -> list:
    """Every MLflow run (parent and nested steps) tagged with ``pipeline_run_id``."""
    mlflow = _mlflow()
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return []
    # Tag values are quoted in MLflow's filter grammar; the id is KFP's, of [a-z0-9-].
    return mlflow.MlflowClient().search_runs(
        [experiment.experiment_id], filter_string=f"tags.`genaug.pipeline_run_id` = '{pipeline_run_id}'",
        max_results=1000)


def close_run(run_id: str, status: str, tags: dict) -> None:
    """Tag run ``run_id`` and, when it is still RUNNING, end it with ``status``."""
    client = _mlflow().MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value)[:5000])
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_terminated(run_id, status=status)


def start_failed_run(pipeline_run_id: str, tags: dict) -> str:
    """A parent run for a pipeline run that failed before it had one; returns its id."""
    mlflow = _mlflow()
    client = mlflow.MlflowClient()
    run = client.create_run(_open_experiment(mlflow).experiment_id,
                            run_name=f"failed-{pipeline_run_id}"[:250],
                            tags={"genaug.pipeline_run_id": pipeline_run_id,
                                  **{k: str(v)[:5000] for k, v in tags.items()}})
    client.set_terminated(run.info.run_id, status="FAILED")
    return run.info.run_id
