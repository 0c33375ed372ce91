"""The retention plan: from an Inventory and a RetentionPolicy, what to delete and why.

Pure: no server is called, so the invariant is testable on any history. It holds by
construction: every deletion is checked against ``Protected`` (what a champion, a
``previous`` alias, any other alias or the ledger references, and everything a kept run
uses) before it enters the plan.

Kept runs are whole pipeline runs: a registered version's run keeps every run of its
pipeline run (the steps that trained, synthesized and evaluated it), and with them their
checkpoints and dataset versions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from genaug.ops.inventory import Inventory, StoredObject
from genaug.ops.policy import RetentionPolicy
from genaug.serving import retention
from genaug.services.names import TRITON_BUCKET, TRITON_MODELS_PREFIX

# Of a ledger entry's lineage, the fields that name MLflow runs and a dataset version.
LINEAGE_RUNS, LINEAGE_PIPELINE, LINEAGE_DATA = ("mlflow_run_id", "mlflow_parent_run_id"), "pipeline_run_id", ("data_version",)

CATEGORIES = ("triton", "registry", "runs", "checkpoints", "outputs", "snapshots", "dataset-objects", "staging")


@dataclass(frozen=True)
class Deletion:
    """One thing to delete. ``handle`` is what genaug.ops.sweep acts on:
    ("triton", model) | ("version", model, version) | ("run", run_id) |
    ("object", bucket, key) | ("output", location)."""

    category: str
    target: str
    size: int
    reason: str
    handle: tuple


@dataclass
class Protected:
    """Everything the invariant says may never be deleted."""

    triton_files: dict[str, set[str]] = field(default_factory=dict)  # model -> rel paths
    versions: set[tuple[str, str]] = field(default_factory=set)      # (model, version)
    runs: set[str] = field(default_factory=set)
    pipeline_runs: set[str] = field(default_factory=set)
    checkpoints: set[str] = field(default_factory=set)               # s3:// URIs
    snapshots: set[tuple[str, str]] = field(default_factory=set)     # (dataset, version)
    objects: set[str] = field(default_factory=set)                   # datasets-bucket keys
    outputs: set[str] = field(default_factory=set)


@dataclass
class Plan:
    policy: RetentionPolicy
    deletions: list[Deletion]
    protected: Protected
    ledger_after: dict[str, dict]  # the ledger records once the Triton repository is pruned

    def by_category(self) -> dict[str, list[Deletion]]:
        return {c: [d for d in self.deletions if d.category == c] for c in CATEGORIES}

    def bytes(self) -> int:
        return sum(d.size for d in self.deletions)


def _newest(items: list, n: int) -> list:
    """The last ``n`` of ``items`` (all of them when there are fewer; none when n is 0)."""
    return items[max(0, len(items) - n):] if n else []


def _ledger_references(records: dict[str, dict]) -> tuple[set, set, set, set]:
    """(model versions, run ids, pipeline run ids, data versions) the ledger names."""
    versions, runs, pipelines, data = set(), set(), set(), set()
    for name, record in records.items():
        for entry in (record.get("versions") or {}).values():
            if entry.get("mlflow_version"):
                versions.add((name, str(entry["mlflow_version"])))
            lineage = entry.get("lineage") or {}  # entries of earlier releases have none
            runs |= {lineage[k] for k in LINEAGE_RUNS if lineage.get(k)}
            if lineage.get(LINEAGE_PIPELINE):
                pipelines.add(lineage[LINEAGE_PIPELINE])
            data |= {lineage[k] for k in LINEAGE_DATA if lineage.get(k)}
        intent = record.get("intent") or {}
        if intent.get("mlflow_version"):
            versions.add((name, str(intent["mlflow_version"])))
    return versions, runs, pipelines, data


def protect(inv: Inventory, policy: RetentionPolicy, ledger_after: dict[str, dict]) -> Protected:
    """What may not be deleted, given the ledger as pruning leaves it."""
    p = Protected()
    for name, record in ledger_after.items():
        p.triton_files[name] = {"config.pbtxt"} | {rel for entry in (record.get("versions") or {}).values()
                                                   for rel in (entry.get("files") or {})}
    versions, runs, pipelines, data_versions = _ledger_references(ledger_after)
    p.versions |= versions
    by_model: dict[str, list] = {}
    for mv in inv.versions:
        by_model.setdefault(mv.model, []).append(mv)
        if mv.aliases:
            p.versions.add((mv.model, mv.version))
    for model, mvs in by_model.items():
        unaliased = sorted((mv for mv in mvs if not mv.aliases), key=lambda mv: int(mv.version))
        newest = _newest(unaliased, policy.keep_versions)
        p.versions |= {(model, mv.version) for mv in newest}
    runs |= {mv.run_id for mv in inv.versions if (mv.model, mv.version) in p.versions and mv.run_id}
    pipelines |= {r.pipeline_run_id for r in inv.runs if r.run_id in runs and r.pipeline_run_id}
    young = inv.now - policy.max_age_s
    p.pipeline_runs = pipelines
    p.runs = runs | {r.run_id for r in inv.runs if r.pipeline_run_id in pipelines or r.start >= young}
    kept_runs = [r for r in inv.runs if r.run_id in p.runs]
    p.checkpoints = {r.checkpoint for r in kept_runs if r.checkpoint}
    digests = {d for r in kept_runs for d in r.data_digests}
    snapshots_by_dataset: dict[str, list] = {}
    for s in inv.snapshots:
        snapshots_by_dataset.setdefault(s.dataset, []).append(s)
    pointers = {ptr.dataset: ptr for ptr in inv.pointers}
    for dataset, snaps in snapshots_by_dataset.items():
        ptr = pointers.get(dataset)
        named = ({ptr.latest} | set(ptr.labelled)) if ptr else set()
        newest = _newest(sorted(snaps, key=lambda s: s.created), policy.keep_snapshots)
        for s in snaps:
            used = s.version in data_versions or any(s.version.startswith(d) for d in digests if d)
            if s.version in named or s in newest or used or s.created >= young:
                p.snapshots.add((dataset, s.version))
    p.objects = set(inv.pinned_objects) | {key for s in inv.snapshots if (s.dataset, s.version) in p.snapshots
                                           for key in s.objects}
    p.outputs = set(inv.cached_outputs)
    return p


def _prune_ledger(inv: Inventory, policy: RetentionPolicy) -> tuple[dict[str, dict], list]:
    """The ledger after pruning (genaug.serving.retention, as promotion prunes), and per
    model the repository files pruning removes."""
    after, removed = {}, []
    for name, record in inv.ledger.items():
        pruned, _ = retention.prune_record(copy.deepcopy(record), policy.keep_versions)
        after[name] = pruned
        keep = retention.kept_versions(pruned, policy.keep_versions)
        files = inv.triton_files.get(name, {})
        removed += [(name, rel, int(files[rel].get("size", 0))) for rel in retention.unkept_folders(files, keep)]
    return after, removed


def _object(category: str, obj: StoredObject, reason: str) -> "Deletion":
    return Deletion(category, obj.uri, obj.size, reason, ("object", obj.bucket, obj.key))


def plan(inv: Inventory, policy: RetentionPolicy | None = None) -> Plan:
    """Everything ``policy`` lets go of in ``inv``, each deletion with its reason."""
    policy = policy or RetentionPolicy()
    ledger_after, triton_removed = _prune_ledger(inv, policy)
    p = protect(inv, policy, ledger_after)
    old, stale = inv.now - policy.max_age_s, inv.now - policy.staging_s
    out: list[Deletion] = []
    for name, rel, size in triton_removed:
        if rel not in p.triton_files.get(name, set()):
            out.append(Deletion("triton", f"s3://{TRITON_BUCKET}/{TRITON_MODELS_PREFIX}/{name}/{rel}", size,
                                f"beyond the newest {policy.keep_versions} versions, or an orphan", ("triton", name)))
    for mv in inv.versions:
        if (mv.model, mv.version) not in p.versions:
            out.append(Deletion("registry", f"{mv.model} version {mv.version}", 0,
                                f"no alias, not in the ledger, beyond the newest {policy.keep_versions}",
                                ("version", mv.model, mv.version)))
    for run in inv.runs:
        if run.run_id not in p.runs and run.start < old:
            out.append(Deletion("runs", f"MLflow run {run.run_id}", 0,
                                f"older than {policy.max_age_days:g} days and behind no kept version", ("run", run.run_id)))
    kept_checkpoints = {uri.rsplit("/", 1)[0] for uri in p.checkpoints}  # a checkpoint is its key's folder
    for obj in inv.checkpoints:
        if obj.uri.rsplit("/", 1)[0] not in kept_checkpoints and obj.modified < old:
            out.append(_object("checkpoints", obj, "no kept run trained from it"))
    for o in inv.outputs:
        if o.location not in p.outputs and o.modified < old:
            out.append(Deletion("outputs", o.location, o.size, f"{o.task} output older than "
                                f"{policy.max_age_days:g} days that KFP's cache does not point to", ("output", o.location)))
    for s in inv.snapshots:
        if (s.dataset, s.version) not in p.snapshots:
            out += [_object("snapshots", f, f"version {s.version[:12]} of {s.dataset}: not latest, labelled, "
                            f"used or among the newest {policy.keep_snapshots}") for f in s.files]
    for obj in inv.dataset_objects:
        if obj.key not in p.objects and obj.modified < old:
            out.append(_object("dataset-objects", obj, "no kept snapshot references it"))
    for obj in inv.staging:
        if obj.modified < stale:
            out.append(_object("staging", obj, f"an upload left behind more than {policy.staging_hours:g} h ago"))
    return Plan(policy, out, p, ledger_after)
