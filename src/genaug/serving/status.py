"""``genaug promote --status``: what serves, per model, as the ledger says and as the files are.

One ledger record per model is read (never the event history), and the champion's files
are hashed against the sha256 the ledger approved, so a swapped ``model.onnx``, a changed
``config.pbtxt`` or an extra file shows here even while Triton keeps serving from memory.
"""

from __future__ import annotations

from genaug.columns import aligned
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
            "served_since": _served_since(state, champion, entry),
            "unfinished_promotion": state.get("intent"), "lock": ledger.holder(name),
            "decisions": state.get("event_count", 0),
            "recent": [{k: e.get(k) for k in ("time", "decision", "version", "champion_version_after", "reason")}
                       for e in (state.get("events") or [])[-3:]]}


def _served_since(state: dict, champion, entry: dict) -> dict | None:
    """{"time", "decision", "reason"} of the decision that put ``champion`` in service, from
    the record's recent decisions; when it is older than those, only its promotion time."""
    if champion is None:
        return None
    for event in reversed(state.get("events") or []):
        if event.get("decision") in ("promoted", "rolled_back") and event.get("champion_version_after") == champion:
            return {k: event.get(k) for k in ("time", "decision", "reason")}
    return {"time": entry.get("promoted_at"), "decision": "promoted",
            "reason": "not among the record's recent decisions (the ledger's events hold it)"}


def status(store) -> dict:
    """{"models": {name: {...}}} for every model that has a ledger record."""
    ledger, repo = Ledger(store), Repository(store)
    return {"models": {name: model_status(ledger, repo, name) for name in ledger.models()}}


# "why" last: a gate's reason is the one long cell.
TABLE_HEADER = ("model", "serving", "score", "since", "integrity", "why")


def table(report: dict) -> str:
    """``status(store)`` for a person: one line per model (what serves, its gate score, since
    when, whether its files are as approved, and why it serves), then a line for each
    integrity problem, unfinished promotion and held lock."""
    rows, notes = [], []
    for name, m in sorted(report["models"].items()):
        if m["version"] is None:
            last = (m["recent"] or [{}])[-1]
            rows.append((name, "nothing", "-", _when(last.get("time")), "-", _why(last)))
        else:
            since = m["served_since"]
            score = "-" if m["score"] is None else f"{m['metric']} {m['score']:.4f}"
            problems = [] if m["integrity"] == "ok" else m["integrity"]
            rows.append((name, f"v{m['version']}", score, _when(since["time"]),
                         "ok" if not problems else f"{len(problems)} problem(s)", _why(since)))
            notes += [f"  {name}: {problem}" for problem in problems]
        if m["unfinished_promotion"]:
            notes.append(f"  {name}: a promotion to v{m['unfinished_promotion'].get('version')} stopped before its "
                         "commit; the reconciler reverts it")
        if m["lock"]:
            notes.append(f"  {name}: locked by {m['lock']['owner']} since {_when(m['lock']['since'])}")
    if not rows:
        return "Nothing has been promoted yet: no model has a ledger record."
    return "\n".join(aligned(TABLE_HEADER, rows) + ([""] + notes if notes else []))


def _when(time: str | None) -> str:
    """'2026-12-04T10:31:22.123456Z' -> '2026-12-04 10:31 UTC'."""
    return f"{time[:10]} {time[11:16]} UTC" if time else "-"


def _why(event: dict) -> str:
    decision = event.get("decision")
    return f"{decision}: {event.get('reason')}" if decision else "-"
