"""What KFP's local runner costs: the wall time of a whole local pipeline run against the
sum of its steps' own times (each step function's wall time, measured inside its task).

    python -m bench.pipeline_overhead [--profile smoke|quick]

The difference is everything the pipeline adds around the work: a process per task,
imports, artifact copies, the small bookkeeping tasks (validation, data version, MLflow
parent run, final status) and the runner itself. It runs on a private stack with caching
off, so no step is skipped or resumed. Target: overhead <= 15% of the steps' time on the
quick profile. That run takes ~15 minutes here, so `make bench` runs smoke by default
(GENAUG_BENCH_PIPELINE_PROFILE=quick for the target's run). The overhead is a near-constant
~2 s per task (~32 s per run on this machine): on smoke, whose steps take seconds, it is a
large share and the target is not judged.

The run executes one task at a time (``--parallel 0``): side by side, the steps' times
would overlap and their sum would no longer be the work the wall time is compared with.
What running tasks side by side saves is in bench/RESULTS.md (issue 18's fresh-clone runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Report
from bench.stack import REPO, private_stack


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default=os.environ.get("GENAUG_BENCH_PIPELINE_PROFILE", "smoke"))
    p.add_argument("--generator", default="dcgan")
    p.add_argument("--classifier", default="cnn")
    args = p.parse_args(argv)
    report = Report("pipeline_overhead", f"local KFP run, fashion_mnist / {args.generator} / {args.classifier} / "
                                         f"{args.profile}, against the sum of its steps")
    with private_stack() as (tmp, env):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pipelines.run_local", "--dataset", "fashion_mnist",
                               "--generator", args.generator, "--classifier", args.classifier, "--profile",
                               args.profile, "--runs", str(tmp / "runs"), "--cache", "0", "--parallel", "0"],
                              cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True)
        outside = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"the pipeline run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        summary = json.loads(Path(proc.stdout.strip().splitlines()[-1]).read_text())
    steps = summary["step_seconds"]
    for name, seconds in steps.items():
        report.figure(f"step {name}", seconds, "s")
    total, wall = sum(steps.values()), summary["pipeline_wall_seconds"]
    report.figure("sum of the steps", total, "s")
    report.figure("pipeline wall time (KFP local runner)", wall, "s")
    report.figure("the command's wall time (compile, runner start, summary)", outside, "s")
    overhead = wall / total - 1.0
    report.figure("overhead: wall - steps", wall - total, "s")
    report.figure("overhead", 100 * overhead, "% of the steps")
    return report.done("pipeline wall / sum of steps", wall / total, "<= 1.15x on the quick profile",
                       overhead <= 0.15 if args.profile == "quick" else None)


if __name__ == "__main__":
    main()
