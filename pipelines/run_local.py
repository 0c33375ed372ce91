"""Run the real pipeline through KFP's local runner, on this machine.

    python -m pipelines.run_local --dataset fashion_mnist --generator dcgan --profile quick

Parameters are validated before anything starts. The services' endpoints come from
``.genaug/stack.env`` (written by ``make up``) unless already in the environment; the
Triton admin key, which only the promote step uses, from ``.genaug/admin.env``.

Each run gets its own self-describing
folder, ``runs/00003-fashion_mnist-dcgan-quick-s0/``, holding run_options.json, the KFP
pipeline root with every task's artifacts, and summary.json. The summary table is printed
at the end, and the LAST line printed is the path of summary.json.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from genaug.params import ParamError, RunConfig, add_arguments, pipeline_arguments, resolve, write_options

REPO = Path(__file__).resolve().parent.parent


class RunFailed(RuntimeError):
    """A task of the pipeline failed; the message names the step, its error and the full log."""


def next_run_dir(runs: Path, name: str) -> Path:
    """The next numbered folder under ``runs``: 00003-<name>."""
    runs.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in runs.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
    return runs / f"{max(numbers, default=-1) + 1:05d}-{name}"


def run_dir_for(runs: Path, config: RunConfig) -> Path:
    """The next numbered folder under ``runs``: 00000-<dataset>-<generator>-<profile>-s<seed>."""
    name = f"{config.data.dataset}-{config.generator}-{config.profile}-s{config.seed}"
    if config.data.fraction < 1.0:
        name += f"-f{config.data.fraction:g}"
    return next_run_dir(runs, name)


@contextlib.contextmanager
def private_tmp():
    """Point tempfile and every child process (TMPDIR) at a folder of this run's own, and
    remove that folder afterwards: the local runner leaves a temporary folder per task
    behind, and only the run's own may go, never another program's."""
    folder = tempfile.mkdtemp(prefix="genaug-run-")
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = folder, folder
    try:
        yield Path(folder)
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(folder, ignore_errors=True)


def git_commit() -> str:
    """The checkout's short commit, with -dirty when tracked files changed; 'unknown' without git."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def connect_services() -> None:
    """Load the stack's endpoints and fail now, naming the server, if one is down."""
    from genaug.services.endpoints import load_admin_env, load_stack_env
    from genaug.services.names import DATASETS_BUCKET
    from genaug.services.triton import Triton
    from genaug.services.store import Store
    from genaug.services.tracking import check_server

    load_stack_env()
    load_admin_env()
    Store(timeout_s=5).list(DATASETS_BUCKET)
    check_server()
    triton = Triton()
    if not triton.live():
        raise RuntimeError(f"Triton at {triton.url} is not live; start the stack with `make up`")


def execute(pipeline_file: str, arguments: dict, run_dir: Path, cache: bool = True, parallel: bool = False):
    """Compile pipeline ``pipeline_file`` (genaug.yaml or genaug-experiment.yaml) into
    ``run_dir``, exactly as `make compile` writes it for the KFP UI, and run THAT file
    through KFP's local runner with its pipeline root in ``run_dir/kfp``. Returns (the
    pipeline task, wall seconds). Services must be up. The terminal shows the steps' progress
    (pipelines.console); ``run_dir/pipeline.log`` has everything. A failed task raises
    RunFailed naming the step, its error and the log.

    cache: let the tasks the pipeline marks cacheable (prepare_data) reuse an earlier run's
    outputs, as on a cluster; the local cache lives next to the stack's data (or in
    $GENAUG_KFP_CACHE_DIR). parallel: run independent tasks at the same time, each with its
    share of the cores (pipelines.concurrent_dag), as a cluster would run them."""
    import warnings

    from kfp import components, local

    from pipelines.compile import compile_one
    from pipelines.concurrent_dag import concurrent_tasks, one_of_outputs
    from pipelines.console import captured

    # The local runner warns, per task, that it ignores the image and the display names;
    # both are meant for the cluster, so the warnings only bury the log.
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
    warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
    os.environ.setdefault("GENAUG_GIT_COMMIT", git_commit())
    log_path = run_dir / "pipeline.log"
    print(f"[genaug] run folder: {run_dir} (every task's full output: {log_path})", flush=True)
    # Tasks import the components package and genaug from this checkout and its venv.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    from genaug.services.endpoints import stack_env_path

    cache_root = os.environ.get("GENAUG_KFP_CACHE_DIR") or str(stack_env_path().parent / "kfp-cache")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run_dir / "kfp"),
               raise_on_error=True, enable_caching=cache, cache_root=cache_root)
    pipeline = components.load_component_from_file(str(compile_one(pipeline_file, run_dir / pipeline_file)))
    # kfp.local indents task output by swapping builtins.print per task; tasks of a
    # ParallelFor overlap in threads and can leave the swapped one installed for good.
    saved_print = builtins.print
    t0 = time.perf_counter()
    with captured(log_path) as console:
        try:
            with private_tmp(), one_of_outputs(), concurrent_tasks() if parallel else contextlib.nullcontext():
                task = pipeline(**arguments)
        except RuntimeError as err:  # kfp.local: "Pipeline 'genaug' finished with status FAILURE ..."
            raise RunFailed(console.failure(log_path)) from err
        finally:
            builtins.print = saved_print
    return task, time.perf_counter() - t0


