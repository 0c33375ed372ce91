"""The promotion gates: a pure decision from measured numbers, with its reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Decision:
    passed: bool
    reasons: list[str]
    metric: str
    candidate: float
    champion: float | None
    margin: float
    floor: float
    parity: float
    parity_tolerance: float

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
