"""Promotion as a guarded, auditable transaction, with the ledger as the source of truth.

For one candidate model, under the model's lease (renewed while scoring runs):

1. score the candidate and the champion (its file checked against the ledger) on the same
   current data, and apply the gates; a failed gate records the decision and changes nothing;
2. load the candidate under a staging name and check a real inference;
3. register the MLflow version and write an *intent* into the model's ledger record;
4. write the version's files, record their sha256 in the ledger, write the config that
   pins the version, verify the files against the ledger and load them in Triton;
5. check the lease, move the ``champion``/``previous`` aliases;
6. commit: one conditional write of the ledger record makes the version the champion and
   clears the intent; then prune the history beyond what is kept.

Any failure before the commit is reverted at once (genaug.serving.recovery), and a crash
that leaves the intent behind is reverted by the reconciler's next pass, so Triton, the
aliases and the ledger always come back into agreement. ``fault_point`` names each step.
"""

from __future__ import annotations

import copy
import hashlib
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from genaug.services import tracking
from genaug.services.triton import Triton
from genaug.serving import integrity, recovery, retention
from genaug.serving.gates import Decision, decide
from genaug.serving.lease import Lease, LeaseLost
from genaug.serving.ledger import Ledger, now, with_event
from genaug.serving.repository import Repository

STAGING_SUFFIX = "-staging"


@dataclass
class Candidate:
    """What promotion needs to know about one model file."""

    name: str                                  # Triton model name = MLflow registered model name
    kind: str                                  # "generator" or "classifier"
    onnx_path: Path
    render_config: Callable[[int], str]        # version -> config.pbtxt text
    metric: str                                # gate metric, higher is better
    score: Callable[[Path], float]             # ONNX file -> gate metric on the current data
    probe: Callable[[Triton, str, Path], float]  # (server, served name, ONNX file) -> max |Triton - ORT|
    probe_tolerance: float
    parity: float | None = None                # max |ONNX - PyTorch| from export
    parity_tolerance: float | None = None
    lineage: dict = field(default_factory=dict)  # mlflow_run_id, pipeline_run_id, data_hash, ...
    mlflow_source: str | None = None           # artifact URI of the ONNX folder
    files: dict[str, bytes] = field(default_factory=dict)  # the version's other files: labels.txt
    # (candidate score, champion score or None) -> gates.Decision, for a model with a gate of
    # its own (the INT8 classifier: gates.decide_int8); None: gates.decide with the margin,
    # floor and parity.
    gate: Callable[[float, float | None], Decision] | None = None

    def __post_init__(self):
        if self.gate is None and (self.parity is None or self.parity_tolerance is None):
            raise ValueError(f"candidate {self.name} has neither ONNX parity (parity, parity_tolerance) for the "
                             "standard gate nor a gate of its own")
        if self.kind == "classifier" and "labels.txt" not in self.files:
            raise ValueError(f"classifier candidate {self.name} has no labels.txt (its class names, which its "
                             "config names as label_filename); pass files={'labels.txt': labels_bytes(classes)}")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.onnx_path.read_bytes()).hexdigest()


def _config_json(text: str) -> str:
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    return json_format.MessageToJson(text_format.Parse(text, model_config_pb2.ModelConfig()))


def _check_probe(triton: Triton, c: Candidate, served_as: str, path: Path) -> float:
    if not triton.ready(served_as):
        raise RuntimeError(f"{served_as} is not ready on Triton at {triton.url} after loading")
    diff = c.probe(triton, served_as, path)
    if not diff <= c.probe_tolerance:
        raise RuntimeError(f"{served_as} on Triton differs from onnxruntime by {diff:.3g} "
                           f"(tolerance {c.probe_tolerance:.3g})")
    return diff


STEPS = ("intent", "files", "config", "load", "aliases", "commit")


def fault_point(step: str) -> None:
    """Reached after each step of STEPS; the crash tests make it raise to stop a promotion there."""


def _owner(lineage: dict, task: str) -> str:
    """The lease owner: the pipeline run and its task, so a KFP retry of that task takes its
    own lock back at once; a unique owner for runs outside a pipeline."""
    run_id = lineage.get("pipeline_run_id")
    return f"run-{run_id}/{task}" if run_id else f"{task}-{uuid.uuid4().hex[:12]}"


def _repeat_of(state: dict, sha: str, run_id: str | None) -> dict | None:
    """The decision this same pipeline run already made for this same file, while the
    champion it left is still the champion: a KFP retry must not promote twice."""
    if not run_id:
        return None
    for event in reversed(state.get("events") or []):
        if (event.get("candidate_sha256") == sha and event.get("lineage", {}).get("pipeline_run_id") == run_id
                and event["decision"] in ("promoted", "rejected")
                and state.get("champion") == event.get("champion_version_after")):
            return event
    return None


