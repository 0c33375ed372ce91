"""``genaug gc`` on a history built on a real stack of its own: six promotions of one model,
each behind a pipeline run with a checkpoint and artifacts, plus a lone run, a superseded
dataset version, a stale staging upload and local KFP outputs. Run as a person runs it
(the CLI, a dry run, then --apply), then checked against the invariant: what the ledger,
the champion and ``previous`` reference is all there and still served.

A stack of its own, because gc under a zero-day policy would sweep what the session's other
tests left for each other.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genaug.data import snapshots
from genaug.services import tracking
from genaug.services.names import CHECKPOINTS_BUCKET, DATASETS_BUCKET, MLFLOW_BUCKET
from genaug.services.store import STAGING, Store, promotion_store
from genaug.services.triton import Triton
from genaug.serving import integrity
from genaug.serving.ledger import Ledger
from genaug.serving.promote import promote
from genaug.serving.repository import Repository
from tests.images import make_folder
from tests.integration.promotion_models import _clf_candidate
from tests.stack_fixture import REPO, running_stack

MODEL = "gc_test-classifier"
PROMOTIONS = 6
OLD_MS = int((time.time() - 40 * 86400) * 1000)
POLICY = ["--keep-versions", "1", "--max-age-days", "0", "--keep-snapshots", "0", "--staging-hours", "0"]


def _gc(scratch, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "GENAUG_STACK_ENV": str(scratch.state_dir / "stack.env")}
    return subprocess.run([sys.executable, "-m", "genaug.cli", "gc", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _pipeline_run(client, experiment_id: str, i: int, store: Store) -> str:
    """A pipeline run 40 days old: its parent run (with an artifact) and a training step
    that names its checkpoint, which is uploaded."""
    tags = {"genaug.pipeline_run_id": f"gc-p{i}"}
    parent = client.create_run(experiment_id, start_time=OLD_MS, tags=tags).info.run_id
    client.log_text(parent, f"report of pipeline run {i}", "report.txt")
    step = client.create_run(experiment_id, start_time=OLD_MS, tags={**tags, "mlflow.parentRunId": parent})
    checkpoint = f"gc-ck{i}/latest.pt"
    client.log_param(step.info.run_id, "checkpoint", f"s3://{CHECKPOINTS_BUCKET}/{checkpoint}")
    store.put_bytes(CHECKPOINTS_BUCKET, checkpoint, os.urandom(2048))
    return parent


def _history(scratch, files, tmp_path: Path) -> dict:
    store, promote_store, triton = Store(), promotion_store(), Triton()
    client = tracking.client()
    experiment_id = client.get_experiment_by_name(tracking.EXPERIMENT).experiment_id
    runs = []
    for i in range(PROMOTIONS):
        runs.append(_pipeline_run(client, experiment_id, i, store))
        candidate = _clf_candidate(files["bad" if i % 2 else "good"], files, name=MODEL, run_id=f"gc-p{i}")
        candidate.lineage["mlflow_run_id"] = runs[-1]
        decision = promote(candidate, promote_store, triton, margin=-1.0, floor=0.0)  # every one wins
        assert decision["decision"] == "promoted", decision
    lone = client.create_run(experiment_id, start_time=OLD_MS).info.run_id  # a pipeline that died early
    first = snapshots.snapshot("gcdata", str(make_folder(tmp_path / "v1", salt=7)), store)
    second = snapshots.snapshot("gcdata", str(make_folder(tmp_path / "v2", start=20, salt=7)), store)
    store.client.put_object(CHECKPOINTS_BUCKET, f"{STAGING}/left-behind.part", __import__("io").BytesIO(b"x"), 1)
    outputs = tmp_path / "runs" / "00000-x" / "kfp" / "genaug-job"
    for task in ("prepare-data", "synthesize"):
        (outputs / task).mkdir(parents=True)
        (outputs / task / "data").write_bytes(os.urandom(4096))
        os.utime(outputs / task / "data", (time.time() - 40 * 86400,) * 2)
    cache = tmp_path / "kfp-cache"
    cache.mkdir()
    (cache / "f.json").write_text(json.dumps({"data": {"uri": str(outputs / "prepare-data" / "data")}}))
    return {"runs": runs, "lone": lone, "first": first["version"], "second": second["version"],
            "outputs": outputs, "cache": cache}


def _run_exists(client, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).info.lifecycle_stage == "active"
    except MlflowException:
        return False


def test_gc_frees_what_the_policy_lets_go_and_keeps_what_serving_and_the_ledger_reference(
        tmp_path_factory, files):
    tmp = tmp_path_factory.mktemp("gc")
    with running_stack(tmp_path_factory.mktemp("gc-stack")) as scratch:
        made = _history(scratch, files, tmp)
        store, promote_store = Store(), promotion_store()
        ledger, repo, client = Ledger(promote_store), Repository(promote_store), tracking.client()
        before = ledger.state(MODEL)
        assert (before["champion"], before["previous"]) == (6, 5)
        roots = ["--pipeline-root", str(tmp / "runs"), "--kfp-cache", str(made["cache"])]
        mlflow = scratch.keys("mlflow")
        mlflow_s3 = Store(type(store.config)(store.config.endpoint, mlflow.access_key, mlflow.secret_key))
        artifacts_before = mlflow_s3.list(MLFLOW_BUCKET)

        dry = _gc(scratch, *POLICY, *roots, "--json")
        assert dry.returncode == 0, dry.stderr
        planned = json.loads(dry.stdout)
        assert not planned["applied"] and planned["deletions"]
        assert {d["category"] for d in planned["deletions"]} >= {"triton", "registry", "runs", "checkpoints",
                                                                 "snapshots", "dataset-objects", "staging", "outputs"}
        assert ledger.state(MODEL) == before and store.exists(CHECKPOINTS_BUCKET, "gc-ck0/latest.pt")  # dry

        applied = _gc(scratch, *POLICY, *roots, "--apply")
        assert applied.returncode == 0 and "could not" not in applied.stderr, applied.stdout + applied.stderr
        after = ledger.state(MODEL)

        # The invariant: champion and previous unchanged, every file the ledger names intact
        # and served, every version the ledger or an alias names registered, with its run.
        assert (after["champion"], after["previous"]) == (6, 5)
        assert sorted(map(int, after["versions"])) == [4, 5, 6], applied.stdout + applied.stderr[-3000:]
        assert integrity.problems(repo, MODEL, after, 6) == []  # the champion, config.pbtxt included
        for v, entry in after["versions"].items():  # every kept version's own files, hashed
            for rel, want in entry["files"].items():
                if rel != "config.pbtxt":  # it pins the champion; a kept version's copy is in the ledger
                    assert integrity.sha256(repo.read_file(MODEL, rel)) == want["sha256"], (v, rel)
        assert Triton().ready(MODEL, "6")
        assert tracking.alias_version(MODEL, "champion") == before["versions"]["6"]["mlflow_version"]
        assert tracking.alias_version(MODEL, "previous") == before["versions"]["5"]["mlflow_version"]
        for v, entry in after["versions"].items():
            with tracking.as_promote("read the registry"):  # the steps' account may not
                assert client.get_model_version(MODEL, entry["mlflow_version"]).run_id == made["runs"][int(v) - 1]
            assert _run_exists(client, entry["lineage"]["mlflow_run_id"])
            assert store.exists(CHECKPOINTS_BUCKET, f"gc-ck{int(v) - 1}/latest.pt")
        assert snapshots.resolve_version("gcdata", "latest", store) == made["second"]
        manifest, _ = snapshots.load_manifest("gcdata", made["second"], store)
        assert all(store.exists(DATASETS_BUCKET, key) for key in snapshots.manifest_objects(manifest))
        assert (made["outputs"] / "prepare-data" / "data").is_file()  # KFP's cache points to it

        # What the policy let go of is gone: older versions, their runs (purged with their
        # artifacts), checkpoints, the superseded dataset version, staging, old outputs.
        assert repo.versions(MODEL) == [4, 5, 6]
        with tracking.as_promote("read the registry"):
            registered = {mv.version for mv in client.search_model_versions(f"name = '{MODEL}'")}
        assert registered == {before["versions"][v]["mlflow_version"] for v in ("4", "5", "6")}
        for i in range(3):
            assert not _run_exists(client, made["runs"][i])
            assert not store.exists(CHECKPOINTS_BUCKET, f"gc-ck{i}/latest.pt")
        assert not _run_exists(client, made["lone"])
        artifacts_after = mlflow_s3.list(MLFLOW_BUCKET)
        assert not [k for k in artifacts_after if made["runs"][0] in k] and [k for k in artifacts_before
                                                                          if made["runs"][0] in k]
        with pytest.raises(Exception):
            snapshots.load_manifest("gcdata", made["first"], store)
        assert not store.aged(CHECKPOINTS_BUCKET, f"{STAGING}/")
        assert not (made["outputs"] / "synthesize" / "data").exists()

        # A fixpoint: a second pass finds nothing more.
        again = _gc(scratch, *POLICY, *roots, "--json")
        assert again.returncode == 0 and json.loads(again.stdout)["deletions"] == [], again.stdout[-2000:]
