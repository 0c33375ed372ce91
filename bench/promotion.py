"""Promotion and reconciliation cost against a model's history: 1 past version vs 200.

    python -m bench.promotion [--past 200]

Every promotion reads the model's one ledger record (its recent decisions inline) and the
kept version folders, never the whole event trail, and retention keeps 5 versions; so a
model with a long history must promote and reconcile about as fast as a new one. The
long history is made as promotions leave it: the newest versions by real promotions, the
earlier decisions as audit records, the event count and the version counter. Each side
is timed in turns (median of 3) on a private stack: the full transaction (gates, staging
load, files, config, load, aliases, commit, pruning), and a reconcile pass that must
reload the model after Triton dropped it. The ratio is the 200-version time over the
1-version time; the target is within 2x.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import uuid
from pathlib import Path

import numpy as np
import torch

from bench.harness import Report, interleaved
from bench.stack import private_stack
from genaug import catalog
from genaug.export.onnx import export_classifier
from genaug.models.classifiers import CNN
from genaug.serving import scoring
from genaug.serving.ledger import Ledger, now, with_event
from genaug.serving.promote import Candidate, promote
from genaug.serving.reconcile import reconcile
from genaug.serving.repository import render_config

SPEC = catalog.dataset("fashion_mnist")
REAL_PROMOTIONS = 5  # what retention keeps: the rest of the history is records only


def _candidate(name: str, onnx: Path, x: np.ndarray, y: np.ndarray) -> Candidate:
    """A candidate from a new pipeline run each time (one run's retry would be a repeat)."""
    return Candidate(name=name, kind="classifier", onnx_path=onnx, lineage={"pipeline_run_id": uuid.uuid4().hex},
                     render_config=lambda v: render_config("classifier", name, v, SPEC),
                     metric="test_accuracy", score=scoring.classifier_score(x, y),
                     probe=scoring.classifier_probe(x[:8]), probe_tolerance=1e-3, parity=0.0, parity_tolerance=1e-3)


def _seed_history(ledger: Ledger, name: str, past: int) -> None:
    """Record ``past - REAL_PROMOTIONS`` earlier decisions before the real promotions."""
    for version in range(1, past - REAL_PROMOTIONS + 1):
        ledger.record(name, {"decision": "promoted", "version": version, "champion_version_after": version,
                             "reason": "seeded by bench.promotion"})

    def change(value):
        value = copy.deepcopy(value)
        value["next_version"] = past - REAL_PROMOTIONS + 1
        value["event_count"] = past - REAL_PROMOTIONS - 1
        return with_event(value, {"time": now(), "decision": "promoted", "reason": "seeded by bench.promotion"})

    ledger.update(name, change)


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.promotion")
    parser.add_argument("--past", type=int, default=200, help="past versions of the long-lived model")
    args = parser.parse_args(argv)
    report = Report("promotion", f"promotion and reconcile with 1 and with {args.past} past versions")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (200, *SPEC.shape), dtype=np.uint8)
    y = rng.integers(0, SPEC.num_classes, 200)
    with tempfile.TemporaryDirectory() as tmp, private_stack() as (_, env):
        os.environ.update(env)
        from genaug.services.triton import Triton
        from genaug.services.store import promotion_store

        onnx = Path(export_classifier(CNN(SPEC.shape, SPEC.num_classes, width=8), SPEC.shape,
                                      Path(tmp) / "clf.onnx")["path"])
        store, triton = promotion_store(), Triton()
        ledger = Ledger(store)
        names = {"new": "bench_new-classifier", "long": "bench_long-classifier"}
        _seed_history(ledger, names["long"], args.past)
        for _ in range(REAL_PROMOTIONS):
            promote(_candidate(names["long"], onnx, x, y), store, triton, margin=-1.0, floor=0.0)
        promote(_candidate(names["new"], onnx, x, y), store, triton, margin=-1.0, floor=0.0)
        history = {side: ledger.state(name)["event_count"] for side, name in names.items()}
        audit = len(ledger.records.keys(f"ledger/events/{names['long']}/"))
        report.note(f"decisions in the ledger before timing: {history}; audit records of the long model: {audit}")
        assert history == {"new": 1, "long": args.past}, history

        def promotion(name):
            return lambda: promote(_candidate(name, onnx, x, y), store, triton, margin=-1.0, floor=0.0)

        def reload_pass(name):
            def run():
                triton.unload(name)
                result = reconcile(store, triton, models=[name])
                assert name in result.repaired, result.lines()
            return run

        promo = interleaved({side: promotion(name) for side, name in names.items()})
        passes = interleaved({side: reload_pass(name) for side, name in names.items()})
        for side, seconds in promo.items():
            report.figure(f"promotion, {1 if side == 'new' else args.past} past version(s)", seconds, "s")
        for side, seconds in passes.items():
            report.figure(f"reconcile pass reloading it, {1 if side == 'new' else args.past} past", seconds, "s")
        ratio = max(promo["long"] / promo["new"], passes["long"] / passes["new"])
        report.figure("promotion: long / new", promo["long"] / promo["new"], "x")
        report.figure("reconcile: long / new", passes["long"] / passes["new"], "x")
    return report.done(f"worst of promotion and reconcile, {args.past} past / 1 past (lower is better)", ratio,
                       "<= 2x", ratio <= 2.0)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
