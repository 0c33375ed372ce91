"""Ledger records for models that tests upload by hand, as promotion would write them."""

from genaug.services.names import TRITON_BUCKET
from genaug.services.store import promotion_store
from genaug.serving.integrity import manifest
from genaug.serving.ledger import Ledger, empty_record
from genaug.serving.repository import Repository


def approve(name: str, version: int = 1, files: dict | None = None) -> dict:
    """Make ``name`` v``version``, as uploaded, the ledger's champion with its files' hashes
    (``files`` given: recorded as they are, e.g. for a model whose files do not exist)."""
    store = promotion_store()
    ledger, repo = Ledger(store), Repository(store)
    text = repo.config(name) or ""
    value = {**empty_record(name), "kind": "classifier", "champion": version, "history": [version],
             "next_version": version + 1,
             "versions": {str(version): {"files": files if files is not None else manifest(repo, name, version, text),
                                         "config": text, "mlflow_version": None}}}
    ledger.write(name, ledger.read(name), value)
    return value


def forget(name: str) -> None:
    """Remove a test-only model's ledger record, so later passes of the session skip it."""
    promotion_store().delete(TRITON_BUCKET, f"ledger/models/{name}.json")
