"""The INT8 classifier as a promotion candidate: it follows the FP32 model it was quantized
from (genaug.export.quantize) through the same transaction, under its own name and gate."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from genaug.serving.gates import decide_int8
from genaug.serving.promote import Candidate

METRIC = "test_accuracy"


def int8_candidate(fp32: Candidate, fp32_decision: dict, name: str, onnx_path: Path,
                   render_config: Callable[[int], str], accuracy: Callable[[Path], float],
                   mlflow_source: str | None = None) -> Candidate:
    """The candidate for the INT8 file ``onnx_path`` of ``fp32``, whose promotion ended in
    ``fp32_decision`` (the ledger event genaug.serving.promote.promote returned).

    accuracy: ONNX file -> test accuracy on the current test split; the FP32 file is scored
    by it here and the INT8 one by the transaction, so both are measured alike. Gate:
    genaug.serving.gates.decide_int8. Every other check (staging load, Triton probe, ledger,
    aliases) is the transaction's, as for any model.
    """
    fp32_accuracy = accuracy(fp32.onnx_path)
    promoted = fp32_decision.get("decision") == "promoted"
    lineage = {**fp32.lineage, "precision": "int8", "fp32_model": fp32.name,
               "fp32_sha256": fp32.sha256, "fp32_version": fp32_decision.get("champion_version_after")}
    return dataclasses.replace(
        fp32, name=name, onnx_path=Path(onnx_path), render_config=render_config, metric=METRIC, score=accuracy,
        parity=None, parity_tolerance=None, lineage=lineage, mlflow_source=mlflow_source,
        gate=lambda candidate, champion: decide_int8(METRIC, candidate, champion, fp32.name, fp32_accuracy, promoted))