def promote(c: Candidate, store, triton: Triton, margin: float, floor: float, owner: str | None = None,
            lock_wait_s: float = 0.0, lease_ttl_s: float | None = None) -> dict:
    """Run the transaction for ``c``; return the decision recorded in the ledger.

    lock_wait_s: how long to wait for another promotion of the same model to end before
    raising LockedError (0: at once)."""
    triton.require_admin()
    ledger, repo = Ledger(store), Repository(store)
    lease = ledger.acquire(c.name, owner or _owner(c.lineage, "promote"), ttl_s=lease_ttl_s, wait_s=lock_wait_s)
    try:
        if ledger.state(c.name).get("intent"):  # a crashed attempt: undo it before anything else
            recovery.revert(c.name, ledger, repo, triton, "an earlier promotion stopped before its commit")
        repeat = _repeat_of(ledger.state(c.name), c.sha256, c.lineage.get("pipeline_run_id"))
        if repeat is not None:
            return {**repeat, "repeat": True}
        return _promote_locked(c, ledger, repo, triton, margin, floor, lease)
    finally:
        lease.release()


def _score_champion(c: Candidate, repo: Repository, state: dict) -> float | None:
    champion = state.get("champion")
    if champion is None:
        return None
    entry = state["versions"][str(champion)]
    with tempfile.TemporaryDirectory() as tmp:
        # Checked against the ledger's hash: a swapped file must not become the bar to beat.
        path = Path(tmp) / "model.onnx"
        repo.store.get_file(repo.bucket, f"{repo.prefix}/{c.name}/{champion}/model.onnx", path,
                            expected_sha256=entry["files"][f"{champion}/model.onnx"]["sha256"])
        return c.score(path)


def _stage(c: Candidate, triton: Triton) -> float:
    """Load the candidate under a staging name from the request itself, check it, unload it."""
    staging = c.name + STAGING_SUFFIX
    triton.load(staging, config=_config_json(c.render_config(1).replace(f'"{c.name}"', f'"{staging}"')),
                files={"file:1/model.onnx": c.onnx_path.read_bytes(),
                       **{f"file:1/{base}": data for base, data in c.files.items()}})
    try:
        return _check_probe(triton, c, staging, c.onnx_path)
    finally:
        triton.unload(staging)


def _promote_locked(c: Candidate, ledger: Ledger, repo: Repository, triton: Triton, margin: float, floor: float,
                    lease: Lease) -> dict:
    sha = c.sha256
    record = ledger.read(c.name)
    state = record.value
    old = state.get("champion")
    candidate_score = c.score(c.onnx_path)
    champion_score = _score_champion(c, repo, state)
    decision = (c.gate(candidate_score, champion_score) if c.gate is not None else
                decide(c.metric, candidate_score, champion_score, margin, floor, c.parity, c.parity_tolerance))
    base = {"time": now(), "model": c.name, "candidate_sha256": sha, "kind": c.kind, "gate": decision.as_dict(),
            "lineage": c.lineage, "champion_version_before": old}
    if not decision.passed:
        event = {**base, "decision": "rejected", "reason": "; ".join(decision.reasons), "champion_version_after": old}
        ledger.update(c.name, lambda value: with_event(value, event))
        return ledger.record(c.name, event)

    staging_diff = _stage(c, triton)  # nothing is written before the candidate has answered
    lease.check()
    version = max(int(state.get("next_version") or 1), repo.next_version(c.name))
    source = c.mlflow_source or f"s3://{repo.bucket}/{repo.prefix}/{c.name}/{version}"
    # Registered before anything serves it: a version without the alias is only a record.
    mlflow_version = tracking.register_version(
        c.name, source, c.lineage.get("mlflow_run_id"), {"triton_version": version, "sha256": sha, c.metric: candidate_score})
    intent = {"version": version, "owner": lease.owner, "started": now(), "mlflow_version": mlflow_version,
              "candidate_sha256": sha, "lineage": c.lineage}
    record = ledger.write(c.name, record, {**state, "kind": c.kind, "intent": intent, "next_version": version + 1})
    fault_point("intent")
    try:
        metadata = {"model": c.name, "version": version, "kind": c.kind, "sha256": sha,
                    "mlflow_version": mlflow_version, "metrics": {c.metric: candidate_score}, **c.lineage}
        repo.write_version(c.name, version, c.onnx_path, metadata, c.files)  # unreferenced until the config names it
        config_text = c.render_config(version)
        entry = {"files": integrity.manifest(repo, c.name, version, config_text), "config": config_text,
                 "mlflow_version": mlflow_version, "mlflow_source": source, "sha256": sha, "metric": c.metric,
                 "score": candidate_score, "promoted_at": now(), "lineage": c.lineage}
        if entry["files"][f"{version}/model.onnx"]["sha256"] != sha:
            raise integrity.IntegrityError(f"{c.name} v{version}/model.onnx changed while it was written")
        pending = copy.deepcopy(record.value)
        pending["versions"][str(version)] = entry
        record = ledger.write(c.name, record, pending)
        fault_point("files")

        lease.check()
        repo.write_config(c.name, config_text)
        fault_point("config")
        integrity.verify(repo, c.name, record.value, version)
        triton.load(c.name)
        served_diff = _check_probe(triton, c, c.name, c.onnx_path)
        served = triton.config(c.name).get("version_policy", {}).get("specific", {}).get("versions", [])
        if [int(v) for v in served] != [version]:
            raise RuntimeError(f"Triton serves versions {served} of {c.name}, not the pinned {version}")
        fault_point("load")

        lease.check()
        tracking.set_alias(c.name, "champion", mlflow_version)
        tracking.set_alias(c.name, "previous", recovery.mlflow_of(state, old))
        fault_point("aliases")

        event = {**base, "time": now(), "decision": "promoted", "reason": "; ".join(decision.reasons),
                 "version": version, "mlflow_version": mlflow_version, "champion_version_after": version,
                 "staging_probe_diff": staging_diff, "served_probe_diff": served_diff}
        committed = copy.deepcopy(record.value)
        committed.update(champion=version, previous=old, intent=None,
                         history=[v for v in committed.get("history", []) if v != version] + [version])
        lease.check()
        record = ledger.write(c.name, record, with_event(committed, event))  # the commit
        fault_point("commit")
    except LeaseLost:
        raise  # another holder has the model now: it (or the reconciler) reverts our intent
    except Exception as err:
        _abort(c.name, ledger, repo, triton, f"{type(err).__name__}: {err}")
        raise
    event = ledger.record(c.name, event)
    retention.prune(c.name, ledger, repo)
    return event


