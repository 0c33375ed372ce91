"""Promotion as a guarded, auditable transaction.

For one candidate model: take the model's lock; score the candidate and the current
champion on the same current data; apply the gates; load the candidate under a staging
name and check a real inference; write the next version and a config that pins it; load
it and check a real inference; move the MLflow aliases; record the decision. Any failure
after the repository changed puts the previous config back and reloads it, so the
previous version keeps serving and the alias stays. A failed gate changes nothing but
the ledger, which records every decision with its reasons.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from genaug import tracking
from genaug.serving.client import Triton
from genaug.serving.gates import decide
from genaug.serving.ledger import Ledger
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
    parity: float                              # max |ONNX - PyTorch| from export
    parity_tolerance: float
    lineage: dict = field(default_factory=dict)  # mlflow_run_id, pipeline_run_id, data_hash, ...
    mlflow_source: str | None = None           # artifact URI of the ONNX folder

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


def promote(c: Candidate, store, triton: Triton, margin: float, floor: float) -> dict:
    """Run the transaction for ``c``; return the decision recorded in the ledger."""
    triton.require_admin()
    ledger, repo = Ledger(store), Repository(store)
    sha = c.sha256
    champion = ledger.champion(c.name)
    # A KFP retry of the same step (same pipeline run, same file) must not promote twice
    # or flip a decision; a new pipeline run gets a fresh decision.
    run_id = c.lineage.get("pipeline_run_id")
    for event in reversed(ledger.events(c.name)):
        if (event.get("candidate_sha256") == sha and event.get("lineage", {}).get("pipeline_run_id") == run_id
                and event["decision"] in ("promoted", "rejected")):
            same_champion = (champion or {}).get("version") == event.get("champion_version_after")
            if same_champion:
                return {**event, "repeat": True}
    owner = f"{c.lineage.get('pipeline_run_id', 'manual')}-{uuid.uuid4().hex[:8]}"
    ledger.acquire(c.name, owner)
    try:
        return _promote_locked(c, sha, ledger, repo, triton, margin, floor)
    finally:
        ledger.release(c.name, owner)


def _promote_locked(c: Candidate, sha: str, ledger: Ledger, repo: Repository, triton: Triton,
                    margin: float, floor: float) -> dict:
    champion = ledger.champion(c.name)
    old_version = champion["version"] if champion else None
    candidate_score = c.score(c.onnx_path)
    champion_score = None
    if old_version is not None:
        with tempfile.TemporaryDirectory() as tmp:
            champion_score = c.score(repo.download_model(c.name, old_version, Path(tmp) / "model.onnx"))
    decision = decide(c.metric, candidate_score, champion_score, margin, floor, c.parity, c.parity_tolerance)
    base = {"candidate_sha256": sha, "kind": c.kind, "gate": decision.as_dict(), "lineage": c.lineage,
            "champion_version_before": old_version}
    if not decision.passed:
        return ledger.record(c.name, {**base, "decision": "rejected", "reason": "; ".join(decision.reasons),
                                      "champion_version_after": old_version})

    # Staging: the candidate must load and answer correctly before anything is written.
    staging = c.name + STAGING_SUFFIX
    triton.load(staging, config=_config_json(c.render_config(1).replace(f'"{c.name}"', f'"{staging}"')),
                files={"file:1/model.onnx": c.onnx_path.read_bytes()})
    try:
        staging_diff = _check_probe(triton, c, staging, c.onnx_path)
    finally:
        triton.unload(staging)

    version = repo.next_version(c.name)
    old_config = repo.config(c.name)
    old_alias = tracking.alias_version(c.name, "champion")
    # Registered before anything serves it: a version without the alias is only a record.
    mlflow_version = tracking.register_version(
        c.name, c.mlflow_source or f"s3://{repo.bucket}/{repo.prefix}/{c.name}/{version}",
        c.lineage.get("mlflow_run_id"), {"triton_version": version, "sha256": sha, c.metric: candidate_score})
    metadata = {"model": c.name, "version": version, "kind": c.kind, "sha256": sha,
                "mlflow_version": mlflow_version, "metrics": {c.metric: candidate_score}, **c.lineage}
    repo.write_version(c.name, version, c.onnx_path, metadata)  # unreferenced until the config names it
    try:
        repo.write_config(c.name, c.render_config(version))
        triton.load(c.name)
        served_diff = _check_probe(triton, c, c.name, c.onnx_path)
        served = triton.config(c.name).get("version_policy", {}).get("specific", {}).get("versions", [])
        if [int(v) for v in served] != [version]:
            raise RuntimeError(f"Triton serves versions {served} of {c.name}, not the pinned {version}")
        tracking.set_alias(c.name, "champion", mlflow_version)
        tracking.set_alias(c.name, "previous", old_alias)
    except Exception as err:
        _restore(c.name, repo, triton, old_config, old_alias)
        ledger.record(c.name, {**base, "decision": "failed", "reason": f"{type(err).__name__}: {err}",
                               "champion_version_after": old_version, "attempted_version": version})
        raise
    history = (champion or {}).get("history", []) + [version]
    ledger.set_champion(c.name, {"version": version, "previous": old_version, "history": history,
                                 "mlflow_version": mlflow_version, "kind": c.kind, "sha256": sha,
                                 "metric": c.metric, "score": candidate_score})
    return ledger.record(c.name, {**base, "decision": "promoted", "reason": "; ".join(decision.reasons),
                                  "version": version, "mlflow_version": mlflow_version,
                                  "champion_version_after": version, "staging_probe_diff": staging_diff,
                                  "served_probe_diff": served_diff})


def _restore(name: str, repo: Repository, triton: Triton, old_config: str | None, old_alias: str | None) -> None:
    """Put the previous config back and reload it; best effort on every part."""
    try:
        if old_config is not None:
            repo.write_config(name, old_config)
            triton.load(name)
        else:
            repo.store.delete(repo.bucket, f"{repo.prefix}/{name}/config.pbtxt")
            try:
                triton.unload(name)
            except Exception:
                pass
        tracking.set_alias(name, "champion", old_alias)
    except Exception as err:  # the original error matters more; say what could not be undone
        print(f"[genaug] promote: restoring {name} failed too: {err}", flush=True)


def rollback(name: str, store, triton: Triton, probe: Callable[[Triton, str, Path], float],
             probe_tolerance: float) -> dict:
    """Serve the version before the champion again, and move the aliases with it."""
    triton.require_admin()
    ledger, repo = Ledger(store), Repository(store)
    owner = f"rollback-{uuid.uuid4().hex[:8]}"
    ledger.acquire(name, owner)
    try:
        champion = ledger.champion(name)
        if not champion or not champion.get("previous"):
            raise RuntimeError(f"{name} has no previous version to roll back to (ledger: {champion})")
        target, current = champion["previous"], champion["version"]
        old_config = repo.config(name)
        meta = repo.metadata(name, target)
        repo.write_config(name, pinned_text(old_config, target))
        try:
            triton.load(name)
            with tempfile.TemporaryDirectory() as tmp:
                path = repo.download_model(name, target, Path(tmp) / "model.onnx")
                diff = probe(triton, name, path)
            if not diff <= probe_tolerance:
                raise RuntimeError(f"rolled-back {name} v{target} differs from onnxruntime by {diff:.3g}")
        except Exception:
            _restore(name, repo, triton, old_config, tracking.alias_version(name, "champion"))
            raise
        history = [v for v in champion.get("history", []) if v != current]
        previous = history[-2] if len(history) >= 2 else None
        target_mlflow = meta.get("mlflow_version") or _mlflow_version_of(name, target)
        if target_mlflow:
            tracking.set_alias(name, "champion", target_mlflow)
        tracking.set_alias(name, "previous", None)
        ledger.set_champion(name, {**champion, "version": target, "previous": previous, "history": history,
                                   "mlflow_version": target_mlflow})
        return ledger.record(name, {"decision": "rolled_back", "from_version": current, "version": target,
                                    "reason": "requested by genaug promote --rollback",
                                    "champion_version_after": target})
    finally:
        ledger.release(name, owner)


def pinned_text(config_text: str, version: int) -> str:
    import re

    return re.sub(r"(specific:\s*{\s*versions:\s*\[\s*)\d+", lambda m: f"{m.group(1)}{version}", config_text)


def _mlflow_version_of(name: str, triton_version: int) -> str | None:
    import mlflow

    client = mlflow.MlflowClient(tracking.check_server())
    for mv in client.search_model_versions(f"name='{name}'"):
        if mv.tags.get("triton_version") == str(triton_version):
            return str(mv.version)
    return None


def ledger_summary(store) -> str:
    return json.dumps(Ledger(store).champions(), indent=2)
