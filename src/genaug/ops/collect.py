"""Read an Inventory from the servers: the ledger and Triton's repository, MLflow's registry
and runs, the checkpoints and datasets buckets, the KFP pipeline root and every bucket's
staging area. Reads only; genaug.ops.sweep deletes.

Identities: the promote identity for the ledger, the repository and MLflow (it may manage
registered models and edit genaug's experiment); the steps' own S3 identity for the
datasets and checkpoints buckets, which it writes anyway.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from genaug.data import snapshots
from genaug.ops.inventory import (DatasetPointers, Inventory, ModelVersion, PipelineOutput, Snapshot,
                                  StoredObject, TrackedRun)
from genaug.services.names import CHECKPOINTS_BUCKET, DATASETS_BUCKET, TRITON_BUCKET
from genaug.services.store import STAGING, Store
from genaug.serving.ledger import Ledger
from genaug.serving.repository import Repository
from genaug.train.checkpoints import CHECKPOINT_PARAM

PAGE = 1000
# On a cluster KFP's cache lives in its own database, which gc cannot read: every output of
# the cacheable task stays, whatever its age.
CACHEABLE_TASKS = ("prepare-data",)


def _objects(store: Store, bucket: str, prefix: str = "") -> list[StoredObject]:
    return [StoredObject(bucket, key, size, modified) for key, size, modified in store.aged(bucket, prefix)]


def ledger_state(inv: Inventory, promote: Store) -> None:
    ledger, repo = Ledger(promote), Repository(promote)
    for name in ledger.models():
        inv.ledger[name] = ledger.state(name)
        inv.triton_files[name] = repo.objects(name)


def mlflow_state(inv: Inventory) -> None:
    """Registered versions with their aliases, and genaug's active runs, as the promote identity."""
    from mlflow.entities import ViewType

    from genaug.services import tracking

    client = tracking.client()
    with tracking.as_promote("list registered models and runs for retention"):
        for model in client.search_registered_models(max_results=PAGE):
            for mv in _all(lambda token: client.search_model_versions(f"name = '{model.name}'", max_results=PAGE,
                                                                     page_token=token)):
                inv.versions.append(ModelVersion(model.name, str(mv.version), mv.run_id, tuple(mv.aliases or ())))
        experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
        if experiment is None:
            return
        for run in _all(lambda token: client.search_runs([experiment.experiment_id], run_view_type=ViewType.ACTIVE_ONLY,
                                                         max_results=PAGE, page_token=token)):
            inputs = getattr(run, "inputs", None)
            digests = tuple(d.dataset.digest for d in (inputs.dataset_inputs if inputs else []) or [])
            inv.runs.append(TrackedRun(run.info.run_id, (run.info.start_time or 0) / 1000.0,
                                       run.data.tags.get("genaug.pipeline_run_id"),
                                       run.data.params.get(CHECKPOINT_PARAM), digests))


def _all(page):
    """Every item of a paged MLflow search."""
    token = None
    while True:
        result = page(token)
        yield from result
        token = getattr(result, "token", None)
        if not token:
            return


def dataset_state(inv: Inventory, store: Store) -> None:
    """Snapshot versions (with the objects their manifests read), pointers, content objects."""
    by_version: dict[tuple[str, str], list[StoredObject]] = {}
    for obj in _objects(store, DATASETS_BUCKET, f"{snapshots.REGISTRY}/"):
        parts = obj.key.split("/")
        if len(parts) >= 5 and parts[2] == "versions":
            by_version.setdefault((parts[1], parts[3]), []).append(obj)
    for (dataset, version), files in sorted(by_version.items()):
        keys = {f.key.rsplit("/", 1)[1] for f in files}
        if "manifest.json" not in keys:
            continue  # a version being written (its manifest comes first) or already half-removed
        folder = f"{snapshots.REGISTRY}/{dataset}/versions/{version}"
        manifest = store.get_json(DATASETS_BUCKET, f"{folder}/manifest.json")
        meta = store.get_json(DATASETS_BUCKET, f"{folder}/metadata.json") if "metadata.json" in keys else {}
        inv.snapshots.append(Snapshot(dataset, version, float(meta.get("created_at") or 0.0),
                                      frozenset(snapshots.manifest_objects(manifest)), tuple(files)))
    for dataset in {d for d, _ in by_version}:
        latest = store.get_json(DATASETS_BUCKET, f"{snapshots.REGISTRY}/{dataset}/latest.json", {})
        labelled = {store.get_json(DATASETS_BUCKET, key)["version"]
                    for key in store.list(DATASETS_BUCKET, f"{snapshots.REGISTRY}/{dataset}/labels/")}
        inv.pointers.append(DatasetPointers(dataset, latest.get("version"), frozenset(labelled)))
    inv.dataset_objects += _objects(store, DATASETS_BUCKET, f"{snapshots.OBJECTS}/")
    pinned = set()
    for obj in _objects(store, DATASETS_BUCKET, "raw/"):
        if obj.key.endswith("/index.json"):
            pinned.add(store.get_json(DATASETS_BUCKET, obj.key)["key"])
        elif obj.key.endswith(".npz"):
            inv.dataset_objects.append(obj)
    inv.pinned_objects = frozenset(pinned)


