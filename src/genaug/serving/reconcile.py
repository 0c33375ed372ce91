"""One reconciliation pass: make Triton serve what the ledger says, and repair what differs.

Triton in explicit mode starts empty, so ``make up`` runs a pass after every (re)start and
the cluster's sidecar (genaug.deploy.reconciler) every 30 s. For each model with a ledger
record (one object read per model, whatever its history):

- a model whose lease is held by a live promoter is left alone (reported as busy);
- when anything differs from the ledger (an unfinished promotion, a config that does not
  pin the champion, a champion Triton does not serve, aliases that point elsewhere, or
  versions beyond retention), the pass takes the model's lease and repairs it:
  revert the unfinished promotion, re-pin config, Triton and aliases, prune;
- a champion whose files differ from what the ledger approved is never (re)loaded: it is
  reported, and a version already in Triton's memory keeps serving.

Failures are collected per model, never raised, so one bad model cannot block the rest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from genaug.services import tracking
from genaug.services.triton import Triton
from genaug.serving import integrity, recovery, retention
from genaug.serving.lease import LockedError
from genaug.serving.ledger import LEGACY_CHAMPIONS, Ledger, empty_record, model_key
from genaug.serving.records import Conflict
from genaug.serving.repository import Repository


@dataclass
class ReconcileReport:
    """Outcome per model: repaired now (loading included), already right, busy, or failed with the reason."""

    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    repaired: dict[str, list[str]] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)
    ledger_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and self.ledger_error is None

    def lines(self) -> list[str]:
        out = []
        if self.ledger_error:
            out.append(f"ledger unreadable: {self.ledger_error}")
        out += [f"repaired {name}: {', '.join(done)}" for name, done in self.repaired.items()]
        out += [f"already serving {name}" for name in self.already]
        out += [f"{name}: a promotion holds its lease; left alone" for name in self.busy]
        out += [f"FAILED {name}: {reason}" for name, reason in self.failed.items()]
        return out or ["ledger lists no models"]


def drift(name: str, state: dict, repo: Repository, triton: Triton, aliases: bool) -> list[str]:
    """What differs from the ledger, checked cheaply (no model download)."""
    found = []
    if state.get("intent"):
        found.append(f"unfinished promotion of v{state['intent']['version']}")
    champion = state.get("champion")
    if champion is not None:
        if not triton.ready(name, str(champion)):
            found.append(f"Triton does not serve v{champion}")
        found += integrity.problems(repo, name, state, champion, deep=False)
    if aliases:
        found += [f"alias {a} differs" for a in recovery.aliases_wrong(name, state)]
    kept = retention.kept_versions(state)
    if len(state.get("versions", {})) > len(kept) or retention.unkept_folders(repo.objects(name), kept):
        found.append("versions beyond retention")
    return found


def reconcile_model(name: str, ledger: Ledger, repo: Repository, triton: Triton, report: ReconcileReport,
                    aliases: bool, owner: str) -> None:
    state = ledger.state(name)
    if state.get("champion") is None and not state.get("intent"):
        return
    if ledger.holder(name):
        report.busy.append(name)
        return
    if not drift(name, state, repo, triton, aliases):
        report.already.append(name)
        return
    try:
        lease = ledger.acquire(name, owner)
    except LockedError:
        report.busy.append(name)
        return
    try:
        done = []
        reverted = recovery.revert(name, ledger, repo, triton, "stopped before its commit (found by the reconciler)",
                                   aliases=aliases)
        if reverted:
            done.append(f"reverted the unfinished promotion of v{reverted['attempted_version']}")
        lease.check()
        done += recovery.repin(name, ledger.state(name), repo, triton, aliases=aliases)
        pruned = retention.prune(name, ledger, repo)
        if pruned:
            done.append(f"pruned {len(pruned)} file(s)")
        state = ledger.state(name)
        problems = integrity.problems(repo, name, state, state["champion"], deep=False) \
            if state.get("champion") is not None else []
        if problems:
            raise integrity.IntegrityError("; ".join(problems) + " (the version in Triton's memory keeps serving)")
        if done:
            report.repaired[name] = done
        else:
            report.already.append(name)
    finally:
        lease.release()


def reconcile(store, triton: Triton, aliases: bool | None = None, models: list[str] | None = None) -> ReconcileReport:
    """One pass over every model in the ledger (or only ``models``); ``aliases`` (default:
    when MLflow is configured) also re-pins the MLflow aliases."""
    report = ReconcileReport()
    aliases = tracking.configured() if aliases is None else aliases
    owner = f"reconciler-{uuid.uuid4().hex[:12]}"
    try:
        ledger, repo = Ledger(store), Repository(store)
        migrate_legacy(ledger, repo)
        names = ledger.models() if models is None else list(models)
    except Exception as err:  # noqa: BLE001 - unreadable in any way: say so, load nothing
        report.ledger_error = f"{type(err).__name__}: {err}"
        return report
    for name in names:
        try:
            reconcile_model(name, ledger, repo, triton, report, aliases, owner)
        except Exception as err:  # noqa: BLE001 - one model never blocks the others
            report.failed[name] = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
    return report


def migrate_legacy(ledger: Ledger, repo: Repository) -> list[str]:
    """Move the single ``ledger/champions.json`` of earlier releases to per-model records, once.

    Those records had no file hashes: the files found now are recorded (trust on first use).
    """
    legacy = ledger.records.read(LEGACY_CHAMPIONS)
    if legacy is None:
        return []
    moved = []
    for name, entry in (legacy.value.get("models") or {}).items():
        version = int(entry["version"])
        config = repo.config(name)
        if ledger.records.read(model_key(name)) is not None or config is None:
            continue
        versions = {}
        for v in {version, entry.get("previous")} - {None}:
            v = int(v)
            if f"{v}/model.onnx" in repo.objects(name):
                text = config if v == version else config.replace(f"versions: [ {version} ]", f"versions: [ {v} ]")
                versions[str(v)] = {"files": integrity.manifest(repo, name, v, text), "config": text,
                                    "mlflow_version": entry.get("mlflow_version") if v == version else None}
        previous = entry.get("previous") if str(entry.get("previous")) in versions else None
        value = {**empty_record(name), "kind": entry.get("kind"), "champion": version, "previous": previous,
                 "history": [v for v in (entry.get("history") or [version]) if str(v) in versions],
                 "versions": versions, "next_version": max(repo.versions(name), default=version) + 1}
        try:
            ledger.records.create(model_key(name), value)
            moved.append(name)
        except Conflict:
            pass
    ledger.records.put(LEGACY_CHAMPIONS.replace(".json", ".migrated.json"), legacy.value)
    ledger.records.delete(LEGACY_CHAMPIONS)
    return moved
