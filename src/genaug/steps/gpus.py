"""Run a training step on every GPU of its pod: ``@on_every_gpu`` over ``@timed_step``.

In a pod with N > 1 GPUs (torch.cuda.device_count(), or GENAUG_NPROC, which also makes
gloo processes on a CPU) the decorated step does not train itself: it starts

    python -m torch.distributed.run --standalone --nproc_per_node=N -m genaug.cli step NAME --args...

with its own arguments, waits for it, and returns what rank 0 returned. Each rank runs the
step in a process group (genaug.train.distributed); rank 0 alone opens the MLflow step run,
writes the outputs and checkpoints. When any rank fails, torchrun stops the others and the
step fails with torchrun's account of which rank failed and why; no worker outlives it.
Synthesis and the metrics keep one GPU: they are not decorated.
"""

from __future__ import annotations

import collections
import functools
import inspect
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from genaug.sections import Section
from genaug.train.distributed import World

NPROC_ENV = "GENAUG_NPROC"         # processes per pod; default: its GPU count
RESULT_ENV = "GENAUG_STEP_RESULT"  # where rank 0 writes the step's metadata (JSON)
TAIL_CHARS = 6000


class RankFailed(RuntimeError):
    """A rank of a multi-GPU step failed; the message names it and its error (torchrun's report)."""


def processes() -> int:
    """How many training processes this step should run: 1 inside a process group already."""
    if World.from_env().distributed:
        return 1
    if os.environ.get(NPROC_ENV):
        return max(1, int(os.environ[NPROC_ENV]))
    return torch.cuda.device_count() if torch.cuda.is_available() else 1


def cli_value(value) -> str:
    """A step argument as ``genaug step`` parses it back (genaug.cli)."""
    if isinstance(value, Section):
        value = value.as_dict()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def step_target(name: str, arguments: dict) -> list[str]:
    """What each rank runs: ``-m genaug.cli step NAME --arg value ...``."""
    argv = ["-m", "genaug.cli", "step", name]
    for key, value in arguments.items():
        if value is not None:
            argv += ["--" + key.replace("_", "-"), cli_value(value)]
    return argv


def on_every_gpu(fn):
    """Decorate a step (over its @timed_step) so that it trains on every GPU of its pod."""
    signature = inspect.signature(inspect.unwrap(fn))

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        world, nproc = World.from_env(), processes()
        if nproc > 1:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return run_ranks(step_target(fn.__name__, dict(bound.arguments)), nproc, f"step {fn.__name__}")
        meta = fn(*args, **kwargs)
        if world.distributed:
            write_result(meta)
        return meta

    return wrapper


def run_ranks(target: list[str], nproc: int, what: str) -> dict:
    """Run ``target`` (a script or ``-m module`` and its arguments) in ``nproc`` processes under
    torchrun; return the JSON rank 0 wrote to $GENAUG_STEP_RESULT. Raises RankFailed naming
    the rank that failed first, with its error, once torchrun has stopped every rank."""
    print(f"[genaug] {what}: {nproc} processes (torchrun)", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        env = {**os.environ, RESULT_ENV: str(result), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *target]
        tail: collections.deque[str] = collections.deque(maxlen=400)
        with subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
            for line in proc.stderr:  # the ranks' progress, live, and the end kept for the error
                sys.stderr.write(line)
                tail.append(line)
        if proc.returncode != 0:
            raise RankFailed(f"{what} failed on {nproc} processes (exit {proc.returncode}); torchrun's "
                             f"report:\n{_report(''.join(tail))}")
        if not result.is_file():
            raise RankFailed(f"{what} ran on {nproc} processes but rank 0 wrote no result to {result}")
        return json.loads(result.read_text())


def write_result(meta: dict) -> None:
    """Rank 0's part of run_ranks: its result, where the launcher reads it."""
    if os.environ.get(RESULT_ENV) and World.from_env().main:
        Path(os.environ[RESULT_ENV]).write_text(json.dumps(meta, default=str))


def _report(stderr: str) -> str:
    """torchrun's failure summary (which rank, exit code, error) or the end of the log."""
    marker = stderr.find("Root Cause")
    start = stderr.rfind("=" * 20, 0, marker) if marker >= 0 else -1
    return stderr[start:][:TAIL_CHARS] if start >= 0 else stderr[-TAIL_CHARS:]
