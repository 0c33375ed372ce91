"""Bounded history: per model, the champion, ``previous`` and the 3 newest other versions.

Triton downloads every version folder of a model on each load, so folders that nothing can
serve (older versions, orphans of failed attempts) cost every load and every restart. The
rest are removed from the repository and from the ledger record; rollback only ever
offers kept versions. An MLflow model version whose Triton copy is removed is tagged
``genaug.triton_pruned=true``; its own source (the ONNX folder in the MLflow run's
artifacts) stays, and when its source was the Triton copy itself it is also tagged
``genaug.pruned=true``.
"""

from __future__ import annotations

import copy

from genaug.services import tracking
from genaug.serving.repository import Repository

KEEP_OTHERS = 3


def kept_versions(record: dict, keep_others: int = KEEP_OTHERS) -> set[int]:
    """The versions of a ledger record that stay: champion, previous, the newest others,
    and the version of a promotion still in flight."""
    known = sorted(int(v) for v in (record.get("versions") or {}))
    pinned = {v for v in (record.get("champion"), record.get("previous")) if v is not None}
    others = [v for v in known if v not in pinned][-keep_others:] if keep_others else []
    intent = (record.get("intent") or {}).get("version")
    return pinned | set(others) | ({int(intent)} if intent is not None else set())


def prune_record(record: dict, keep_others: int = KEEP_OTHERS) -> tuple[dict, list[dict]]:
    """The record without the versions that are not kept, and the entries removed."""
    keep = kept_versions(record, keep_others)
    removed = [{"version": int(v), **e} for v, e in record["versions"].items() if int(v) not in keep]
    record["versions"] = {v: e for v, e in record["versions"].items() if int(v) in keep}
    record["history"] = [v for v in record.get("history", []) if v in keep]
    return record, removed


def unkept_folders(files, keep: set[int]) -> list[str]:
    """Of a model's ``files`` (paths relative to its folder), those in version folders that
    are not kept (older versions and orphans)."""
    return sorted(rel for rel in files
                  if "/" in rel and rel.split("/", 1)[0].isdigit() and int(rel.split("/", 1)[0]) not in keep)


def mark_pruned(name: str, removed: list[dict], triton_prefix: str) -> None:
    """Tag the MLflow versions whose Triton files were removed."""
    for entry in removed:
        mv = entry.get("mlflow_version")
        if not mv:
            continue
        tags = {"genaug.triton_pruned": "true"}
        if str(entry.get("mlflow_source", "")).startswith(triton_prefix):
            tags["genaug.pruned"] = "true"
        tracking.tag_version(name, mv, tags)


def prune(name: str, ledger, repo: Repository, keep_others: int = KEEP_OTHERS) -> list[str]:
    """Remove the versions retention does not keep, from the ledger and the repository."""
    record = ledger.read(name)
    pruned, removed = prune_record(copy.deepcopy(record.value), keep_others)
    if removed:
        ledger.write(name, record, pruned)
    files = unkept_folders(repo.objects(name), kept_versions(pruned, keep_others))
    repo.remove(name, files)
    if removed and tracking.configured():
        mark_pruned(name, removed, f"s3://{repo.bucket}/{repo.prefix}/{name}/")
    return files
