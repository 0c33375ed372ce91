"""ImageNet weights for the classifiers that fine-tune (``transfer``, ``efficientnet_b0``),
from wherever this installation keeps them.

Looked for, in order: $GENAUG_WEIGHTS_DIR/<file>, torch hub's checkpoint folder
($TORCH_HOME/hub/checkpoints, where torchvision's own download puts it, and where a
cluster image bakes it in), then the object store (s3://genaug-weights/<file>). Each file is
torchvision's published one (WEIGHTS); the hex digits after its last ``-`` are the start of
its sha256, which is checked before the file is loaded. Nothing found: the caller trains
from scratch and says so.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from genaug.services.names import WEIGHTS_BUCKET as BUCKET


@dataclass(frozen=True)
class Weights:
    """torchvision's published ImageNet file of one network, and the prefix of the state
    dict's keys that belong to its 1000-class head (replaced, so never loaded)."""

    file: str
    head: str


# torchvision builder name (models.classifiers.ImageNetBackbone.ARCH) -> its weights file.
WEIGHTS = {
    "resnet18": Weights("resnet18-f37072fd.pth", "fc."),
    "efficientnet_b0": Weights("efficientnet_b0_rwightman-7f5810bc.pth", "classifier.1."),
}


def _candidates(name: str) -> list[Path]:
    paths = []
    if os.environ.get("GENAUG_WEIGHTS_DIR"):
        paths.append(Path(os.environ["GENAUG_WEIGHTS_DIR"]) / name)
    paths.append(Path(torch.hub.get_dir()) / "checkpoints" / name)
    return paths


def _sha_matches(path: Path, name: str) -> bool:
    prefix = name.rsplit("-", 1)[-1].split(".")[0]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest().startswith(prefix)


def find_weights(name: str, store=None) -> tuple[dict | None, str]:
    """(the state dict in torchvision's file ``name``, or None; where it came from, or why not)."""
    tried = []
    for path in _candidates(name):
        if path.is_file():
            if not _sha_matches(path, name):
                tried.append(f"{path} (sha256 does not match; a corrupt or different file)")
                continue
            return torch.load(path, map_location="cpu", weights_only=True), str(path)
        tried.append(f"{path} (missing)")
    if store is not None:
        try:
            if store.exists(BUCKET, name):
                with tempfile.TemporaryDirectory() as tmp:
                    local = Path(tmp) / name
                    store.get_file(BUCKET, name, local)
                    if _sha_matches(local, name):
                        return torch.load(local, map_location="cpu", weights_only=True), f"s3://{BUCKET}/{name}"
                    tried.append(f"s3://{BUCKET}/{name} (sha256 does not match)")
            else:
                tried.append(f"s3://{BUCKET}/{name} (missing)")
        except Exception as err:  # a store that is down must not stop a from-scratch run
            tried.append(f"s3://{BUCKET}/{name} ({type(err).__name__})")
    return None, ("no ImageNet weights (" + "; ".join(tried) + f"); to fine-tune, put torchvision's "
                  f"{name} in $GENAUG_WEIGHTS_DIR or s3://{BUCKET}/")


def load_imagenet(model, label: str, store=None) -> str:
    """Load ImageNet weights into a models.classifiers.ImageNetBackbone, all but its new head.

    label: the classifier's catalog name, for the notice (``transfer``, ``efficientnet_b0``).
    Returns a notice: where the weights came from, or why the model trains from scratch.
    """
    weights = WEIGHTS[model.ARCH]
    state, origin = find_weights(weights.file, store)
    if state is None:
        return f"{label} classifier trains from scratch: {origin}"
    state = {k: v for k, v in state.items() if not k.startswith(weights.head)}
    missing, unexpected = model.backbone.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {weights.head + "weight", weights.head + "bias"}:
        raise ValueError(f"{origin} does not fit {model.ARCH}: missing {missing}, unexpected {unexpected}")
    return f"{label} classifier fine-tunes ImageNet weights from {origin}"
