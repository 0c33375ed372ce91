"""Run the real pipeline through KFP's local runner, on this machine.

    python -m pipelines.run_local --dataset fashion_mnist --generator dcgan --profile quick

Parameters are validated before anything starts. Each run gets its own self-describing
folder, ``runs/00003-fashion_mnist-dcgan-quick-s0/``, holding run_options.json, the KFP
pipeline root with every task's artifacts, and summary.json. The summary table is printed
at the end, and the LAST line printed is the path of summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from genaug.params import ParamError, RunParams, validate

REPO = Path(__file__).resolve().parent.parent


def run_dir_for(runs: Path, params: RunParams) -> Path:
    """The next numbered folder under ``runs``: 00000-<dataset>-<generator>-<profile>-s<seed>."""
    runs.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in runs.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    name = f"{max(numbers, default=-1) + 1:05d}-{params.dataset}-{params.generator}-{params.profile}-s{params.seed}"
    return runs / name


def _tmp_entries() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("tmp*")}


def run(params: RunParams, runs: Path) -> Path:
    """Run the pipeline locally; return the path of the run's summary.json."""
    from kfp import local

    from genaug.atomic import atomic_path
    from pipelines.genaug_pipeline import genaug_pipeline

    run_dir = run_dir_for(runs, params)
    run_dir.mkdir(parents=True)
    (run_dir / "run_options.json").write_text(json.dumps(params.as_dict(), indent=2))
    print(f"[genaug] run folder: {run_dir}", flush=True)
    # Tasks import the components package and genaug from this checkout and its venv.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir / "kfp"),
               raise_on_error=True)
    before = _tmp_entries()
    t0 = time.perf_counter()
    try:
        task = genaug_pipeline(**params.as_dict())
    finally:
        # The local runner leaves one /tmp/tmp* folder per task behind.
        for name in _tmp_entries() - before:
            shutil.rmtree(Path(tempfile.gettempdir()) / name, ignore_errors=True)
    wall = time.perf_counter() - t0
    summary = json.loads(Path(task.outputs["Output"].path).read_text())
    summary["pipeline_wall_seconds"] = round(wall, 3)
    summary["run_dir"] = str(run_dir)
    path = run_dir / "summary.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return path


def main(argv: list[str] | None = None) -> int:
    defaults = RunParams()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, value in defaults.as_dict().items():
        parser.add_argument(f"--{name}", default=value, help=f"default: {value}")
    parser.add_argument("--runs", default=str(REPO / "runs"), help="where run folders go")
    args = vars(parser.parse_args(argv))
    runs = Path(args.pop("runs"))
    try:
        params = validate(**args)
    except ParamError as err:
        print(f"genaug: invalid parameters: {err}", file=sys.stderr)
        return 2
    from genaug.steps.report import table

    path = run(params, runs)
    summary = json.loads(path.read_text())
    print()
    print(table(summary))
    print(f"  {'pipeline wall time':<28}{summary['pipeline_wall_seconds']:>10.1f}")
    print()
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
