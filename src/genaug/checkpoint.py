"""Model files that steps hand each other: architecture name, its config, weights, meta.

A checkpoint rebuilds its network without the code that trained it: ``load`` looks the
architecture up in genaug.models and loads the weights with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genaug import models
from genaug.atomic import atomic_path
from genaug.data.imageset import ArtifactError

_BUILDERS = {"generator": models.build_generator, "classifier": models.build_classifier}


def save(path: str | Path, kind: str, arch: str, config: dict, model: torch.nn.Module, meta: dict) -> None:
    """Write ``model``'s weights (moved to the CPU, contiguous) with what rebuilds it."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"kind": kind, "arch": arch, "config": config, "state_dict": state, "meta": meta}, tmp)


def load(path: str | Path, kind: str) -> tuple[torch.nn.Module, dict]:
    """(network with weights loaded, in eval mode, on the CPU; the checkpoint dict)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{kind} checkpoint not found at {path}; rerun the step that trains it")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError...
        # torch's own message runs to paragraphs and suggests weights_only=False, which
        # would execute whatever the file holds; keep its first line only.
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise ArtifactError(f"{kind} checkpoint at {path} is corrupt ({type(err).__name__}: {first}); "
                            f"delete it and rerun the step that trains it") from err
    if not isinstance(ckpt, dict) or ckpt.get("kind") != kind:
        found = ckpt.get("kind") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ArtifactError(f"{path} holds a {found!r}, not a {kind} checkpoint; check the step wiring")
    config = dict(ckpt["config"])
    config["shape"] = tuple(config["shape"])
    net = _BUILDERS[kind](ckpt["arch"], **config)
    try:
        net.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:  # missing, unexpected or mis-shaped weights
        raise ArtifactError(f"{kind} checkpoint at {path} does not fit this version's {ckpt['arch']} layout "
                            f"({str(err).splitlines()[0][:200]}); it was written by another version of genaug: "
                            f"rerun the step that trains it") from err
    return net.eval(), ckpt
