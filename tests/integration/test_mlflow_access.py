"""MLflow's accounts against the session's real server (basic-auth app): who may do what.

The pipeline's account logs runs but moves no alias; promote's moves it; the reader reads
and deletes nothing; an anonymous request is refused. Each client call goes with the
account in MLFLOW_TRACKING_USERNAME/PASSWORD, which MLflow reads on every request.
"""

import contextlib
import os
import urllib.error
import urllib.request
import uuid

import pytest

from genaug.services import mlflow_access, tracking
from genaug.services.endpoints import read_env_file
from genaug.stack.config import StatePaths
from genaug.stack.credentials import load_or_create_mlflow_accounts


@contextlib.contextmanager
def _as(monkeypatch, stack, role: str):
    """MLflow calls in the block go as ``role``'s account, with no promote account beside it."""
    passwords = load_or_create_mlflow_accounts(StatePaths(stack.state_dir)).passwords
    with monkeypatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_access.USERNAMES[role])
        patch.setenv("MLFLOW_TRACKING_PASSWORD", passwords[role])
        patch.delenv(mlflow_access.PROMOTE_USERNAME_ENV, raising=False)
        patch.delenv(mlflow_access.PROMOTE_PASSWORD_ENV, raising=False)
        # No admin.env may refill them: not even a developer's own stack's in this checkout.
        patch.setenv("GENAUG_STACK_ENV", str(stack.state_dir / "none" / "stack.env"))
        yield


def _denied(call) -> str:
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as caught:
        call()
    assert caught.value.error_code == "PERMISSION_DENIED", caught.value
    return str(caught.value)


@pytest.fixture
def logged_run(stack, monkeypatch):
    """A run the pipeline's account logged, with one artifact, in genaug's experiment."""
    from mlflow import MlflowClient

    with _as(monkeypatch, stack, "pipeline"):
        client = MlflowClient(stack.mlflow_uri)
        experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
        run = client.create_run(experiment.experiment_id, run_name="access-test")
        client.log_metric(run.info.run_id, "accuracy", 0.5)
        client.log_text(run.info.run_id, "weights", "model/weights.txt")
        client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_an_anonymous_request_is_refused(stack):
    request = urllib.request.Request(f"{stack.mlflow_uri}/api/2.0/mlflow/experiments/search?max_results=1")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 401 and "Basic" in caught.value.headers.get("WWW-Authenticate", "")
    with urllib.request.urlopen(f"{stack.mlflow_uri}/health", timeout=10) as health:  # probes need no account
        assert health.status == 200


def test_the_pipeline_logs_runs_but_moves_no_alias_and_promote_does(stack, monkeypatch, logged_run):
    from mlflow import MlflowClient

    name = f"access-{uuid.uuid4().hex[:8]}"
    with _as(monkeypatch, stack, "promote"):  # what the promote step does
        version = tracking.register_version(name, f"runs:/{logged_run}/model", logged_run, {"k": "v"})
        tracking.set_alias(name, "champion", version)
        assert tracking.alias_version(name, "champion") == version
    with _as(monkeypatch, stack, "pipeline"):
        client = MlflowClient(stack.mlflow_uri)
        assert client.get_run(logged_run).data.metrics == {"accuracy": 0.5}
        _denied(lambda: client.set_registered_model_alias(name, "champion", version))
        _denied(lambda: client.create_registered_model(f"{name}-own"))  # its own model: it would MANAGE it
        _denied(lambda: client.delete_run(logged_run))
        with pytest.raises(tracking.TrackingError) as caught:  # through genaug: the account and the fix
            tracking.set_alias(name, "previous", version)
        assert "genaug-pipeline" in str(caught.value) and mlflow_access.PROMOTE_USERNAME_ENV in str(caught.value)
    with _as(monkeypatch, stack, "promote"):
        tracking.set_alias(name, "previous", version)
        tracking.set_alias(name, "champion", None)  # a rollback's delete needs MANAGE
        assert tracking.alias_version(name, "champion") is None
        assert tracking.alias_version(name, "previous") == version


