"""Run the augmentation experiment through KFP's local runner, on this machine.

    python -m pipelines.run_experiment --dataset fashion_mnist --generator dcgan --profile quick

Lists (``--ratios 0,0.5,1``, ``--seeds``, ``--classifiers``, ``--fractions``,
``--generator_seeds``) default to
the profile's (src/genaug/profiles.py) and are validated before anything starts. The run
folder ``runs/00004-experiment-fashion_mnist-dcgan-quick/`` holds experiment_options.json,
the KFP pipeline root and summary.json (with the table); the table is printed at the end,
and the LAST line printed is the path of summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from genaug.experiment.plan import RUN_PARAMETERS, configurations, validate
from genaug.params import ParamError, add_arguments, default, pipeline_arguments
from pipelines.run_local import (add_runner_arguments, connect_services, execute, next_run_dir, print_result,
                                 task_output, write_summary)

LISTS = ("ratios", "seeds", "classifiers", "fractions", "generator_seeds")

def run(params, runs: Path, run_parameters: dict, cache: bool = True) -> Path:
    """Run the experiment locally; return the path of its summary.json. ``run_parameters``:
    RUN_PARAMETERS, as the pipeline takes them."""
    connect_services()
    run_dir = next_run_dir(runs, f"experiment-{params.dataset}-{params.generator}-{params.profile}")
    run_dir.mkdir(parents=True)
    options = {**params.as_dict(), **run_parameters, "n_configurations": len(configurations(params))}
    (run_dir / "experiment_options.json").write_text(json.dumps(options, indent=2))
    # Two tasks run at once locally; one torch thread pool each keeps 2 cores from thrashing.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // 2)))
    _, wall = execute("genaug-experiment.yaml", {**params.as_dict(), **run_parameters}, run_dir, cache)
    return write_summary(task_output(run_dir / "kfp", "summarize-experiment", "summary"), run_dir, wall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("dataset", "generator", "profile"):
        parser.add_argument(f"--{name}", default=None, help=f"default: {default(name)}")
    for name in LISTS:
        parser.add_argument(f"--{name}", default="", help="comma-separated; default: the profile's")
    parser.add_argument("--filter_threshold", default=None, help="default: 0 (keep every synthetic image)")
    add_arguments(parser, RUN_PARAMETERS)
    add_runner_arguments(parser)
    args = vars(parser.parse_args(argv))
    runs, cache = Path(args.pop("runs")), args.pop("cache")
    run_parameters = {k: args.pop(k) for k in RUN_PARAMETERS}
    try:
        params = validate(**{k: (None if v is None or str(v).strip() == "" else v) for k, v in args.items()})
        # Checked now as the pipeline's plan_experiment will; passed on with KFP's stand-ins for unset.
        arguments = pipeline_arguments({"dataset": params.dataset, "generator": params.generator,
                                        "profile": params.profile, "seed": params.generator_seed, **run_parameters})
        run_parameters = {k: arguments[k] for k in RUN_PARAMETERS}
    except ParamError as err:
        print(f"genaug: invalid experiment parameters: {err}", file=sys.stderr)
        return 2
    print(f"[genaug] experiment: {len(configurations(params))} configurations over fractions "
          f"{list(params.fractions)} and generator seeds {list(params.generator_seeds)}", flush=True)
    try:
        path = run(params, runs, run_parameters, cache)
    except RuntimeError as err:  # a service that is down: the message names it and the fix
        print(f"genaug: {err}", file=sys.stderr)
        return 1
    summary = json.loads(path.read_text())
    print_result(summary["text"], summary, path, [], "MLflow UI (every configuration is a nested run of this one)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
