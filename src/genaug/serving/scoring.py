"""Gate metrics and serving probes, measured on ONNX files with onnxruntime.

Candidate and champion are both scored here, by the same code on the same current data,
so the comparison never crosses data versions or frameworks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# How far a served model may be from its reference: ONNX against PyTorch at export, Triton
# against onnxruntime once served.
CLASSIFIER_TOLERANCE = 1e-3  # logits
GENERATOR_TOLERANCE = 1.0    # uint8 levels: rounding at .5 may flip one level
# Label fidelity: generated images per class that the real-data classifier judges.
FIDELITY_PER_CLASS = 100
NOISE_SEED = 1234


def _session(path: Path):
    # Its thread count follows the task's share: the generator's gate samples 2 x 1000 images
    # beside synthesis, which ORT's default of one thread per core slowed by a third.
    from genaug.onnx_runtime import CpuSession

    return CpuSession(str(path))


def onnx_logits(path: Path, images: np.ndarray, batch: int = 500) -> np.ndarray:
    """images uint8 [N, C, H, W] -> logits float32 [N, K] from a classifier ONNX file."""
    sess = _session(path)
    return np.concatenate([sess.run({"images": images[i:i + batch]})[0]
                           for i in range(0, len(images), batch)])


def noise_dims(path: Path) -> list[int]:
    """The per-image dims of a generator ONNX file's ``noise`` input [B, *dims]: [Z] for a
    GAN, [K+1, C, H, W] for a diffusion sampler."""
    import onnx

    # The graph's declared inputs, read without building a session (a second of graph
    # optimization for an unrolled diffusion sampler).
    graph = onnx.load(str(path), load_external_data=False).graph
    (noise,) = [i for i in graph.input if i.name == "noise"]
    return [int(d.dim_value) for d in noise.type.tensor_type.shape.dim[1:]]


def standard_noise(dims, n: int, seed: int = NOISE_SEED) -> np.ndarray:
    """float32 [n, *dims] standard normal noise from numpy's generator seeded with ``seed``."""
    return np.random.default_rng(seed).standard_normal((n, *dims)).astype(np.float32)


def generator_inputs(path: Path, labels: np.ndarray, seed: int = NOISE_SEED) -> dict[str, np.ndarray]:
    """Fixed-seed contract inputs for a generator ONNX file: labels int64 [N], noise [N, *dims]."""
    return {"labels": labels.astype(np.int64), "noise": standard_noise(noise_dims(path), len(labels), seed)}


def onnx_generate(path: Path, labels: np.ndarray, seed: int = NOISE_SEED, batch: int = 100) -> np.ndarray:
    """uint8 [N, C, H, W] images for ``labels`` from a generator ONNX file."""
    sess, inputs = _session(path), generator_inputs(path, labels, seed)
    return np.concatenate([sess.run({k: v[i:i + batch] for k, v in inputs.items()})[0]
                           for i in range(0, len(labels), batch)])


def classifier_score(x_test: np.ndarray, y_test: np.ndarray, metric: str = "accuracy", num_classes: int = 0):
    """Gate metric for classifiers: ``metric`` (accuracy, macro_f1 or balanced_accuracy,
    genaug.metrics.classification) of an ONNX file on the test split."""
    from genaug.metrics.classification import report

    names = [str(k) for k in range(num_classes or int(y_test.max()) + 1)]

    def score(path: Path) -> float:
        return float(report(y_test, onnx_logits(path, x_test).argmax(1), names)[metric])

    return score


def label_fidelity(judge, num_classes: int):
    """Gate metric for generators: the fraction of generated images that ``judge`` (a
    function uint8 images -> logits, a classifier trained on real data) assigns to the
    label they were generated for."""
    labels = np.repeat(np.arange(num_classes), FIDELITY_PER_CLASS)

    def score(path: Path) -> float:
        return float((judge(onnx_generate(path, labels)).argmax(1) == labels).mean())

    return score


def classifier_probe(images: np.ndarray):
    """(triton, served name, ONNX file) -> max |Triton logits - onnxruntime logits|."""
    def probe(triton, name: str, path: Path) -> float:
        return float(np.abs(triton.classify(name, images) - onnx_logits(path, images)).max())

    return probe


def generator_probe(num_classes: int):
    """(triton, served name, ONNX file) -> max |Triton images - onnxruntime images| (levels)."""
    labels = np.arange(8) % num_classes

    def probe(triton, name: str, path: Path) -> float:
        inputs = generator_inputs(path, labels)
        served = triton.generate(name, inputs["labels"], inputs["noise"]).astype(np.int16)
        return float(np.abs(served - onnx_generate(path, labels).astype(np.int16)).max())

    return probe
