"""The Triton model repository in object storage.

Layout in the ``genaug-triton`` bucket (Triton reads ``s3://host:port/genaug-triton/models``):
    models/<name>/config.pbtxt               pins the served version
    models/<name>/<version>/model.onnx
    models/<name>/<version>/metadata.json    lineage: MLflow run, pipeline run, metrics, dataset and
                                             its version, data hash
    models/<name>/<version>/labels.txt       a classifier's class names, one per line (the config's
                                             label_filename), so clients get names from Triton

Version folders are written before the config that names them, so an interrupted
promotion leaves at most an orphaned folder that nothing serves.
"""

from __future__ import annotations

import json
import os
import re
import string
from pathlib import Path

from genaug.services.names import TRITON_BUCKET as BUCKET, TRITON_MODELS_PREFIX as PREFIX

MAX_BATCH_SIZE = 256
# A classifier's served files: the FP32 export and its INT8 quantization.
PRECISIONS = ("fp32", "int8")
MAX_QUEUE_DELAY_US = 2000


def templates_dir() -> Path:
    """``$GENAUG_TRITON_TEMPLATES``, else the repository's ``triton_repo/`` folder."""
    default = Path(__file__).resolve().parents[3] / "triton_repo"
    return Path(os.environ.get("GENAUG_TRITON_TEMPLATES", default))


# The side a user dataset's served models have without naming it (a built-in dataset's is its
# own). One side only: a folder of 28x28 images keeps 28 px by default and may be run at 32,
# and two shapes must never share a name.
USER_UNNAMED_SIDE = 32


def served_dataset(spec) -> str:
    """The dataset part of a served model's name: the name, plus ``-<side>px`` when the run
    worked at another side than the dataset's own (a built-in's native one, USER_UNNAMED_SIDE
    for a user's). A model's contract (its input or output shape) never changes under one
    name: clients of fashion_mnist-classifier keep sending 28x28 while a 64 px run serves
    fashion_mnist-64px-classifier beside it, and promotion compares like with like."""
    from genaug.catalog import DATASETS

    native = DATASETS.get(spec.name)
    own = native.shape == tuple(spec.shape) if native else spec.height == USER_UNNAMED_SIDE
    return spec.name if own else f"{spec.name}-{spec.height}px"


def generator_model_name(spec, generator: str) -> str:
    return f"{served_dataset(spec)}-{generator}-generator"


def classifier_model_name(spec, precision: str = "fp32") -> str:
    """``<dataset>-classifier``, or ``<dataset>-classifier-int8`` for its INT8 file
    (genaug.export.quantize), served beside it under the same contract."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return f"{served_dataset(spec)}-classifier" + ("" if precision == "fp32" else f"-{precision}")


def render_config(kind: str, name: str, version: int, spec, noise_dims=(), precision: str = "fp32") -> str:
    """config.pbtxt text for a ``kind`` ('generator' or 'classifier') model of dataset ``spec``.

    noise_dims: a generator's per-image noise dims, [Z] or [K+1, C, H, W].
    precision: a classifier's, one of PRECISIONS (the contract is the same; clients can read it).
    """
    path = templates_dir() / f"{kind}.pbtxt"
    if not path.is_file():
        raise FileNotFoundError(f"Triton config template {path} is missing; set GENAUG_TRITON_TEMPLATES "
                                f"to the folder holding generator.pbtxt and classifier.pbtxt")
    fields = {"name": name, "version": version, "max_batch_size": MAX_BATCH_SIZE,
              "max_queue_delay_us": MAX_QUEUE_DELAY_US, "channels": spec.channels, "height": spec.height,
              "width": spec.width, "num_classes": spec.num_classes, "precision": precision, "noise_dims": ", ".join(str(int(d)) for d in noise_dims) or "0",
              # Commas separate names; none of the catalog's class names contains one.
              "class_names": ",".join(spec.classes).replace('"', "'")}
    return string.Template(path.read_text()).substitute(fields)


def labels_bytes(classes) -> bytes:
    """A classifier's labels.txt: class names in index order, one per line."""
    return "".join(c.replace("\n", " ") + "\n" for c in classes).encode()


def metadata_bytes(metadata: dict) -> bytes:
    """The exact bytes of a version's metadata.json (the ledger records their sha256)."""
    return json.dumps(metadata, indent=2, sort_keys=True).encode()


def pinned_version(config_text: str) -> int | None:
    m = re.search(r"specific:\s*{\s*versions:\s*\[\s*(\d+)\s*\]", config_text)
    return int(m.group(1)) if m else None


class Repository:
    """Reads and writes one model repository through a genaug.services.store.Store."""

    def __init__(self, store, bucket: str = BUCKET, prefix: str = PREFIX):
        self.store, self.bucket, self.prefix = store, bucket, prefix

    def _key(self, name: str, *parts) -> str:
        return "/".join([self.prefix, name, *map(str, parts)])

    def versions(self, name: str) -> list[int]:
        found = set()
        for key in self.store.list(self.bucket, self._key(name) + "/"):
            part = key.split("/")[2] if key.count("/") >= 3 else ""
            if part.isdigit():
                found.add(int(part))
        return sorted(found)

    def next_version(self, name: str) -> int:
        return max(self.versions(name), default=0) + 1

    def config(self, name: str) -> str | None:
        key = self._key(name, "config.pbtxt")
        return self.store.get_bytes(self.bucket, key).decode() if self.store.exists(self.bucket, key) else None

    def served_version(self, name: str) -> int | None:
        text = self.config(name)
        return pinned_version(text) if text else None

    def metadata(self, name: str, version: int) -> dict:
        return self.store.get_json(self.bucket, self._key(name, version, "metadata.json"))

    def download_model(self, name: str, version: int, dest: str | Path) -> Path:
        self.store.get_file(self.bucket, self._key(name, version, "model.onnx"), dest)
        return Path(dest)

    def write_version(self, name: str, version: int, onnx_path: str | Path, metadata: dict,
                      files: dict[str, bytes] | None = None) -> None:
        """The version's folder: model.onnx, then ``files`` (e.g. labels.txt), then metadata.json."""
        self.store.put_file(self.bucket, self._key(name, version, "model.onnx"), onnx_path)
        for base, data in (files or {}).items():
            self.store.put_bytes(self.bucket, self._key(name, version, base), data)
        self.store.put_bytes(self.bucket, self._key(name, version, "metadata.json"), metadata_bytes(metadata))

    def write_config(self, name: str, text: str) -> None:
        # A single PUT: readers see the old config or the new one, never a mix.
        self.store.put_bytes(self.bucket, self._key(name, "config.pbtxt"), text.encode())

    def objects(self, name: str) -> dict[str, dict]:
        """Every object of model ``name``: path relative to its folder -> {"size", "etag"}."""
        prefix = self._key(name) + "/"
        return {key[len(prefix):]: info for key, info in self.store.listing(self.bucket, prefix).items()}

    def read_file(self, name: str, relpath: str) -> bytes:
        """The bytes of one file of the model, e.g. ``config.pbtxt`` or ``3/model.onnx``."""
        return self.store.get_bytes(self.bucket, self._key(name, relpath))

    def remove(self, name: str, relpaths) -> None:
        for rel in relpaths:
            self.store.delete(self.bucket, self._key(name, rel))
