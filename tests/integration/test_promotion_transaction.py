"""Promotion as a transaction, against the real S3, MLflow and Triton servers of the test
stack: a lock that excludes, one ledger record per model, crash recovery, the integrity of
what serves, and bounded history."""

import json
import multiprocessing
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from genaug.services import tracking
from genaug.services.store import promotion_store
from genaug.services.triton import Triton
from genaug.serving import integrity, scoring
from genaug.serving import promote as promote_mod
from genaug.serving.lease import Lease, LeaseLost, LockedError, lock_key
from genaug.serving.ledger import BUCKET, Ledger
from genaug.serving.promote import promote, rollback
from genaug.serving.reconcile import reconcile
from genaug.serving.repository import Repository
from genaug.serving.retention import kept_versions
from genaug.serving.status import status
from tests.integration.lock_racer import race
from tests.integration.promotion_models import _clf_candidate

RACERS, ROUNDS = 8, 200


class SimulatedCrash(BaseException):
    """A promotion's process dying: no except clause of the transaction catches it."""


def _candidate(files, name, good=True, run="run"):
    return _clf_candidate(files["good" if good else "bad"], files, name=name, run_id=run)


def _served(triton, name):
    return [int(v) for v in triton.config(name)["version_policy"]["specific"]["versions"]]


def _assert_agree(name, files):
    """Triton, the repository, the MLflow aliases and the ledger all say the same."""
    store, triton = promotion_store(), Triton()
    state, repo = Ledger(store).state(name), Repository(store)
    champion = state["champion"]
    assert state["intent"] is None
    assert _served(triton, name) == [champion] and triton.ready(name, str(champion))
    entry = state["versions"][str(champion)]
    assert repo.config(name) == entry["config"]
    assert integrity.problems(repo, name, state, champion) == []
    assert tracking.alias_version(name, "champion") == entry["mlflow_version"]
    previous = state["previous"]
    assert tracking.alias_version(name, "previous") == (state["versions"][str(previous)]["mlflow_version"]
                                                        if previous else None)
    assert set(repo.versions(name)) <= kept_versions(state)  # no orphan of a failed attempt
    x, _ = files["test"]
    served_file = files["good"] if entry["sha256"] == files["good_sha256"] else files["bad"]
    np.testing.assert_allclose(triton.classify(name, x[:4]), scoring.onnx_logits(served_file, x[:4]), atol=1e-4)


@pytest.fixture(scope="module")
def hashed(files):
    from genaug.services.store import sha256_file

    return {**files, "good_sha256": sha256_file(files["good"])}


# -- mutual exclusion ----------------------------------------------------------------------
def test_one_holder_in_every_round_of_an_eight_process_race(stack):
    ctx = multiprocessing.get_context("spawn")  # children import only the lease, not torch
    barrier, results = ctx.Barrier(RACERS), ctx.Queue()
    name = f"race-{time.time_ns()}"
    t0 = time.monotonic()
    racers = [ctx.Process(target=race, args=(promotion_store().config, name, i, ROUNDS, barrier, results),
                          daemon=True) for i in range(RACERS)]
    for p in racers:
        p.start()
    won = dict(results.get(timeout=600) for _ in racers)
    for p in racers:
        p.join(timeout=60)
    holders = Counter(r for rounds in won.values() for r in rounds)
    print(f"lock race: {RACERS} processes x {ROUNDS} rounds in {time.monotonic() - t0:.1f} s")
    assert max(holders.values()) == 1, {r: n for r, n in holders.items() if n > 1}
    assert sorted(holders) == list(range(ROUNDS))  # and every round had its holder: a real race


def test_a_renewed_lease_holds_and_a_lost_one_stops_its_holder(stack, monkeypatch):
    records = Ledger(promotion_store()).records
    name = f"lease-{time.time_ns()}"
    first = Lease(records, name, "run-a/promote", ttl_s=2.0).acquire()
    time.sleep(5.0)  # past the TTL: only renewal (every 0.7 s) keeps it
    first.check()
    with pytest.raises(LockedError, match="run-a/promote"):
        Lease(records, name, "run-b/promote").acquire()
    monkeypatch.setattr(first, "renew", lambda: None)  # the holder hangs
    time.sleep(2.5)
    second = Lease(records, name, "run-b/promote", ttl_s=60).acquire()  # expired: taken over
    with pytest.raises(LeaseLost):
        first.check()
    first.release()  # frees nothing that is not its own
    assert Ledger(promotion_store()).holder(name)["owner"] == "run-b/promote"
    retry = Lease(records, name, "run-b/promote", ttl_s=60).acquire()  # a KFP retry: its own lock, at once
    with pytest.raises(LeaseLost):
        second.check()
    retry.release()
    second.release()
    assert Ledger(promotion_store()).holder(name) is None


