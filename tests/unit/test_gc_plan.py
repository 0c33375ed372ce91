"""The retention plan (genaug.ops.plan) on many random histories: the invariant holds, gc
does its job, and a second pass finds nothing more (it is a fixpoint).

Each history is drawn from a seeded generator, so a failure names its seed and replays.
"""

import copy
import random
from dataclasses import replace

import pytest

from genaug.ops.inventory import (DatasetPointers, Inventory, ModelVersion, PipelineOutput, Snapshot, StoredObject,
                                  TrackedRun)
from genaug.ops.plan import plan
from genaug.ops.policy import DAY_S, RetentionPolicy
from genaug.services.names import CHECKPOINTS_BUCKET, DATASETS_BUCKET, TRITON_BUCKET

NOW = 1_800_000_000.0
HISTORIES = 300


def _files(version: int) -> dict:
    return {f"{version}/model.onnx": {"sha256": f"h{version}", "size": 100 * version},
            f"{version}/metadata.json": {"sha256": f"m{version}", "size": 10}}


def _model(rng: random.Random, inv: Inventory, name: str) -> None:
    """A model promoted n times: ledger record, Triton files (with an orphan now and then),
    registered versions with aliases, and one pipeline run of a few steps per promotion."""
    n = rng.randint(1, 9)
    promoted = sorted(rng.sample(range(1, n + 1), rng.randint(1, n)))
    champion = promoted[-1] if rng.random() < 0.9 else None
    previous = promoted[-2] if champion is not None and len(promoted) > 1 else None
    record = {"model": name, "kind": "classifier", "champion": champion, "previous": previous,
              "history": promoted, "versions": {}, "next_version": n + 1, "intent": None}
    files = {"config.pbtxt": {"size": 1}}
    for v in range(1, n + 1):
        pipeline, run_id = f"{name}-p{v}", f"{name}-r{v}"
        age = rng.uniform(0, 60) * DAY_S
        for step in range(rng.randint(1, 3)):  # the pipeline run's steps
            checkpoint = f"s3://{CHECKPOINTS_BUCKET}/{name}-ck{v}/latest.pt" if step == 0 else None
            inv.runs.append(TrackedRun(run_id if step == 0 else f"{run_id}-s{step}", NOW - age, pipeline,
                                       checkpoint, (f"data{rng.randint(0, 5)}",)))
        if rng.random() < 0.8:
            inv.checkpoints.append(StoredObject(CHECKPOINTS_BUCKET, f"{name}-ck{v}/latest.pt", 1000, NOW - age))
        aliases = tuple(a for a, w in (("champion", champion), ("previous", previous)) if w == v)
        aliases += ("staging",) if rng.random() < 0.15 else ()  # a person's own alias, unknown to the ledger
        inv.versions.append(ModelVersion(name, str(v), run_id, aliases))
        if v in promoted or rng.random() < 0.3:  # an orphan: written, never committed
            files.update({rel: {"size": e["size"]} for rel, e in _files(v).items()})
        if v in promoted:
            record["versions"][str(v)] = {"files": _files(v), "mlflow_version": str(v), "lineage": {
                "mlflow_run_id": run_id, "pipeline_run_id": pipeline, "data_version": f"data{v % 6}"}}
    inv.ledger[name] = record
    inv.triton_files[name] = files


def _datasets(rng: random.Random, inv: Inventory) -> None:
    for d in range(rng.randint(0, 2)):
        name, versions = f"ds{d}", []
        for k in range(rng.randint(1, 6)):
            objects = frozenset(f"objects/sha256/{rng.randint(0, 30):02d}" for _ in range(rng.randint(1, 8)))
            version = f"data{k}" if d == 0 else f"{name}-v{k}"
            versions.append(version)
            folder = (StoredObject(DATASETS_BUCKET, f"registry/{name}/versions/{version}/manifest.json", 5, NOW),)
            inv.snapshots.append(Snapshot(name, version, NOW - rng.uniform(0, 90) * DAY_S, objects, folder))
        labelled = frozenset(rng.sample(versions, rng.randint(0, len(versions))))
        inv.pointers.append(DatasetPointers(name, rng.choice(versions), labelled))
    keys = {f"objects/sha256/{i:02d}" for i in range(31)}
    inv.dataset_objects += [StoredObject(DATASETS_BUCKET, k, 50, NOW - rng.uniform(0, 90) * DAY_S) for k in sorted(keys)]