def checkpoint_state(inv: Inventory, store: Store) -> None:
    inv.checkpoints += _objects(store, CHECKPOINTS_BUCKET)


def staging_state(inv: Inventory, store: Store, promote: Store) -> None:
    """The ``.staging/`` objects genaug's uploads leave when a process dies mid-upload, each
    bucket read by the identity that writes it (MLflow's bucket has none: its server writes)."""
    for bucket, reader in ((DATASETS_BUCKET, store), (CHECKPOINTS_BUCKET, store), (TRITON_BUCKET, promote)):
        inv.staging += _objects(reader, bucket, STAGING + "/")


def local_outputs(inv: Inventory, runs_dir: Path, cache_dir: Path | None) -> None:
    """Task outputs of local runs, ``<runs>/<run>/kfp/<job>/<task>/<output>``, and the
    locations the local KFP cache (``kfp-cache/<fingerprint>.json``) points to."""
    for path in sorted(Path(runs_dir).glob("*/kfp/*/*/*")):
        stats = [p.stat() for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()]
        inv.outputs.append(PipelineOutput(str(path), path.parent.name, sum(s.st_size for s in stats),
                                          max([s.st_mtime for s in stats] or [path.stat().st_mtime])))
    cached = set()
    for entry in sorted(Path(cache_dir).glob("*.json")) if cache_dir and Path(cache_dir).is_dir() else []:
        try:
            outputs = json.loads(entry.read_text())
        except (OSError, ValueError):
            continue  # an entry KFP cannot read either
        cached |= {str(Path(v["uri"])) for v in outputs.values() if isinstance(v, dict) and v.get("uri")}
    inv.cached_outputs = frozenset(cached)


def s3_outputs(inv: Inventory, store: Store, root: str) -> None:
    """Objects under a cluster's pipeline root ``s3://bucket/prefix``
    (``<prefix>/<pipeline>/<run>/<task>/...``); the cacheable task's are pinned."""
    bucket, _, prefix = root[len("s3://"):].partition("/")
    prefix = prefix.strip("/")
    depth = len(prefix.split("/")) if prefix else 0
    pinned = set()
    for obj in _objects(store, bucket, f"{prefix}/" if prefix else ""):
        parts = obj.key.split("/")
        task = parts[depth + 2] if len(parts) > depth + 3 else ""
        inv.outputs.append(PipelineOutput(obj.uri, task, obj.size, obj.modified))
        if task in CACHEABLE_TASKS:
            pinned.add(obj.uri)
    inv.cached_outputs = frozenset(pinned)


def collect(store: Store, promote: Store, pipeline_root: str | None = None, cache_dir: Path | None = None,
            tracking: bool = True) -> Inventory:
    """The whole Inventory. ``pipeline_root``: a folder of local runs (``runs``) or a
    cluster's ``s3://bucket/prefix``; None leaves pipeline outputs out."""
    inv = Inventory(now=time.time())
    ledger_state(inv, promote)
    if tracking:
        mlflow_state(inv)
    dataset_state(inv, store)
    checkpoint_state(inv, store)
    staging_state(inv, store, promote)
    if pipeline_root and pipeline_root.startswith("s3://"):
        s3_outputs(inv, pipeline_root_store(store), pipeline_root)
    elif pipeline_root:
        local_outputs(inv, Path(pipeline_root), cache_dir)
    return inv


def pipeline_root_store(store: Store) -> Store:
    """The store of a cluster's pipeline root: KFP's own MinIO when GENAUG_PIPELINE_ROOT_S3_*
    name it, else genaug's."""
    from genaug.services.store import S3Config

    endpoint = os.environ.get("GENAUG_PIPELINE_ROOT_S3_ENDPOINT")
    if not endpoint:
        return store
    return Store(S3Config(endpoint, os.environ.get("GENAUG_PIPELINE_ROOT_S3_ACCESS_KEY", ""),
                          os.environ.get("GENAUG_PIPELINE_ROOT_S3_SECRET_KEY", ""),
                          os.environ.get("GENAUG_PIPELINE_ROOT_S3_SECURE", "false").lower() in ("1", "true", "yes")))
