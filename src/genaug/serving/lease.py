"""A lease on one model: mutual exclusion for promotion, rollback and repair.

The lock is one record, ``ledger/locks/<model>.json``, that is never deleted: it is
``{"state": "held", "owner", "token", "expires"}`` or ``{"state": "free"}``. Every change
is a conditional write (genaug.serving.records), so of any number of writers racing for a
free or expired lock exactly one wins, whatever their timing:

- absent: create it with ``If-None-Match: *``;
- free, expired, or held by this same owner: replace it with ``If-Match`` on the ETag read.

The owner is the pipeline run plus the task, so a KFP retry of a task whose pod died takes
its own lock back at once instead of waiting out the TTL. While the holder works a thread
renews the lease (``If-Match`` on its own last write); a renewal that loses, or that cannot
reach S3 before the lease runs out, marks the lease lost, and ``check()`` raises, so the
holder stops before its next change.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import datetime, timezone

from genaug.serving.records import Conflict, Records

LOCK_TTL_S = 300.0       # a holder that died frees the lock after this
LOCK_WAIT_S = 0.0        # by default a second promoter fails at once, naming the holder
# Contention backoff: SeaweedFS serializes conditional PUTs on one key and makes the losers
# wait about a second each (measured with 8 writers, 4.48). A short random pause, then a
# read, lets the writers that would lose see the winner's lock and skip the write.
SENSE_JITTER_S = 0.03


class LockedError(RuntimeError):
    """Another live holder has the lock."""


class LeaseLost(RuntimeError):
    """The lease expired or was taken over; the holder must stop changing anything."""


def lock_key(name: str) -> str:
    return f"ledger/locks/{name}.json"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def holder(records: Records, name: str) -> dict | None:
    """The live holder of ``name``'s lock ({"owner", "since", "expires"}), or None."""
    record = records.read(lock_key(name))
    if record is None or record.value.get("state") != "held" or record.value["expires"] <= time.time():
        return None
    return record.value


class Lease:
    """A held lock; renewed in the background until released."""

    def __init__(self, records: Records, name: str, owner: str, ttl_s: float = LOCK_TTL_S, key: str | None = None,
                 activity: str = "promotion"):
        """key: the lock record (default: the model's, ledger/locks/<name>.json); activity:
        what holding it is for, as errors name it ("promotion", "snapshot")."""
        self.records, self.name, self.owner, self.ttl_s = records, name, owner, ttl_s
        self.key = key or lock_key(name)
        self.activity = activity
        self.token = uuid.uuid4().hex
        self.etag: str | None = None
        self.expires = 0.0
        self.lost: str | None = None
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _value(self, now: float) -> dict:
        return {"state": "held", "owner": self.owner, "token": self.token, "since": _iso(now),
                "expires": now + self.ttl_s, "ttl_s": self.ttl_s}

    # -- taking it -------------------------------------------------------------------------
    def acquire(self, wait_s: float = LOCK_WAIT_S, poll_s: float = 1.0) -> "Lease":
        """Take the lock, waiting up to ``wait_s`` for a live holder; raise LockedError after."""
        deadline = time.monotonic() + wait_s
        while True:
            time.sleep(random.uniform(0.0, SENSE_JITTER_S))
            record = self.records.read(self.key)
            now = time.time()
            current = record.value if record else None
            if (current and current.get("state") == "held" and current["expires"] > now
                    and current.get("owner") != self.owner):
                if time.monotonic() >= deadline:
                    raise LockedError(
                        f"a {self.activity} of {self.name} by {current['owner']} holds the lock until "
                        f"{_iso(current['expires'])}; retry after it ends (a dead holder's lock frees itself "
                        f"after {current.get('ttl_s', self.ttl_s):.0f} s)")
                time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())) + random.uniform(0, 0.1))
                continue
            value = self._value(now)
            try:
                self.etag = self.records.write(self.key, value, record.etag if record else None)
            except Conflict:
                continue  # another writer changed it between our read and write: look again
            self.expires = value["expires"]
            self._start_renewing()
            return self

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            self.renew()

    def renew(self) -> None:
        """Extend the lease by its TTL; mark it lost if another writer changed the lock."""
        with self._guard:
            if self.lost:
                return
            now = time.time()
            value = self._value(now)
            try:
                self.etag = self.records.replace(self.key, value, self.etag)
                self.expires = value["expires"]
            except Conflict:
                self.lost = f"the lock of {self.name} was taken over by another writer"
            except Exception as err:  # S3 unreachable: the lease holds only until it expires
                if now >= self.expires:
                    self.lost = f"could not renew the lease of {self.name} before it expired ({err})"

    # -- using it --------------------------------------------------------------------------
    def check(self) -> None:
        """Raise LeaseLost unless this lease still holds the lock, read afresh from S3."""
        with self._guard:
            if not self.lost:
                record = self.records.read(self.key)
                if record is None or record.etag != self.etag or record.value.get("token") != self.token:
                    self.lost = f"the lock of {self.name} is no longer ours (now: {record.value if record else None})"
                elif time.time() >= self.expires:
                    self.lost = f"the lease of {self.name} expired at {_iso(self.expires)}"
            if self.lost:
                raise LeaseLost(f"{self.lost}; this {self.activity} stopped before changing anything more")

    def release(self) -> None:
        """Stop renewing and free the lock if it is still ours (a lost lease frees nothing)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._guard:
            if self.lost or self.etag is None:
                return
            try:
                self.records.replace(self.key, {"state": "free", "freed_by": self.owner, "at": _iso(time.time())},
                                     self.etag)
            except Conflict:
                pass  # taken over after expiry: nothing of ours to free
            self.etag = None

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