def test_the_reader_reads_but_deletes_and_logs_nothing(stack, monkeypatch, logged_run):
    from mlflow import MlflowClient

    with _as(monkeypatch, stack, "reader"):
        client = MlflowClient(stack.mlflow_uri)
        assert client.get_run(logged_run).info.run_name == "access-test"
        assert [a.path for a in client.list_artifacts(logged_run, "model")] == ["model/weights.txt"]
        _denied(lambda: client.delete_run(logged_run))
        _denied(lambda: client.log_metric(logged_run, "accuracy", 1.0))
    with _as(monkeypatch, stack, "pipeline"):
        assert MlflowClient(stack.mlflow_uri).get_run(logged_run).info.lifecycle_stage == "active"


def test_a_wrong_password_fails_the_first_call_naming_the_account(stack, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", "genaug-pipeline")
        patch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
        with pytest.raises(tracking.TrackingError) as caught:
            tracking.check_server()
    assert "refused account 'genaug-pipeline'" in str(caught.value) and "stack.env" in str(caught.value)
    assert "not-the-password" not in str(caught.value)


def test_the_stack_writes_each_role_its_own_account_and_up_again_keeps_them(stack):
    env, admin, reader = (read_env_file(stack.state_dir / name)
                          for name in ("stack.env", "admin.env", "mlflow-reader.env"))
    assert env["MLFLOW_TRACKING_USERNAME"] == "genaug-pipeline"
    assert admin[mlflow_access.PROMOTE_USERNAME_ENV] == "genaug-promote"
    assert reader["MLFLOW_TRACKING_USERNAME"] == "genaug-reader"
    passwords = {env["MLFLOW_TRACKING_PASSWORD"], admin[mlflow_access.PROMOTE_PASSWORD_ENV],
                 reader["MLFLOW_TRACKING_PASSWORD"]}
    assert len(passwords) == 3 and min(map(len, passwords)) >= 32
    assert not any(p in (stack.state_dir / "mlflow" / "basic_auth.ini").read_text() for p in passwords)
    for name in ("stack.env", "admin.env", "mlflow-reader.env", "mlflow-accounts.json"):
        assert (stack.state_dir / name).stat().st_mode & 0o077 == 0, name
    # Provisioning again (as every `up` does) changes nothing and refuses a short password.
    accounts = load_or_create_mlflow_accounts(StatePaths(stack.state_dir))
    admin_api = mlflow_access.MlflowAdmin(stack.mlflow_uri, accounts.passwords["admin"])
    roles = {role: accounts.passwords[role] for role in mlflow_access.USERNAMES}
    first = mlflow_access.provision(admin_api, roles, tracking.EXPERIMENT)
    assert mlflow_access.provision(admin_api, roles, tracking.EXPERIMENT) == first
    with pytest.raises(mlflow_access.AccessError, match="shorter than 12"):
        mlflow_access.provision(admin_api, {**roles, "reader": "short"}, tracking.EXPERIMENT)
    with pytest.raises(mlflow_access.AccessError, match="refused admin"):
        mlflow_access.MlflowAdmin(stack.mlflow_uri, "wrong-password-123").ensure_experiment("x")
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "genaug-pipeline"  # the session's account again


def test_the_cluster_set_up_job_makes_the_accounts_from_its_environment(stack, monkeypatch, capsys):
    """genaug-mlflow-setup's command, with the values its Secret would give (the session's own
    passwords, so the accounts stay as they were)."""
    from genaug.deploy import mlflow_accounts

    accounts = load_or_create_mlflow_accounts(StatePaths(stack.state_dir))
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", accounts.passwords["admin"])
    for role in mlflow_access.USERNAMES:
        monkeypatch.setenv(mlflow_accounts.password_env(role), accounts.passwords[role])
    assert mlflow_accounts.main(["provision"]) == 0
    assert "genaug-pipeline, genaug-promote, genaug-reader set up" in capsys.readouterr().out
    monkeypatch.delenv("GENAUG_MLFLOW_READER_PASSWORD")
    with pytest.raises(SystemExit, match="GENAUG_MLFLOW_READER_PASSWORD not set.*genaug-mlflow-auth"):
        mlflow_accounts.main(["provision"])
    monkeypatch.setenv("GENAUG_MLFLOW_READER_PASSWORD", accounts.passwords["reader"])
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "not-the-admin-password")
    assert mlflow_accounts.main(["provision"]) == 1
    assert "refused admin 'genaug-admin'" in capsys.readouterr().err
