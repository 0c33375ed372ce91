"""The promotion gates: a pure decision from measured numbers, with its reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# How much test accuracy the INT8 classifier may lose against the FP32 one it was quantized
# from, in accuracy (0.005 = half a percentage point): about one image in 200.
INT8_TOLERANCE = 0.005


@dataclass(frozen=True)
class Decision:
    """One gate's verdict and the figures it used. A field that the gate does not use is
    None: the INT8 gate has no margin, floor or ONNX parity, and the champion gate no
    reference."""

    passed: bool
    reasons: list[str]
    metric: str
    candidate: float
    champion: float | None
    margin: float | None
    floor: float | None
    parity: float | None
    parity_tolerance: float | None
    reference: dict | None = None  # INT8: {"model", "score", "promoted", "tolerance"} of its FP32 model

    def as_dict(self) -> dict:
        return asdict(self)


def decide(metric: str, candidate: float, champion: float | None, margin: float, floor: float,
           parity: float, parity_tolerance: float) -> Decision:
    """Pass only if parity is within tolerance, candidate >= floor, and there is no
    champion or candidate > champion + margin (strictly: an equal model is no better).

    candidate and champion must be measured on the same data by the same procedure.
    """
    failures = []
    if not parity <= parity_tolerance:
        failures.append(f"ONNX parity {parity:.3g} exceeds tolerance {parity_tolerance:.3g}")
    if not candidate >= floor:
        failures.append(f"{metric} {candidate:.4f} is below the floor {floor:.4f}")
    if champion is not None and not candidate > champion + margin:
        failures.append(f"{metric} {candidate:.4f} does not beat the champion's {champion:.4f} "
                        f"by more than the margin {margin:.4f}")
    if failures:
        reasons = failures
    elif champion is None:
        reasons = [f"no champion yet; {metric} {candidate:.4f} clears the floor {floor:.4f}"]
    else:
        reasons = [f"{metric} {candidate:.4f} beats the champion's {champion:.4f} by "
                   f"{candidate - champion:+.4f} (margin {margin:.4f})"]
    return Decision(passed=not failures, reasons=reasons, metric=metric, candidate=candidate,
                    champion=champion, margin=margin, floor=floor, parity=parity,
                    parity_tolerance=parity_tolerance)


def decide_int8(metric: str, candidate: float, champion: float | None, fp32_model: str, fp32: float,
                fp32_promoted: bool, tolerance: float = INT8_TOLERANCE) -> Decision:
    """Pass only if this run's FP32 model (``fp32_model``) was promoted and the INT8 model
    loses at most ``tolerance`` of ``metric`` against it (candidate >= fp32 - tolerance).

    The INT8 model follows its FP32 model: it is not compared with its own champion (the
    INT8 file of an earlier FP32 champion; ``champion`` is recorded, not judged), since the
    FP32 model already beat that run's. candidate and fp32 must be measured on the same
    data by the same procedure.
    """
    failures = []
    if not fp32_promoted:
        failures.append(f"the FP32 model {fp32_model} of this run was not promoted; its INT8 file serves only "
                        "beside it")
    if not candidate >= fp32 - tolerance:
        failures.append(f"{metric} {candidate:.4f} is {fp32 - candidate:.4f} below the FP32 model's {fp32:.4f}, "
                        f"more than the tolerance {tolerance:.4f}")
    reasons = failures or [f"{metric} {candidate:.4f} is within {tolerance:.4f} of the FP32 model's {fp32:.4f} "
                           f"({candidate - fp32:+.4f}), and {fp32_model} was promoted"]
    return Decision(passed=not failures, reasons=reasons, metric=metric, candidate=candidate, champion=champion,
                    margin=None, floor=None, parity=None, parity_tolerance=None,
                    reference={"model": fp32_model, "score": fp32, "promoted": fp32_promoted, "tolerance": tolerance})
