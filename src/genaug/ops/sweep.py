"""Carry out a retention plan (genaug.ops.plan): the only module of ``genaug gc`` that deletes.

Order matters for the invariant under concurrent work:
1. Triton's repository is pruned model by model under the model's lease, by the promotion's
   own code (genaug.serving.retention), which recomputes what it keeps from the ledger it
   reads under that lease;
2. a registered version is deleted only after its aliases are read again, just before;
3. runs are marked deleted, then purged with ``mlflow gc`` (metadata and artifacts);
4. objects and outputs, which nothing that is kept references.
A failure of one deletion is reported and the others go on; nothing is half-deleted that
a kept thing reads.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections import Counter
from pathlib import Path

from genaug.ops.plan import Plan
from genaug.services.names import TRITON_BUCKET
from genaug.services.store import Store
from genaug.serving.lease import LockedError
from genaug.serving.ledger import Ledger
from genaug.serving.repository import Repository
from genaug.serving import retention

BACKEND_URI_ENV = "GENAUG_MLFLOW_BACKEND_URI"  # the tracking server's database, for `mlflow gc`


def backend_store_uri() -> str | None:
    """MLflow's database: GENAUG_MLFLOW_BACKEND_URI (a cluster's PostgreSQL; from a Secret),
    else the local stack's SQLite file, else None."""
    if os.environ.get(BACKEND_URI_ENV):
        return os.environ[BACKEND_URI_ENV]
    from genaug.ops.local_stack import mlflow_db
    from genaug.services.endpoints import stack_env_path

    db = mlflow_db(stack_env_path().parent)
    return f"sqlite:///{db}" if db.is_file() else None


class Sweep:
    """Applies one plan; ``done`` and ``failed`` count deletions per category."""

    def __init__(self, store: Store, promote: Store, outputs_store: Store | None = None, log=print):
        self.store, self.promote, self.outputs_store, self.log = store, promote, outputs_store or store, log
        self.done, self.freed, self.failed = Counter(), Counter(), Counter()
        self.owner = f"gc-{socket.gethostname()}-{os.getpid()}"

    def _did(self, category: str, size: int = 0) -> None:
        self.done[category] += 1
        self.freed[category] += size

    def _fail(self, category: str, what: str, err: Exception) -> None:
        self.failed[category] += 1
        self.log(f"[genaug gc] could not delete {what}: {err}", file=sys.stderr)

    def apply(self, plan: Plan) -> dict:
        groups = plan.by_category()
        self.triton({d.handle[1] for d in groups["triton"]}, plan.policy.keep_versions)
        self.versions([d.handle[1:] for d in groups["registry"]])
        self.runs([d.handle[1] for d in groups["runs"]])
        for category in ("checkpoints", "snapshots", "dataset-objects", "staging", "outputs"):
            for d in groups[category]:
                try:
                    self.remove(d.handle)
                    self._did(category, d.size)
                except Exception as err:  # reported; the others go on
                    self._fail(category, d.target, err)
        return {c: {"deleted": self.done[c], "bytes": self.freed[c], "failed": self.failed[c]}
                for c in groups}

    def triton(self, models: set[str], keep_others: int) -> None:
        ledger, repo = Ledger(self.promote), Repository(self.promote)
        for name in sorted(models):
            try:
                lease = ledger.acquire(name, self.owner)
            except LockedError as err:
                self._fail("triton", name, err)  # a promotion is running: the next gc prunes it
                continue
            try:
                before = repo.objects(name)
                for rel in retention.prune(name, ledger, repo, keep_others):
                    self._did("triton", int(before.get(rel, {}).get("size", 0)))
            except Exception as err:
                self._fail("triton", name, err)
            finally:
                lease.release()

    def versions(self, versions: list[tuple[str, str]]) -> None:
        from genaug.services import tracking

        client = tracking.client()
        for model, version in versions:
            try:
                with tracking.as_promote(f"delete version {version} of model {model!r}"):
                    if client.get_model_version(model, version).aliases:
                        continue  # an alias moved onto it since the plan was made
                    client.delete_model_version(model, version)
                self._did("registry")
            except Exception as err:
                self._fail("registry", f"{model} version {version}", err)

    def runs(self, run_ids: list[str]) -> None:
        """Mark the runs deleted, then purge them (metadata and artifacts) with ``mlflow gc``."""
        if not run_ids:
            return
        from genaug.services import tracking

        client, marked = tracking.client(), []
        for run_id in run_ids:
            try:
                with tracking.as_promote(f"delete run {run_id}"):
                    client.delete_run(run_id)
                marked.append(run_id)
            except Exception as err:
                self._fail("runs", f"run {run_id}", err)
        uri = backend_store_uri()
        if not uri:
            self.log(f"[genaug gc] {len(marked)} run(s) marked deleted; set {BACKEND_URI_ENV} to MLflow's database "
                     "to purge them and their artifacts", file=sys.stderr)
        elif marked:
            purge(uri, marked)
        for _ in marked:
            self._did("runs")

    def remove(self, handle: tuple) -> None:
        kind = handle[0]
        if kind == "object":
            _, bucket, key = handle
            writer = self.promote if bucket == TRITON_BUCKET else self.store  # only promote writes Triton's
            writer.delete(bucket, key)
        elif kind == "output":
            location = handle[1]
            if location.startswith("s3://"):
                bucket, _, key = location[len("s3://"):].partition("/")
                self.outputs_store.delete(bucket, key)
            elif Path(location).is_dir():
                shutil.rmtree(location)
            else:
                Path(location).unlink(missing_ok=True)
        else:
            raise ValueError(f"unknown deletion {handle!r}")


def purge(backend_uri: str, run_ids: list[str]) -> None:
    """``mlflow gc`` for ``run_ids``, in this process: the database URI may hold a password,
    which must not appear on a command line. MLflow's artifacts are deleted through the
    tracking server, which proxies its bucket (MLFLOW_TRACKING_URI)."""
    from mlflow.cli import gc

    from genaug.services import tracking

    with tracking.as_promote("purge deleted runs"):
        gc.main(["--backend-store-uri", backend_uri, "--run-ids", ",".join(run_ids),
                 "--tracking-uri", tracking.tracking_uri()], standalone_mode=False)