def run(params: dict, runs: Path, cache: bool = True, parallel: bool = True) -> Path:
    """Run the pipeline locally with the run parameters ``params`` (name -> value; unset ones
    take their defaults); return the path of the run's summary.json."""
    config = resolve(params)
    connect_services()
    run_dir = run_dir_for(runs, config)
    run_dir.mkdir(parents=True)
    write_options(config, str(run_dir / "run_options.json"))
    _, wall = execute("genaug.yaml", pipeline_arguments(params, config), run_dir, cache, parallel)
    return write_summary(task_output(run_dir / "kfp", "report", "summary"), run_dir, wall)


def task_output(pipeline_root: Path, task: str, output: str) -> Path:
    """The file of ``task``'s artifact ``output`` in a local run's pipeline root
    (<root>/<pipeline job>/<task>/<output>); exactly one must exist."""
    found = sorted(p for p in pipeline_root.glob(f"*/{task}/{output}") if p.is_file())
    if len(found) != 1:
        raise RuntimeError(f"expected one {task}/{output} artifact under {pipeline_root}, found {len(found)}: "
                           f"{[str(p) for p in found]}")
    return found[0]


def write_summary(source: Path, run_dir: Path, wall: float) -> Path:
    """``run_dir/summary.json`` (written atomically): the pipeline's summary at ``source``
    plus the run's HTML pages as ``.html`` files (``pages``), the wall time and the run folder."""
    from genaug.atomic import atomic_path

    from pipelines.pages import publish_pages

    summary = {**json.loads(source.read_text()), "pages": publish_pages(run_dir / "kfp", run_dir),
               "pipeline_wall_seconds": round(wall, 3), "run_dir": str(run_dir)}
    path = run_dir / "summary.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return path


def infer_lines(summary: dict, run_dir: Path) -> list[str]:
    """Working `genaug infer` commands for what is served now (this run's models or the
    champions they failed to beat); an example test image is saved for the classifier."""
    import numpy as np
    from PIL import Image

    from genaug.data import imageset

    genaug = f"{REPO}/.venv/bin/genaug"
    lines = []
    for role, p in summary.get("promotions", {}).items():
        if not p.get("served_version"):
            continue
        if role == "generator":
            lines += ["Ask the served generator for one image per class:",
                      f"  {genaug} infer generator --model {p['model']} --labels 0,1,2,3,4,5,6,7,8,9 "
                      f"--out {run_dir / 'generated.png'}"]
        else:
            arrays, _ = imageset.load(summary["artifacts"]["data"], "prepared dataset")
            image = arrays["x_test"][0]
            example = run_dir / "example_test_image.png"
            Image.fromarray(image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)).save(example)
            which = "INT8 classifier" if role == "classifier_int8" else "classifier"
            lines += [f"Ask the served {which} about a real test image:",
                      f"  {genaug} infer classifier --model {p['model']} {example}"]
    return lines or ["Nothing is served yet: no model passed its promotion gates (see the reasons above)."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    add_runner_arguments(parser)
    parser.add_argument("--parallel", type=int, choices=(0, 1), default=1,
                        help="1: independent tasks run at the same time, sharing the cores; 0: one at a time")
    parser.add_argument("--nodes", type=int, default=1, help="1 here; more only on a cluster (TARGET=kfp)")
    args = vars(parser.parse_args(argv))
    runs, cache, parallel = Path(args.pop("runs")), args.pop("cache"), args.pop("parallel")
    if args.pop("nodes") != 1:
        print("genaug: NODES > 1 trains on a Kubeflow cluster's nodes (a Kubeflow Trainer TrainJob); this machine "
              "is one node: run `make pipeline TARGET=kfp KFP_HOST=<url> NODES=2`, or leave NODES at 1 here",
              file=sys.stderr)
        return 2
    try:
        resolve(args)
    except ParamError as err:
        print(f"genaug: invalid parameters: {err}", file=sys.stderr)
        return 2
    from genaug.steps.report import table

    try:
        path = run(args, runs, cache, bool(parallel))
    except RuntimeError as err:  # a service that is down or a failed step: the message names it and the fix
        print(f"genaug: {err}", file=sys.stderr)
        return 1
    summary = json.loads(path.read_text())
    print_result(table(summary), summary, path, ["", *infer_lines(summary, path.parent.resolve())], "MLflow UI")
    return 0


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """--runs and --cache, for both local runners."""
    parser.add_argument("--runs", default=str(REPO / "runs"), help="where run folders go")
    parser.add_argument("--cache", type=int, choices=(0, 1), default=1,
                        help="1: prepare_data may reuse an earlier run's output for the same data version; 0: never")


def mlflow_login_hint() -> str | None:
    """How to log in to the local stack's MLflow UI: the read-only account and the file
    with its password (never the password itself), or None without that file."""
    from genaug.services import mlflow_access
    from genaug.services.endpoints import stack_env_path

    reader = stack_env_path().with_name("mlflow-reader.env")
    if not reader.is_file():
        return None
    return f"  log in as {mlflow_access.USERNAMES['reader']}, password: MLFLOW_TRACKING_PASSWORD in {reader}"


def print_result(text: str, summary: dict, path: Path, extra: list[str], mlflow_label: str) -> None:
    """The end of a local run: its table, the wall time, ``extra`` lines, the MLflow link and,
    LAST, the path of its JSON (scripts read that line)."""
    print()
    print(text)
    print(f"  {'pipeline wall time':<28}{summary['pipeline_wall_seconds']:>10.1f} s")
    for line in extra:
        print(line)
    if summary.get("mlflow_run_url"):
        print(f"{mlflow_label}: {summary['mlflow_run_url']}")
        if (login := mlflow_login_hint()) is not None:
            print(login)
    print()
    print(path)


if __name__ == "__main__":
    sys.exit(main())
