"""A clear log line at each step's start and end, and its wall time in the step's metadata."""

from __future__ import annotations

import functools
import sys
import time


def timed_step(fn):
    """Wrap a step function that returns a metadata dict; add ``seconds`` (wall time) to it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        print(f"[genaug] step {fn.__name__}: started", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        meta = fn(*args, **kwargs)
        meta["seconds"] = round(time.perf_counter() - t0, 3)
        print(f"[genaug] step {fn.__name__}: finished in {meta['seconds']:.1f} s", file=sys.stderr, flush=True)
        return meta

    return wrapper