def history(seed: int) -> Inventory:
    rng = random.Random(seed)
    inv = Inventory(now=NOW)
    for m in range(rng.randint(0, 3)):
        _model(rng, inv, f"m{m}")
    for i in range(rng.randint(0, 4)):  # runs behind nothing (failed or abandoned pipelines)
        inv.runs.append(TrackedRun(f"lone{i}", NOW - rng.uniform(0, 60) * DAY_S, None))
    _datasets(rng, inv)
    for i in range(rng.randint(0, 5)):
        loc = f"/runs/{i}/kfp/job/{rng.choice(['prepare-data', 'synthesize'])}/out"
        inv.outputs.append(PipelineOutput(loc, loc.split("/")[-2], 10, NOW - rng.uniform(0, 60) * DAY_S))
    inv.cached_outputs = frozenset(o.location for o in inv.outputs if o.task == "prepare-data" and rng.random() < 0.5)
    inv.staging = [StoredObject(TRITON_BUCKET, f".staging/x{i}", 1, NOW - rng.uniform(0, 72) * 3600)
                   for i in range(rng.randint(0, 3))]
    return inv


def policy_for(seed: int) -> RetentionPolicy:
    rng = random.Random(-seed)
    return RetentionPolicy(keep_versions=rng.randint(0, 4), max_age_days=rng.choice([0, 7, 30]),
                           keep_snapshots=rng.randint(0, 3), staging_hours=rng.choice([0, 24]))


def referenced(inv: Inventory) -> dict[str, set]:
    """What the invariant protects, computed from the history itself, not by the planner:
    the champions' and previous versions' files, versions and runs (with their pipeline runs'
    steps and checkpoints), every aliased version, the datasets' latest and labelled
    versions, and what KFP's cache points to."""
    out = {k: set() for k in ("triton", "versions", "runs", "checkpoints", "snapshots", "outputs")}
    pipelines = set()
    for name, record in inv.ledger.items():
        for v in (record["champion"], record["previous"]):
            if v is not None:
                entry = record["versions"][str(v)]
                out["triton"] |= {(name, rel) for rel in entry["files"]}
                out["versions"].add((name, entry["mlflow_version"]))
                pipelines.add(entry["lineage"]["pipeline_run_id"])
    out["versions"] |= {(mv.model, mv.version) for mv in inv.versions if mv.aliases}
    run_of = {(mv.model, mv.version): mv.run_id for mv in inv.versions}
    by_id = {r.run_id: r for r in inv.runs}
    pipelines |= {by_id[run_of[v]].pipeline_run_id for v in out["versions"] if run_of.get(v) in by_id}
    kept_runs = [r for r in inv.runs if r.pipeline_run_id in pipelines]
    out["runs"] = {r.run_id for r in kept_runs}
    out["checkpoints"] = {r.checkpoint for r in kept_runs if r.checkpoint}
    out["snapshots"] = {(p.dataset, v) for p in inv.pointers for v in {p.latest, *p.labelled}}
    out["outputs"] = set(inv.cached_outputs)
    return out


def deleted(inv: Inventory, the_plan) -> dict[str, set]:
    out = {k: set() for k in ("triton", "versions", "runs", "checkpoints", "snapshots", "outputs", "objects")}
    for d in the_plan.deletions:
        if d.category == "triton":
            out["triton"].add((d.handle[1], d.target.split(f"/{d.handle[1]}/", 1)[1]))
        elif d.category == "registry":
            out["versions"].add(d.handle[1:])
        elif d.category == "runs":
            out["runs"].add(d.handle[1])
        elif d.category == "checkpoints":
            out["checkpoints"].add(d.target)
        elif d.category == "outputs":
            out["outputs"].add(d.target)
        elif d.category == "snapshots":
            out["snapshots"] |= {(s.dataset, s.version) for s in inv.snapshots if any(f.uri == d.target for f in s.files)}
        elif d.category == "dataset-objects":
            out["objects"].add(d.handle[2])
    return out


def after(inv: Inventory, the_plan) -> Inventory:
    """The history once the plan is carried out."""
    gone = deleted(inv, the_plan)
    removed_objects = {d.target for d in the_plan.deletions if d.handle[0] == "object"}
    return replace(
        inv, ledger=copy.deepcopy(the_plan.ledger_after),
        triton_files={n: {rel: e for rel, e in files.items() if (n, rel) not in gone["triton"]}
                      for n, files in inv.triton_files.items()},
        versions=[mv for mv in inv.versions if (mv.model, mv.version) not in gone["versions"]],
        runs=[r for r in inv.runs if r.run_id not in gone["runs"]],
        checkpoints=[o for o in inv.checkpoints if o.uri not in removed_objects],
        snapshots=[s for s in inv.snapshots if (s.dataset, s.version) not in gone["snapshots"]],
        dataset_objects=[o for o in inv.dataset_objects if o.uri not in removed_objects],
        outputs=[o for o in inv.outputs if o.location not in gone["outputs"]],
        staging=[o for o in inv.staging if o.uri not in removed_objects])


