"""The promotion ledger: the source of truth for what Triton serves, one record per model.

    ledger/models/<name>.json          the model's record (below); every write is a compare-and-set
    ledger/locks/<name>.json           the model's lease (genaug.serving.lease)
    ledger/events/<name>/<time>-<id>.json   one per decision, with its reasons (the audit trail)

A model's record::

    {"model", "kind",
     "champion": 3, "previous": 2,             # the versions that serve and that rollback serves
     "history": [1, 2, 3],                     # promoted versions still kept, oldest first
     "versions": {"3": {"files": {"config.pbtxt": {"sha256", "size"}, "3/model.onnx": ...,
                                  "3/metadata.json": ...},
                        "config": "<config.pbtxt text that pins 3>", "mlflow_version": "7",
                        "lineage": {"mlflow_run_id", "pipeline_run_id", "data_version", ...}, ...}},
     "next_version": 4,                         # never reused, orphans included
     "intent": null | {...},                    # a promotion that started and has not ended
     "events": [...the newest 20 decisions...], "event_count": 57}

Promotion, rollback, ``genaug promote --status`` and the reconciler read this one object
per model (O(1) in the model's history), never the list of events. Records are replaced
only with ``If-Match`` on the ETag read, so two writers can never drop each other's
change; the per-model lease keeps them from trying.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from genaug.services.names import TRITON_BUCKET as BUCKET
from genaug.services.store import S3Config
from genaug.serving.lease import Lease, LockedError, holder
from genaug.serving.records import Conflict, Record, Records

MODELS_PREFIX = "ledger/models/"
EVENTS_PREFIX = "ledger/events/"
LEGACY_CHAMPIONS = "ledger/champions.json"  # the single shared object of earlier releases
RECENT_EVENTS = 20

__all__ = ["Ledger", "LockedError", "now"]


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def empty_record(name: str) -> dict:
    return {"model": name, "kind": None, "champion": None, "previous": None, "history": [], "versions": {},
            "next_version": 1, "intent": None, "events": [], "event_count": 0}


def model_key(name: str) -> str:
    return f"{MODELS_PREFIX}{name}.json"


class Ledger:
    def __init__(self, store=None, bucket: str = BUCKET, config: S3Config | None = None):
        config = config or (store.config if store is not None else None)
        self.bucket = bucket
        self.records = Records(bucket, config)

    # -- reading -------------------------------------------------------------------------
    def read(self, name: str) -> Record:
        """The model's record and its ETag (etag "" when the model has none yet)."""
        record = self.records.read(model_key(name))
        return record if record is not None else Record(empty_record(name), "")

    def state(self, name: str) -> dict:
        return self.read(name).value

    def models(self) -> list[str]:
        """Every model with a record, sorted."""
        return [k[len(MODELS_PREFIX):-len(".json")] for k in self.records.keys(MODELS_PREFIX) if k.endswith(".json")]

    def champion(self, name: str) -> dict | None:
        """What serves: {"version", "previous", "history", "mlflow_version", "kind", "sha256", ...} or None."""
        state = self.state(name)
        if state["champion"] is None:
            return None
        entry = state["versions"][str(state["champion"])]
        return {**{k: v for k, v in entry.items() if k not in ("files", "config")}, "version": state["champion"],
                "previous": state["previous"], "history": state["history"], "kind": state["kind"]}

    def holder(self, name: str) -> dict | None:
        return holder(self.records, name)

    # -- writing -------------------------------------------------------------------------
    def write(self, name: str, record: Record, value: dict) -> Record:
        """Replace the model's record if it is unchanged since ``record`` was read; raise Conflict."""
        etag = self.records.write(model_key(name), value, record.etag or None)
        return Record(value, etag)

    def update(self, name: str, change, attempts: int = 20) -> Record:
        """Apply ``change(value) -> value`` to the model's record with compare-and-set, retrying."""
        for _ in range(attempts):
            record = self.read(name)
            try:
                return self.write(name, record, change(_copy(record.value)))
            except Conflict:
                time.sleep(0.05)
        raise Conflict(f"the ledger record of {name} kept changing under {attempts} attempts; retry")

    def record(self, name: str, event: dict) -> dict:
        """Write one decision to the audit trail; return it with its time, model and key."""
        event = {"time": now(), "model": name, **event}
        key = f"{EVENTS_PREFIX}{name}/{event['time'].replace(':', '')}-{uuid.uuid4().hex[:8]}.json"
        self.records.put(key, event)
        return {**event, "key": key}

    def events(self, name: str) -> list[dict]:
        """Every recorded decision of ``name``, oldest first: the audit trail (O(history))."""
        return [self.records.read(k).value for k in self.records.keys(f"{EVENTS_PREFIX}{name}/")]

    # -- locking -------------------------------------------------------------------------
    def acquire(self, name: str, owner: str, ttl_s: float | None = None, wait_s: float = 0.0) -> Lease:
        """Take ``name``'s lease (renewed in the background); raise LockedError if it is held."""
        lease = Lease(self.records, name, owner, **({"ttl_s": ttl_s} if ttl_s else {}))
        return lease.acquire(wait_s=wait_s)


def _copy(value: dict) -> dict:
    import copy

    return copy.deepcopy(value)


def with_event(value: dict, event: dict) -> dict:
    """The record with ``event`` appended to its bounded index of recent decisions."""
    value["events"] = (value.get("events") or [])[-(RECENT_EVENTS - 1):] + [event]
    value["event_count"] = int(value.get("event_count") or 0) + 1
    return value