def _abort(name: str, ledger: Ledger, repo: Repository, triton: Triton, reason: str) -> None:
    """Revert at once; if that fails too, the intent stays for the reconciler."""
    try:
        recovery.revert(name, ledger, repo, triton, reason)
    except Exception as err:  # the original error matters more; say what could not be undone
        print(f"[genaug] promote: reverting {name} failed too ({err}); the reconciler will finish it", flush=True)


def rollback(name: str, store, triton: Triton, probe: Callable[[Triton, str, Path], float],
             probe_tolerance: float, owner: str | None = None) -> dict:
    """Serve the previous version again (only a kept one), and move the aliases with it."""
    triton.require_admin()
    ledger, repo = Ledger(store), Repository(store)
    lease = ledger.acquire(name, owner or f"rollback-{uuid.uuid4().hex[:12]}")
    try:
        if ledger.state(name).get("intent"):
            recovery.revert(name, ledger, repo, triton, "an earlier promotion stopped before its commit")
        record = ledger.read(name)
        state = record.value
        target, current = state.get("previous"), state.get("champion")
        if current is None or target is None or str(target) not in state["versions"]:
            kept = sorted(int(v) for v in state.get("versions", {}))
            raise RuntimeError(f"{name} has no previous version to roll back to (champion {current}, "
                               f"kept versions {kept}); `genaug promote --status` shows the ledger")
        # The target's own files first: a tampered version is refused before anything changes.
        found = [p for p in integrity.problems(repo, name, state, target) if "config.pbtxt" not in p]
        if found:
            raise integrity.IntegrityError(f"refusing to roll {name} back to v{target}: " + "; ".join(found)
                                           + f". v{current} keeps serving")
        history = [v for v in state.get("history", []) if v != current]
        older = [v for v in history if v != target]
        after = copy.deepcopy(state)
        after.update(champion=target, previous=older[-1] if older else None, history=history)
        try:
            lease.check()
            recovery.repin(name, after, repo, triton)
            diff = probe(triton, name, _download(repo, name, target, state))
            if not diff <= probe_tolerance:
                raise RuntimeError(f"rolled-back {name} v{target} differs from onnxruntime by {diff:.3g}")
            event = {"time": now(), "model": name, "decision": "rolled_back", "from_version": current,
                     "version": target, "reason": "requested by genaug promote --rollback",
                     "champion_version_after": target}
            lease.check()
            ledger.write(name, record, with_event(after, event))
        except Exception:
            recovery.repin(name, state, repo, triton)
            raise
        return ledger.record(name, event)
    finally:
        lease.release()


def _download(repo: Repository, name: str, version: int, state: dict) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="genaug-rollback-")) / "model.onnx"
    repo.store.get_file(repo.bucket, f"{repo.prefix}/{name}/{version}/model.onnx", tmp,
                        expected_sha256=state["versions"][str(version)]["files"][f"{version}/model.onnx"]["sha256"])
    return tmp
