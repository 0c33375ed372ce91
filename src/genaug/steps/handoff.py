"""Where a TrainJob's nodes and the pipeline's task meet: ``trainjobs/<job>/`` in the
checkpoints bucket.

The pipeline's task stages the prepared dataset there (every node reads it; KFP's pipeline
root may be a store the nodes have no key to); rank 0 publishes the trained generator, its
sample page and its metadata there, ``result.json`` last, which records the others'
sha256. The task takes them back only once result.json exists, and checks each file
against it, so it never hands on a half-written or a stranger's generator. `genaug gc`
sweeps these objects with the other checkpoints no kept run names.
"""

from __future__ import annotations

import json
from pathlib import Path

from genaug.services.names import CHECKPOINTS_BUCKET as BUCKET

ROOT = "trainjobs"
DATA, MODEL, SAMPLES, RESULT = "data.npz", "model.pt", "samples.html", "result.json"


class HandoffError(RuntimeError):
    """The TrainJob finished but left no complete result; the message says where to look."""


def prefix(job: str) -> str:
    return f"{ROOT}/{job}"


def stage_data(store, where: str, path: str | Path) -> str:
    """Upload the prepared dataset for the nodes; return its sha256."""
    return store.put_file(BUCKET, f"{where}/{DATA}", path)


def fetch_data(store, where: str, dest: str | Path, sha256: str) -> None:
    """A node's copy of the staged dataset, checked against the task's hash."""
    store.get_file(BUCKET, f"{where}/{DATA}", dest, expected_sha256=sha256 or None)


def publish(store, where: str, model: str | Path, samples: str | Path, meta: dict, data_sha256: str) -> None:
    """Rank 0's outputs; result.json last, naming the others' hashes and the dataset's."""
    result = {"meta": meta, "data_sha256": data_sha256,
              "model_sha256": store.put_file(BUCKET, f"{where}/{MODEL}", model)}
    if Path(samples).is_file():
        result["samples_sha256"] = store.put_file(BUCKET, f"{where}/{SAMPLES}", samples)
    store.put_json(BUCKET, f"{where}/{RESULT}", result)


def collect(store, where: str, model: str | Path, samples: str | Path, data_sha256: str) -> dict:
    """Download rank 0's outputs to ``model`` and ``samples``; return the training metadata.
    A result of another dataset than the one this task staged is refused."""
    if not store.exists(BUCKET, f"{where}/{RESULT}"):
        raise HandoffError(f"the TrainJob completed but s3://{BUCKET}/{where}/{RESULT} does not exist: rank 0 "
                           "published no generator; read its log (kubectl logs) for why")
    result = json.loads(store.get_bytes(BUCKET, f"{where}/{RESULT}"))
    if result.get("data_sha256") != data_sha256:
        raise HandoffError(f"s3://{BUCKET}/{where}/{RESULT} is of a generator trained on dataset "
                           f"{result.get('data_sha256')}, not on the one this task staged ({data_sha256}); "
                           "rerun the run")
    store.get_file(BUCKET, f"{where}/{MODEL}", model, expected_sha256=result["model_sha256"])
    if result.get("samples_sha256") and samples:
        store.get_file(BUCKET, f"{where}/{SAMPLES}", samples, expected_sha256=result["samples_sha256"])
    return result["meta"]


def drop_data(store, where: str) -> None:
    """The staged dataset, once the generator is back (a copy of the task's input)."""
    store.delete(BUCKET, f"{where}/{DATA}")
