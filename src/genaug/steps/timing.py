"""What every step does around its own work: a clear log line at its start and end, its
wall time in its metadata, and, inside a pipeline run, a nested MLflow run to log into."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import time

from genaug.services import tracking


FAILED_MARK = ": failed after "


def failure_line(name: str, seconds: float, err: BaseException) -> str:
    """'[genaug] step prepare_data: failed after 1.2 s: DataNotFound: <message on one line>'."""
    message = " ".join(str(err).split()) or "(no message)"
    return f"[genaug] step {name}{FAILED_MARK}{seconds:.1f} s: {type(err).__name__}: {message}"


def timed_step(fn=None, *, run_name=None):
    """Decorate a step function that returns a metadata dict.

    Adds ``seconds`` (wall time) to the metadata. When the call has a non-empty
    ``parent_run_id`` argument, the step body runs inside a nested MLflow run named
    ``run_name(arguments)`` (default: the function's name), whose id is added as
    ``mlflow_run_id``.
    """
    if fn is None:
        return functools.partial(timed_step, run_name=run_name)
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        name = run_name(bound.arguments) if run_name else fn.__name__
        # Of the processes of a multi-GPU step (torchrun's RANK), rank 0 alone logs to MLflow.
        parent = bound.arguments.get("parent_run_id") or "" if os.environ.get("RANK", "0") == "0" else ""
        print(f"[genaug] step {name}: started", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            with tracking.step_run(parent, name) if parent else contextlib.nullcontext():
                meta = fn(*args, **kwargs)
                meta["seconds"] = round(time.perf_counter() - t0, 3)
                tracking.log_metrics({"seconds": meta["seconds"]})
                if parent:
                    meta["mlflow_run_id"] = tracking.active_run_id()
        except Exception as err:
            # One line the local runner shows at the end of a failed run: the step, its error
            # (whose message names the value and the fix) and nothing of the traceback.
            print(failure_line(name, time.perf_counter() - t0, err), file=sys.stderr, flush=True)
            raise
        print(f"[genaug] step {name}: finished in {meta['seconds']:.1f} s", file=sys.stderr, flush=True)
        return meta

    return wrapper