def test_a_lost_lease_aborts_before_the_config_moves_and_the_intent_is_reverted(stack, hashed, monkeypatch):
    store, name = promotion_store(), "txn_lost-classifier"
    assert promote(_candidate(hashed, name, good=False), store, Triton(), 0.0, 0.0)["version"] == 1
    ledger = Ledger(store)

    def intruder_takes_the_lock(step):
        if step == "files":  # the lease expired while the files were written; someone took it
            lock = ledger.records.read(lock_key(name))
            ledger.records.replace(lock_key(name), {"state": "held", "owner": "intruder", "token": "t",
                                                    "expires": time.time() + 60}, lock.etag)

    monkeypatch.setattr(promote_mod, "fault_point", intruder_takes_the_lock)
    with pytest.raises(LeaseLost):
        promote(_candidate(hashed, name), store, Triton(), -1.0, 0.0)
    monkeypatch.undo()
    assert _served(Triton(), name) == [1] and Repository(store).served_version(name) == 1
    assert ledger.state(name)["intent"]["version"] == 2  # left for the next holder
    assert reconcile(store, Triton()).busy == [name]  # the intruder's lease is respected
    lock = ledger.records.read(lock_key(name))
    ledger.records.replace(lock_key(name), {"state": "free"}, lock.etag)
    report = reconcile(store, Triton())
    assert "reverted the unfinished promotion of v2" in report.repaired[name]
    assert ledger.state(name)["events"][-1]["decision"] == "failed"
    _assert_agree(name, hashed)


# -- one record per model --------------------------------------------------------------------
def test_two_models_ten_concurrent_promotions_each_lose_no_entry_and_keep_bounded_history(stack, hashed):
    names = ["txn_a-classifier", "txn_b-classifier"]

    def one(i):
        return promote(_candidate(hashed, names[i % 2], good=i % 3 > 0, run=f"conc-{i}"), promotion_store(), Triton(),
                       margin=-1.0, floor=0.0, lock_wait_s=300)

    with ThreadPoolExecutor(20) as pool:
        decisions = list(pool.map(one, range(20)))
    assert [d["decision"] for d in decisions] == ["promoted"] * 20
    ledger, repo = Ledger(promotion_store()), Repository(promotion_store())
    assert set(names) <= set(ledger.models())
    for name in names:
        state = ledger.state(name)
        assert state["event_count"] == 10 and state["champion"] == 10 and state["previous"] == 9
        assert sorted(int(v) for v in state["versions"]) == [6, 7, 8, 9, 10]  # champion, previous, 3 newest
        assert repo.versions(name) == [6, 7, 8, 9, 10]
        _assert_agree(name, hashed)
    from mlflow import MlflowClient

    with tracking.as_promote("read a pruned version's tags"):  # the pipeline's account reads no model
        pruned = MlflowClient(tracking.check_server()).get_model_version(names[0], "1")
    assert pruned.tags.get("genaug.triton_pruned") == "true" and pruned.tags.get("genaug.pruned") == "true"
    x, _ = hashed["test"]
    back = rollback(names[0], promotion_store(), Triton(), scoring.classifier_probe(x[:8]), 1e-3)
    assert back["version"] == 9 and ledger.state(names[0])["previous"] == 8
    _assert_agree(names[0], hashed)


# -- crash recovery --------------------------------------------------------------------------
@pytest.mark.parametrize("step", promote_mod.STEPS)
def test_a_crash_at_each_step_is_finished_or_undone_by_one_reconcile_pass(stack, hashed, monkeypatch, step):
    store, name = promotion_store(), f"txn_crash_{step}-classifier"
    promote(_candidate(hashed, name, good=False), store, Triton(), 0.0, 0.0)

    def crash(reached):
        if reached == step:
            raise SimulatedCrash(step)

    monkeypatch.setattr(promote_mod, "fault_point", crash)
    with pytest.raises(SimulatedCrash):
        promote(_candidate(hashed, name), store, Triton(), -1.0, 0.0)
    monkeypatch.undo()
    report = reconcile(store, Triton())
    assert name not in report.failed, report.failed
    state = Ledger(store).state(name)
    # Committed or not is decided by the one conditional write of the ledger record.
    assert state["champion"] == (2 if step == "commit" else 1)
    _assert_agree(name, hashed)


