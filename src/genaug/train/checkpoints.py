"""Training checkpoints in object storage, keyed by everything that determines the run.

The key is a hash of (data hash, generator, profile, seed, configuration), so a rerun of
the same training finds the state a killed run left behind, and a changed configuration
never resumes from a stranger's state. Each save replaces ``<key>/latest.pt`` atomically.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

from genaug.services.names import CHECKPOINTS_BUCKET as BUCKET

# The MLflow param under which a training run records the checkpoint's s3:// URI; retention
# (genaug gc) keeps the checkpoints that kept runs name.
CHECKPOINT_PARAM = "checkpoint"


def run_key(**fields) -> str:
    """A short stable hash of ``fields`` (JSON-serialisable values)."""
    text = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Checkpointer:
    """Saves and restores one training run's state dict every ``every`` generator steps."""

    def __init__(self, store, key: str, every: int, bucket: str = BUCKET):
        if every < 1:
            raise ValueError(f"checkpoint interval {every} must be >= 1 generator step")
        self.store, self.key, self.every, self.bucket = store, key, every, bucket
        self.resumed_from: int | None = None  # the step a load() resumed at

    @property
    def object_key(self) -> str:
        return f"{self.key}/latest.pt"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.object_key}"

    def load(self) -> dict | None:
        if not self.store.exists(self.bucket, self.object_key):
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "latest.pt"
            self.store.get_file(self.bucket, self.object_key, path)
            state = torch.load(path, map_location="cpu", weights_only=True)
        print(f"[genaug] resuming from step {state['step']} ({self.uri})", file=sys.stderr, flush=True)
        self.resumed_from = int(state["step"])
        return state

    def save(self, state: dict) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "latest.pt"
            torch.save(state, path)
            self.store.put_file(self.bucket, self.object_key, path, metadata={"step": str(state["step"])})


def rng_state(device: torch.device) -> dict:
    """The global RNG state that training draws from (CPU, and CUDA on a GPU), for save()."""
    return {"rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore(state: dict, parts: dict, device: torch.device) -> None:
    """Load each of ``parts`` (name -> object with load_state_dict) from ``state[name]``,
    and put the global RNG back where the saved run left it."""
    for name, part in parts.items():
        part.load_state_dict(state[name])
    torch.set_rng_state(state["rng_cpu"])
    if device.type == "cuda" and state.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(state["rng_cuda"], device)
