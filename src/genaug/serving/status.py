"""``genaug promote --status``: what serves, per model, as the ledger says and as the files are.

One ledger record per model is read (never the event history), and the champion's files
are hashed against the sha256 the ledger approved, so a swapped ``model.onnx``, a changed
``config.pbtxt`` or an extra file shows here even while Triton keeps serving from memory.
"""

from __future__ import annotations

from genaug.serving import integrity, retention
from genaug.serving.ledger import Ledger
from genaug.serving.repository import Repository


def model_status(ledger: Ledger, repo: Repository, name: str) -> dict:
    state = ledger.state(name)
    champion = state.get("champion")
    entry = (state.get("versions") or {}).get(str(champion), {}) if champion is not None else {}
    found = integrity.problems(repo, name, state, champion) if champion is not None else []
    return {"version": champion, "previous": state.get("previous"), "kind": state.get("kind"),
            "mlflow_version": entry.get("mlflow_version"), "sha256": entry.get("sha256"),
            "metric": entry.get("metric"), "score": entry.get("score"),
            "kept_versions": sorted(retention.kept_versions(state)), "history": state.get("history", []),
            "integrity": "ok" if not found else found,
            "unfinished_promotion": state.get("intent"), "lock": ledger.holder(name),
            "decisions": state.get("event_count", 0),
            "recent": [{k: e.get(k) for k in ("time", "decision", "version", "champion_version_after", "reason")}
                       for e in (state.get("events") or [])[-3:]]}


def status(store) -> dict:
    """{"models": {name: {...}}} for every model that has a ledger record."""
    ledger, repo = Ledger(store), Repository(store)
    return {"models": {name: model_status(ledger, repo, name) for name in ledger.models()}}