# -- integrity of what is served ------------------------------------------------------------
def test_changed_or_extra_files_are_refused_and_the_old_version_keeps_serving(stack, hashed):
    store, triton, name = promotion_store(), Triton(), "txn_integrity-classifier"
    repo, ledger = Repository(store), Ledger(store)
    promote(_candidate(hashed, name, good=False), store, triton, 0.0, 0.0)
    promote(_candidate(hashed, name), store, triton, 0.0, 0.0)
    x, _ = hashed["test"]
    probe = scoring.classifier_probe(x[:8])
    prefix = f"models/{name}"

    store.put_file(BUCKET, f"{prefix}/1/model.onnx", hashed["good"])  # v1 swapped: rollback must refuse it
    with pytest.raises(integrity.IntegrityError, match="1/model.onnx has sha256"):
        rollback(name, store, triton, probe, 1e-3)
    assert _served(triton, name) == [2]
    store.put_file(BUCKET, f"{prefix}/1/model.onnx", hashed["bad"])

    store.put_bytes(BUCKET, f"{prefix}/1/model.py", b"import os; os.system('id')")
    with pytest.raises(integrity.IntegrityError, match="unexpected file .*1/model.py"):
        rollback(name, store, triton, probe, 1e-3)
    assert any("model.py" in p for p in status(store)["models"][name]["integrity"])
    store.delete(BUCKET, f"{prefix}/1/model.py")

    good_config = repo.config(name)
    repo.write_config(name, good_config.replace('platform: "onnxruntime_onnx"', 'backend: "python"'))
    assert any("config.pbtxt" in p for p in status(store)["models"][name]["integrity"])
    assert integrity.backend_problem(repo.config(name)) is not None
    report = reconcile(store, triton)
    assert "config.pbtxt re-pinned to v2" in report.repaired[name]
    assert repo.config(name) == good_config

    store.put_file(BUCKET, f"{prefix}/2/model.onnx", hashed["bad"])
    triton.unload(name)  # a restart: the champion must be loaded again, from files that changed
    report = reconcile(store, triton)
    assert "model.onnx has sha256" in report.failed[name] and not triton.ready(name)
    store.put_file(BUCKET, f"{prefix}/2/model.onnx", hashed["good"])
    assert name in reconcile(store, triton).repaired
    assert status(store)["models"][name]["integrity"] == "ok"
    _assert_agree(name, hashed)

    store.put_file(BUCKET, f"{prefix}/2/model.onnx", hashed["bad"])  # while it serves
    report = reconcile(store, triton)
    assert "changed since it was approved" in report.failed[name]
    np.testing.assert_allclose(triton.classify(name, x[:4]), scoring.onnx_logits(hashed["good"], x[:4]), atol=1e-4)
    store.put_file(BUCKET, f"{prefix}/2/model.onnx", hashed["good"])
    assert ledger.state(name)["champion"] == 2


def test_promote_status_prints_a_table_for_people_and_json_for_scripts(stack, hashed, capsys):
    from genaug import cli

    store, triton, name = promotion_store(), Triton(), "txn_status-classifier"
    promote(_candidate(hashed, name, good=False), store, triton, 0.0, 0.0)
    promoted = promote(_candidate(hashed, name), store, triton, 0.0, 0.0)
    store.put_bytes(BUCKET, f"models/{name}/2/model.py", b"import os")  # a file the ledger never approved
    lease = Ledger(store).acquire(name, "status-test")
    try:
        assert cli.main(["promote", "--status"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split() == ["model", "serving", "score", "since", "integrity", "why"]
        (row,) = [line for line in lines if line.startswith(name + " ")]
        score = status(store)["models"][name]["score"]
        day, minute = promoted["time"][:10], promoted["time"][11:16]
        assert " v2 " in row and f"test_accuracy {score:.4f}" in row and f"{day} {minute} UTC" in row
        assert re.search(r"1 problem\(s\) +promoted: " + re.escape(promoted["reason"]) + "$", row), row
        assert any(line.startswith(f"  {name}: ") and "model.py" in line for line in lines)
        assert any(line.startswith(f"  {name}: locked by status-test since ") for line in lines)
        assert cli.main(["promote", "--status", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["models"][name]["version"] == 2
    finally:
        lease.release()
        store.delete(BUCKET, f"models/{name}/2/model.py")
