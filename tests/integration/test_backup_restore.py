"""Back the session's stack up into a folder and restore it into a NEW stack: its runs,
registered versions and aliases, ledger and served champions come back; a tampered backup
and a stack that is not empty are refused before anything changes."""

import dataclasses
import shutil

import mlflow
import pytest
from mlflow import MlflowClient

from genaug.ops.backup import backup
from genaug.ops.manifest import BackupError
from genaug.ops.restore import contents, restore
from genaug.ops.local_stack import site as local_site
from genaug.ops.targets import open_target
from genaug.services import tracking
from genaug.services.endpoints import read_env_file
from genaug.services.store import promotion_store, sha256_file
from genaug.services.triton import Triton
from genaug.serving.ledger import Ledger
from genaug.serving.promote import promote
from tests.integration.promotion_models import _clf_candidate
from tests.stack_fixture import running_stack

NAME = "backup_test-classifier"


def _use(stack_dir, monkeypatch) -> dict:
    """Point this process's clients (S3, MLflow as promote, Triton) at the stack in ``stack_dir``."""
    env = {**read_env_file(stack_dir / "stack.env"), **read_env_file(stack_dir / "admin.env")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _state(stack_dir, monkeypatch) -> dict:
    """What must come back: the versions, aliases and run, its artifact, the ledger record."""
    env = _use(stack_dir, monkeypatch)
    ledger = Ledger(promotion_store())
    with tracking.as_promote("read the test's registered versions"):
        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        versions = sorted((v.version, v.source, v.run_id) for v in client.search_model_versions(f"name = '{NAME}'"))
        run = client.get_run(versions[-1][2])
        artifact = client.download_artifacts(run.info.run_id, "model/notes.txt", str(stack_dir))
    return {"record": ledger.state(NAME), "versions": versions,
            "aliases": {a: tracking.alias_version(NAME, a) for a in ("champion", "previous")},
            "run": (run.data.metrics, run.data.params), "artifact": open(artifact).read()}


def test_a_backup_restores_into_a_new_stack(stack, files, tmp_path, tmp_path_factory, monkeypatch):
    # What a retrain leaves: a run with an artifact, two promoted versions, the aliases.
    client = MlflowClient(stack.mlflow_uri)
    run = client.create_run(tracking._open_experiment(tracking._mlflow()).experiment_id)
    client.log_metric(run.info.run_id, "test_accuracy", 0.75)
    client.log_param(run.info.run_id, "generator", "dcgan")
    (tmp_path / "notes.txt").write_text("the model's folder\n")
    client.log_artifact(run.info.run_id, str(tmp_path / "notes.txt"), "model")
    client.set_terminated(run.info.run_id)
    for onnx in ("bad", "good"):
        candidate = dataclasses.replace(_clf_candidate(files[onnx], files, name=NAME),
                                        lineage={"mlflow_run_id": run.info.run_id},
                                        mlflow_source=f"{run.info.artifact_uri}/model")
        assert promote(candidate, promotion_store(), Triton(), margin=0.0, floor=0.0)["decision"] == "promoted"
    before = _state(stack.state_dir, monkeypatch)
    assert before["aliases"]["previous"] and before["record"]["champion"] == 2

    # Two backups with --keep 1: the newest alone stays.
    site = local_site(stack.state_dir)
    target = open_target(str(tmp_path / "backups"), site.s3.endpoint, site.state_dir)
    backup(site, target)
    newest = backup(site, target, keep=1)
    assert [str(target.root / n) for n in target.backups()] == [newest]
    manifest = (target.root / target.backups()[0] / "manifest.json").read_text()
    assert f'"{NAME}"' in manifest and "notes.txt" in manifest

    # The session's stack holds all this: refused, and nothing stops.
    with pytest.raises(BackupError, match=r"is not empty \(.*runs.*--force"):
        restore(site, target)
    assert stack.launcher("status").returncode == 0

    try:
        with running_stack(tmp_path_factory.mktemp("restored-stack")) as new:
            fresh = local_site(new.state_dir)
            assert contents(fresh) == {}
            # A changed byte in any file: refused by its hash before anything is written.
            tampered = tmp_path / "tampered"
            shutil.copytree(target.root / target.backups()[0], tampered)
            record = next(tampered.glob(f"s3/genaug-triton/ledger/models/{NAME}.json"))
            original = record.read_bytes()
            record.write_bytes(original.replace(b'"champion": 2', b'"champion": 1'))
            assert record.read_bytes() != original
            db_before = sha256_file(fresh.tracking.path)
            with pytest.raises(BackupError, match=f"ledger/models/{NAME}.json: sha256 differs"):
                restore(fresh, open_target(str(tampered), fresh.s3.endpoint))
            assert sha256_file(fresh.tracking.path) == db_before and contents(fresh) == {}

            restored = restore(fresh, target)
            new.started_pids |= set(new.pids().values())
            assert any(f"repaired {NAME}" in line for line in restored.reconcile), restored.reconcile
            after = _state(new.state_dir, monkeypatch)
            assert after == before
            # One reconcile pass (the restart's) serves the champion the ledger names.
            triton = Triton()
            assert triton.ready(NAME, str(after["record"]["champion"]))
            served = triton.config(NAME)["version_policy"]["specific"]["versions"]
            assert [int(v) for v in served] == [after["record"]["champion"]]
    finally:
        mlflow.set_tracking_uri(stack.mlflow_uri)  # the tracking module pointed it at the new stack


def test_an_s3_target_lists_only_finished_backups_keeps_n_and_is_never_the_stacks_own_bucket(stack, tmp_path,
                                                                                              monkeypatch):
    from genaug.ops.manifest import Manifest
    from genaug.ops.targets import ACCESS_ENV, ENDPOINT_ENV, SECRET_ENV, S3Target

    site = local_site(stack.state_dir)
    # A bucket the stack does not use stands in for another store (its admin keys may create it).
    admin = stack.keys("admin")
    for name, value in ((ENDPOINT_ENV, stack.s3_endpoint), (ACCESS_ENV, admin.access_key),
                        (SECRET_ENV, admin.secret_key)):
        monkeypatch.setenv(name, value)
    with pytest.raises(BackupError, match="bucket 'genaug-mlflow' of the stack's own store"):
        open_target("s3://genaug-mlflow/backups", site.s3.endpoint)
    target = open_target("s3://genaug-backup-test/nightly", site.s3.endpoint)
    assert isinstance(target, S3Target)
    # An unfinished backup (no manifest) is neither listed nor counted.
    target.store.put_bytes("genaug-backup-test", "nightly/backup-29991231T000000000000Z/mlflow/tracking.sqlite", b"x")
    made = [backup(site, target, keep=2) for _ in range(3)]
    assert [f"s3://genaug-backup-test/nightly/{n}" for n in target.backups()] == made[1:]
    root = target.fetch(target.backups()[-1], tmp_path)
    manifest = Manifest.from_json((root / "manifest.json").read_bytes(), "test")
    manifest.verify(root)
    assert manifest.includes["mlflow_tracking_database"] in manifest.files