@pytest.mark.parametrize("block", range(3))
def test_the_invariant_holds_gc_does_its_job_and_a_second_pass_finds_nothing(block):
    for seed in range(block * HISTORIES // 3, (block + 1) * HISTORIES // 3):
        inv, policy = history(seed), policy_for(seed)
        the_plan = plan(inv, policy)
        safe, gone = referenced(inv), deleted(inv, the_plan)
        for kind in safe:
            assert not safe[kind] & gone[kind], (seed, kind, safe[kind] & gone[kind])
        rest = after(inv, the_plan)
        # Every file the ledger still names is still there, and every kept snapshot's objects.
        for name, record in rest.ledger.items():
            for v, entry in record["versions"].items():
                assert set(entry["files"]) <= set(rest.triton_files[name]), (seed, name, v)
        live = {o.key for o in rest.dataset_objects}
        for s in rest.snapshots:
            assert s.objects & {o.key for o in inv.dataset_objects} <= live, (seed, s.version)
        # gc does its job: what is old and referenced by nothing is gone.
        old = NOW - policy.max_age_s
        assert not [r for r in rest.runs if r.pipeline_run_id is None and r.start < old], seed
        assert not [o for o in rest.staging if o.modified < NOW - policy.staging_s], seed
        unaliased = {}
        for mv in rest.versions:
            if not mv.aliases and (mv.model, mv.version) not in {
                    (n, e["mlflow_version"]) for n, r in rest.ledger.items() for e in r["versions"].values()}:
                unaliased.setdefault(mv.model, []).append(mv)
        assert all(len(v) <= policy.keep_versions for v in unaliased.values()), seed
        # ... and what the policy keeps stays: per model the newest N versions without an alias,
        # per dataset the newest N snapshot versions.
        for model in {mv.model for mv in inv.versions}:
            free = sorted(int(mv.version) for mv in inv.versions if mv.model == model and not mv.aliases)
            newest = set(free[max(0, len(free) - policy.keep_versions):]) if policy.keep_versions else set()
            assert newest <= {int(mv.version) for mv in rest.versions if mv.model == model}, (seed, model)
        for dataset in {s.dataset for s in inv.snapshots}:
            mine = sorted((s for s in inv.snapshots if s.dataset == dataset), key=lambda s: s.created)
            newest = {s.version for s in mine[max(0, len(mine) - policy.keep_snapshots):]} if policy.keep_snapshots else set()
            assert newest <= {s.version for s in rest.snapshots if s.dataset == dataset}, (seed, dataset)
        # A fixpoint: a second pass on what is left deletes nothing.
        again = plan(rest, policy)
        assert not again.deletions, (seed, [d.target for d in again.deletions][:5])


def test_a_history_keeps_only_the_newest_unaliased_versions_and_whole_pipeline_runs():
    inv = Inventory(now=NOW)
    old = NOW - 40 * DAY_S
    inv.ledger["m"] = {"model": "m", "champion": 5, "previous": 4, "history": [4, 5], "intent": None,
                       "versions": {v: {"files": _files(int(v)), "mlflow_version": v,
                                        "lineage": {"pipeline_run_id": f"p{v}"}} for v in ("4", "5")}}
    inv.triton_files["m"] = {rel: {"size": e["size"]} for v in (1, 4, 5) for rel, e in _files(v).items()}
    inv.versions = [ModelVersion("m", str(v), f"r{v}", {5: ("champion",), 4: ("previous",)}.get(v, ()))
                    for v in range(1, 6)]
    inv.runs = [TrackedRun(f"r{v}", old, f"p{v}", f"s3://{CHECKPOINTS_BUCKET}/k{v}/latest.pt") for v in range(1, 6)]
    inv.runs.append(TrackedRun("r5-train", old, "p5", f"s3://{CHECKPOINTS_BUCKET}/k5b/latest.pt"))
    inv.checkpoints = [StoredObject(CHECKPOINTS_BUCKET, f"{k}/latest.pt", 7, old) for k in ("k1", "k3", "k5b")]
    the_plan = plan(inv, RetentionPolicy(keep_versions=1))
    got = {(d.category, d.target) for d in the_plan.deletions}
    assert got == {("triton", f"s3://{TRITON_BUCKET}/models/m/1/model.onnx"),
                   ("triton", f"s3://{TRITON_BUCKET}/models/m/1/metadata.json"),
                   ("registry", "m version 1"), ("registry", "m version 2"),
                   ("runs", "MLflow run r1"), ("runs", "MLflow run r2"),
                   ("checkpoints", f"s3://{CHECKPOINTS_BUCKET}/k1/latest.pt")}, got
    assert the_plan.bytes() == 7 + 100 + 10
