"""Triton over gRPC: throughput and latency of a classifier and a GAN generator at 1, 4 and
16 concurrent clients, with and without dynamic batching; and the classifier's INT8 file
(genaug.export.quantize) against its FP32 one on the same Triton.

    python -m bench.serving [--seconds 5]

One request carries one image (classifier) or one label and its noise (generator), as an
interactive client sends them. Each model is served twice from the same ONNX file, once
with genaug's config (dynamic batching) and once with its dynamic_batching line removed.
On this machine Triton is the CPU build bundled with nvidia-pytriton, with onnxruntime
through a python-backend adapter: the figures test integration and show the batching
effect, not a GPU server's speed. The ratio is requests/s with batching over without, for
the classifier at 16 clients.

FP32 against INT8: both files served with genaug's config (dynamic batching), one image and
64 images a request, at 1 and 16 clients, and both in-process in onnxruntime at batch 64
(the kernels' own cost, without gRPC). The INT8 file is quantized from the FP32 one,
calibrated on 64 random images: a random network's accuracy says nothing, but its cost is
that of a trained one. Last, every classifier (``--classifiers``) FP32 against INT8 in-process
at batch 16 with its file sizes: where INT8 pays depends on the network, not on Triton.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from bench.harness import Report, interleaved
from bench.stack import private_stack
from genaug import catalog
from genaug.export.onnx import export_classifier, export_generator
from genaug.export.quantize import quantize_classifier
from genaug.generators import GanSampler
from genaug.models import CLASSIFIER_ARCHS, build_classifier
from genaug.models.classifiers import CNN
from genaug.models.gan import DCGANGenerator
from genaug.serving.repository import Repository, labels_bytes, render_config

CONCURRENCY = (1, 4, 16)
# FP32 against INT8: clients, and images per request.
PRECISION_LOADS = ((1, 1), (16, 1), (1, 64))
BY_CLASSIFIER_BATCH = 16


def _models(folder: Path, spec) -> dict:
    """ONNX files of a quick-profile-sized CNN classifier and DCGAN generator (random weights:
    serving cost does not depend on them)."""
    torch.manual_seed(0)
    shape = (spec.channels, spec.height, spec.width)
    clf = export_classifier(CNN(shape, spec.num_classes, width=32), shape, folder / "classifier.onnx")
    gen = GanSampler(DCGANGenerator(shape, spec.num_classes, 64, 32), 64)
    generator = export_generator(gen, spec.num_classes, folder / "generator.onnx")
    return {"classifier": (clf["path"], ()), "generator": (generator["path"], tuple(generator["noise_dims"]))}


def _int8(fp32: str, folder: Path, spec, name: str = "classifier_int8.onnx") -> str:
    images = np.random.default_rng(1).integers(0, 256, (64, spec.channels, spec.height, spec.width), dtype=np.uint8)
    return quantize_classifier(fp32, folder / name, images)["path"]


def _precisions(report: Report, store, triton, url: str, files: dict, spec, seconds: float) -> dict:
    """FP32 against INT8 over Triton (PRECISION_LOADS) and in-process; {(precision, clients,
    images): figures}."""
    rng = np.random.default_rng(0)
    results = {}
    names = {p: _publish(store, triton, "classifier", path, (), spec, True, suffix=p) for p, path in files.items()}
    for clients, n in PRECISION_LOADS:
        inputs = {"images": rng.integers(0, 256, (n, spec.channels, spec.height, spec.width), dtype=np.uint8)}
        for precision, name in names.items():
            r = _load(url, name, inputs, "logits", clients, seconds)
            r["images_per_s"] = r["rps"] * n
            results[(precision, clients, n)] = r
            label = f"classifier {precision}, {clients:>2} clients x {n:>2} images"
            report.figure(f"{label}: throughput", r["images_per_s"], "images/s")
            report.figure(f"{label}: p50 latency", r["p50_ms"], "ms")
    local = _in_process(files, {"images": rng.integers(0, 256, (64, spec.channels, spec.height, spec.width),
                                                       dtype=np.uint8)})
    for precision, sec in local.items():
        report.figure(f"onnxruntime in-process, batch 64, {precision}", 1000 * sec, "ms")
    report.figure("INT8 speed-up in-process (FP32 ms / INT8 ms), batch 64", local["fp32"] / local["int8"], "x")
    for clients, n in PRECISION_LOADS:
        report.figure(f"INT8 / FP32 throughput over Triton, {clients} clients x {n} images",
                      results[("int8", clients, n)]["rps"] / results[("fp32", clients, n)]["rps"], "x")
    return results


def _in_process(files: dict, batch: dict) -> dict:
    """Median seconds of one onnxruntime call on ``batch`` for each file ({precision: path}),
    timed in turns, about a second a side."""
    from genaug.onnx_runtime import CpuSession

    sessions = {p: CpuSession(path) for p, path in files.items()}
    first = next(iter(sessions.values()))
    first.run(batch)
    t0 = time.perf_counter()
    first.run(batch)
    # Enough calls for about a second a side: a 0.1 ms MLP call needs thousands to be seen.
    repeats = int(min(2000, max(10, 1.0 / (time.perf_counter() - t0))))
    return interleaved({p: (lambda s=s: s.run(batch)) for p, s in sessions.items()}, warmup=2, repeats=repeats)


def _precision_by_classifier(report: Report, folder: Path, spec, classifiers: list[str]) -> dict:
    """Each classifier's FP32 file against its INT8 one in onnxruntime, in-process at batch
    BY_CLASSIFIER_BATCH (random weights, calibrated as _int8); {classifier: FP32 s / INT8 s}."""
    shape = (spec.channels, spec.height, spec.width)
    batch = {"images": np.random.default_rng(2).integers(0, 256, (BY_CLASSIFIER_BATCH, *shape), dtype=np.uint8)}
    speedups = {}
    for arch in classifiers:
        torch.manual_seed(0)
        net = build_classifier(arch, shape=shape, num_classes=spec.num_classes).eval()
        fp32 = export_classifier(net, shape, folder / f"{arch}.onnx")["path"]
        files = {"fp32": fp32, "int8": _int8(fp32, folder, spec, f"{arch}_int8.onnx")}
        local = _in_process(files, batch)
        for precision, path in files.items():
            report.figure(f"{arch} {precision}, batch {BY_CLASSIFIER_BATCH} in-process", 1000 * local[precision], "ms")
            report.figure(f"{arch} {precision} file", Path(path).stat().st_size / 1e6, "MB")
        speedups[arch] = local["fp32"] / local["int8"]
        report.figure(f"{arch} INT8 speed-up in-process (FP32 ms / INT8 ms)", speedups[arch], "x")
    return speedups


def _publish(store, triton, kind: str, onnx: str, noise_dims, spec, batching: bool, suffix: str = "") -> str:
    name = f"bench-{kind}-{'batched' if batching else 'unbatched'}" + (f"-{suffix}" if suffix else "")
    config = render_config(kind, name, 1, spec, noise_dims)
    if not batching:
        config = "\n".join(line for line in config.splitlines() if not line.startswith("dynamic_batching"))
    repo = Repository(store)
    # A classifier's config names its labels file (label_filename): without it Triton refuses the model.
    files = {"labels.txt": labels_bytes(spec.classes)} if kind == "classifier" else {}
    repo.write_version(name, 1, onnx, {"benchmark": True}, files)
    repo.write_config(name, config)
    triton.load(name)
    return name


def _load(url: str, name: str, inputs: dict, output: str, clients: int, seconds: float) -> dict:
    """Requests/s and latency percentiles (ms) of ``clients`` threads sending for ``seconds``."""
    import tritonclient.grpc as grpcclient

    latencies: list[float] = []
    errors: list[Exception] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client():
        with grpcclient.InferenceServerClient(url) as triton:
            tensors = []
            for key, value in inputs.items():
                t = grpcclient.InferInput(key, list(value.shape), {np.uint8: "UINT8", np.int64: "INT64",
                                                                   np.float32: "FP32"}[value.dtype.type])
                t.set_data_from_numpy(value)
                tensors.append(t)
            mine = []
            try:
                while time.perf_counter() < stop:
                    t0 = time.perf_counter()
                    triton.infer(name, tensors, outputs=[grpcclient.InferRequestedOutput(output)], client_timeout=60)
                    mine.append(time.perf_counter() - t0)
            except Exception as err:  # reported below, for the whole measurement
                with lock:
                    errors.append(err)
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} of {clients} clients of {name} failed: {errors[0]}")
    ms = sorted(1000 * x for x in latencies)
    return {"rps": len(ms) / wall, "p50_ms": statistics.median(ms), "p95_ms": ms[int(0.95 * (len(ms) - 1))]}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--classifiers", default=",".join(CLASSIFIER_ARCHS),
                   help="comma-separated: the classifiers whose FP32 and INT8 files are timed in-process")
    args = p.parse_args(argv)
    spec = catalog.dataset(args.dataset)
    try:
        classifiers = [catalog.choose("classifier", c, CLASSIFIER_ARCHS) for c in args.classifiers.split(",") if c]
    except catalog.UnknownName as err:
        p.error(f"--classifiers: {err}")
    report = Report("serving", f"Triton gRPC, {spec.name}, one image per request, local CPU Triton (integration "
                               "figures)")
    results = {}
    with private_stack() as (tmp, env):
        os.environ.update(env)
        from genaug.services.triton import Triton
        from genaug.services.store import promotion_store

        # Publishing to Triton's repository takes the promote identity (admin.env).
        store, triton = promotion_store(), Triton(env["GENAUG_TRITON_GRPC"], env["GENAUG_TRITON_ADMIN_KEY"])
        with tempfile.TemporaryDirectory() as folder:
            models = _models(Path(folder), spec)
            rng = np.random.default_rng(0)
            for kind, (onnx, noise_dims) in models.items():
                inputs = ({"images": rng.integers(0, 256, (1, spec.channels, spec.height, spec.width), dtype=np.uint8)}
                          if kind == "classifier" else
                          {"labels": np.zeros((1, 1), np.int64), "noise": rng.standard_normal((1, *noise_dims)).astype(np.float32)})
                output = "logits" if kind == "classifier" else "images"
                for batching in (True, False):
                    name = _publish(store, triton, kind, onnx, noise_dims, spec, batching)
                    for clients in CONCURRENCY:
                        r = _load(env["GENAUG_TRITON_GRPC"], name, inputs, output, clients, args.seconds)
                        results[(kind, batching, clients)] = r
                        label = f"{kind}, {'dynamic batching' if batching else 'no batching'}, {clients:>2} clients"
                        report.figure(f"{label}: throughput", r["rps"], "req/s")
                        report.figure(f"{label}: p50 latency", r["p50_ms"], "ms")
                        report.figure(f"{label}: p95 latency", r["p95_ms"], "ms")
            fp32 = models["classifier"][0]
            _precisions(report, store, triton, env["GENAUG_TRITON_GRPC"],
                        {"fp32": fp32, "int8": _int8(fp32, Path(folder), spec)}, spec, args.seconds)
            _precision_by_classifier(report, Path(folder), spec, classifiers)
    ratio = results[("classifier", True, 16)]["rps"] / results[("classifier", False, 16)]["rps"]
    return report.done("classifier req/s at 16 clients, dynamic batching / none", ratio,
                       "informational (CPU Triton)", True)


if __name__ == "__main__":
    main()
