"""The promotion ledger in object storage: who serves now, and every decision ever made.

    ledger/champions.json                 {"models": {name: {"version", "previous", "history", ...}}}
    ledger/events/<utc time>-<name>-<id>.json    one per decision, with its reasons
    ledger/locks/<name>.json              held while a promotion of <name> runs

``genaug.stack`` reads champions.json to reload the champions after a restart.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

BUCKET = "genaug-triton"
CHAMPIONS = "ledger/champions.json"
LOCK_TTL_S = 900  # a promotion that died leaves a lock that expires after this


class LockedError(RuntimeError):
    """Another promotion of the same model is running."""


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Ledger:
    def __init__(self, store, bucket: str = BUCKET):
        self.store, self.bucket = store, bucket

    def champions(self) -> dict:
        return self.store.get_json(self.bucket, CHAMPIONS, default={"models": {}})

    def champion(self, name: str) -> dict | None:
        return self.champions()["models"].get(name)

    def set_champion(self, name: str, entry: dict | None) -> None:
        data = self.champions()
        if entry is None:
            data["models"].pop(name, None)
        else:
            data["models"][name] = entry
        self.store.put_json(self.bucket, CHAMPIONS, data)

    def record(self, name: str, event: dict) -> dict:
        event = {"time": now(), "model": name, **event}
        key = f"ledger/events/{event['time'].replace(':', '')}-{name}-{uuid.uuid4().hex[:8]}.json"
        self.store.put_json(self.bucket, key, event)
        return event

    def events(self, name: str | None = None) -> list[dict]:
        keys = sorted(self.store.list(self.bucket, "ledger/events/"))
        out = [self.store.get_json(self.bucket, k) for k in keys]
        return [e for e in out if name is None or e["model"] == name]

    # -- locking -----------------------------------------------------------------------
    def acquire(self, name: str, owner: str) -> None:
        """Take the promotion lock of ``name``; raise LockedError if someone else holds it.

        S3 has no compare-and-swap here, so the lock is written, then read back after a
        pause: of two writers racing, only the one whose write stuck proceeds.
        """
        key = f"ledger/locks/{name}.json"
        if self.store.exists(self.bucket, key):
            held = self.store.get_json(self.bucket, key)
            if held["owner"] != owner and held["expires"] > time.time():
                raise LockedError(f"a promotion of {name} by {held['owner']} has held the lock since "
                                  f"{held['since']}; retry after it ends, or delete s3://{self.bucket}/{key} "
                                  f"if that run is dead")
        self.store.put_json(self.bucket, key, {"owner": owner, "since": now(), "expires": time.time() + LOCK_TTL_S})
        time.sleep(0.3)
        if self.store.get_json(self.bucket, key)["owner"] != owner:
            raise LockedError(f"another promotion of {name} took the lock at the same moment; retry")

    def release(self, name: str, owner: str) -> None:
        key = f"ledger/locks/{name}.json"
        if self.store.exists(self.bucket, key) and self.store.get_json(self.bucket, key)["owner"] == owner:
            self.store.delete(self.bucket, key)
