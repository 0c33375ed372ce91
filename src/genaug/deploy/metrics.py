"""The reconciler's ``/metrics`` page: the ledger and the last pass, for Prometheus to scrape.

There is no Pushgateway: a pipeline step that ends cannot be scraped, but the ledger it
wrote outlives it, and the reconciler reads the ledger every pass anyway. So the reconciler
serves, in Prometheus' text exposition format (version 0.0.4, written here: it is a few
lines of text and not worth a dependency):

- ``genaug_last_retrain_success_timestamp_seconds{model}`` (gauge, Unix seconds): when the
  model's newest retrain *reached promotion*, i.e. its newest ``promoted`` or ``rejected``
  decision. Either verdict means the pipeline trained, evaluated and ran the gates: the
  retrain itself succeeded, and a retrain that is no better than the champion is a success
  the gates handled, not an outage. ``failed`` (a promotion that crashed and was reverted) and
  ``rolled_back`` (a person's command) are not retrains that succeeded. Models without such
  a decision have no sample. Read from the record's recent decisions (the newest 20), never
  the event history, so a scrape costs one object per model.
- ``genaug_last_decision{model,decision}`` (gauge, always 1): that decision's verdict, for
  the dashboard.
- ``genaug_champion_version{model}`` (gauge): the Triton version that serves, per the ledger.
- ``genaug_model_ready{model}`` (gauge, 1/0): 1 when the last pass found the champion served;
  0 when its load or repair failed, or when a promotion held its lease (the pass did not
  check it). A champion of the ledger with no sample is one the pass has not seen yet.
- ``genaug_ledger_up`` (gauge, 1/0): whether the last pass could read the ledger; while it is
  0 the per-model samples above are absent, so the alerts on them go silent.
- ``genaug_reconciler_start_time_seconds`` (gauge, Unix seconds): when this process started;
  the retrain dead-man's switch counts from it until the first retrain reaches promotion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A retrain reached promotion with either verdict; see the module docstring.
RETRAIN_VERDICTS = ("promoted", "rejected")


@dataclass(frozen=True)
class LedgerFacts:
    """What one model's ledger record says, for the metrics.

    champion: the serving Triton version, or None; last_retrain_s: Unix seconds of the newest
    promoted/rejected decision, or None; last_decision: that decision's verdict, or None."""

    champion: int | None
    last_retrain_s: float | None
    last_decision: str | None


def unix_seconds(stamp: str) -> float:
    """'2026-12-04T10:31:22.123456Z' (ledger.now()) -> Unix seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def facts_of(record: dict) -> LedgerFacts:
    """The metrics' view of one ledger record (``Ledger.state(name)``)."""
    newest = next((e for e in reversed(record.get("events") or []) if e.get("decision") in RETRAIN_VERDICTS), None)
    return LedgerFacts(champion=record.get("champion"),
                       last_retrain_s=unix_seconds(newest["time"]) if newest else None,
                       last_decision=newest["decision"] if newest else None)


def read_facts(ledger) -> dict[str, LedgerFacts]:
    """Model name -> LedgerFacts, one record read per model; raises what the store raises."""
    return {name: facts_of(ledger.state(name)) for name in ledger.models()}


@dataclass(frozen=True)
class Family:
    """One metric family: name, type ("gauge"), help text and samples (labels, value)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]]


def _escape(value: str, quote: bool = True) -> str:
    # The format's escapes: backslash and line feed, and in label values the double quote.
    value = value.replace("\\", "\\\\").replace("\n", "\\n")
    return value.replace('"', '\\"') if quote else value


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def text(families: list[Family]) -> str:
    """The families in the text exposition format: HELP, TYPE, then one line per sample."""
    lines = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape(family.help, quote=False)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            shown = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{family.name}{{{shown}}} {_number(value)}" if shown else f"{family.name} {_number(value)}")
    return "\n".join(lines) + "\n"


def families(ledger: dict[str, LedgerFacts], models: dict[str, dict], ledger_up: bool,
             started_s: float) -> list[Family]:
    """The reconciler's metrics from plain data.

    ledger: model -> LedgerFacts (empty while the ledger is unreadable); models: the
    reconciler's per-model states ({"state": "serving" | "busy" | "failed", ...});
    started_s: the process' start, Unix seconds."""
    names = sorted(ledger)
    return [
        Family("genaug_last_retrain_success_timestamp_seconds", "gauge",
               "Unix time of the model's newest retrain that reached promotion (promoted or rejected).",
               [({"model": n}, ledger[n].last_retrain_s) for n in names if ledger[n].last_retrain_s is not None]),
        Family("genaug_last_decision", "gauge", "The verdict of that retrain's promotion, as a label (value 1).",
               [({"model": n, "decision": ledger[n].last_decision}, 1) for n in names if ledger[n].last_decision]),
        Family("genaug_champion_version", "gauge", "The Triton version the ledger says serves.",
               [({"model": n}, ledger[n].champion) for n in names if ledger[n].champion is not None]),
        Family("genaug_model_ready", "gauge",
               "1 when the last reconciliation pass found the champion served, "
               "else 0 (failed, or a promotion held it).",
               [({"model": n}, 1 if models[n]["state"] == "serving" else 0) for n in sorted(models)]),
        Family("genaug_ledger_up", "gauge", "1 when the last pass could read the promotion ledger, else 0.",
               [({}, 1 if ledger_up else 0)]),
        Family("genaug_reconciler_start_time_seconds", "gauge", "Unix time the reconciler started.",
               [({}, started_s)]),
    ]
