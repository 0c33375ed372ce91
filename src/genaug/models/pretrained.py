"""ImageNet weights for the transfer classifier, from wherever this installation keeps them.

Looked for, in order: $GENAUG_WEIGHTS_DIR/<file>, torch hub's checkpoint folder
($TORCH_HOME/hub/checkpoints, where torchvision's own download puts it, and where a
cluster image bakes it in), then the object store (s3://genaug-weights/<file>). The file is
torchvision's published ``resnet18-f37072fd.pth``; the digits are the start of its
sha256, which is checked. Nothing found: the caller trains from scratch and says so.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch

from genaug.services.names import WEIGHTS_BUCKET as BUCKET

RESNET18_FILE = "resnet18-f37072fd.pth"


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


def find_resnet18(store=None) -> tuple[dict | None, str]:
    """(torchvision ResNet-18 ImageNet state dict or None, where it came from or why not)."""
    tried = []
    for path in _candidates(RESNET18_FILE):
        if path.is_file():
            if not _sha_matches(path, RESNET18_FILE):
                tried.append(f"{path} (sha256 does not match; a corrupt or different file)")
                continue
            return torch.load(path, map_location="cpu", weights_only=True), str(path)
        tried.append(f"{path} (missing)")
    if store is not None:
        try:
            if store.exists(BUCKET, RESNET18_FILE):
                with tempfile.TemporaryDirectory() as tmp:
                    local = Path(tmp) / RESNET18_FILE
                    store.get_file(BUCKET, RESNET18_FILE, local)
                    if _sha_matches(local, RESNET18_FILE):
                        return torch.load(local, map_location="cpu", weights_only=True), \
                            f"s3://{BUCKET}/{RESNET18_FILE}"
                    tried.append(f"s3://{BUCKET}/{RESNET18_FILE} (sha256 does not match)")
            else:
                tried.append(f"s3://{BUCKET}/{RESNET18_FILE} (missing)")
        except Exception as err:  # a store that is down must not stop a from-scratch run
            tried.append(f"s3://{BUCKET}/{RESNET18_FILE} ({type(err).__name__})")
    return None, ("no ImageNet weights (" + "; ".join(tried) + f"); to fine-tune, put torchvision's "
                  f"{RESNET18_FILE} in $GENAUG_WEIGHTS_DIR or s3://{BUCKET}/")


def load_imagenet(model, store=None) -> str:
    """Load ImageNet weights into a models.classifiers.Transfer, all but its new head.

    Returns a notice: where the weights came from, or why the model trains from scratch.
    """
    state, origin = find_resnet18(store)
    if state is None:
        return f"transfer classifier trains from scratch: {origin}"
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.backbone.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {"fc.weight", "fc.bias"}:
        raise ValueError(f"{origin} does not fit ResNet-18: missing {missing}, unexpected {unexpected}")
    return f"transfer classifier fine-tunes ImageNet weights from {origin}"
