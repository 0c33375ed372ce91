"""A task's share of the machine's CPU threads, which can change while it runs.

When a local run executes independent tasks at the same time (pipelines/concurrent_dag.py),
each task's share is a number in a file that the runner rewrites as tasks start and end:
two tasks get one thread each on a 2-core machine, and the one left running gets both
once the other ends. ``$GENAUG_THREAD_SHARE_FILE`` names the file; without it (a cluster
pod, a step run by hand) nothing here changes anything.

Long loops call ``follow()`` through their progress bars, which makes torch use the
current share; ONNX Runtime sessions read ``share()`` before each call
(genaug.onnx_runtime). The file is read at most every POLL_S seconds.
"""

from __future__ import annotations

import os
import time

SHARE_FILE_ENV = "GENAUG_THREAD_SHARE_FILE"
POLL_S = 2.0

_last = {"read_at": -POLL_S, "share": None}


def share() -> int | None:
    """This task's current thread share, or None when no runner manages it."""
    path = os.environ.get(SHARE_FILE_ENV)
    if not path:
        return None
    now = time.monotonic()
    if now - _last["read_at"] >= POLL_S:
        _last["read_at"] = now
        try:
            with open(path) as f:
                _last["share"] = max(1, int(f.read().strip()))
        except (OSError, ValueError):
            pass  # the runner rewrites it atomically; a missing file keeps the last share
    return _last["share"]


def follow() -> int | None:
    """Make torch use this task's current share (if a runner manages it); return the share."""
    current = share()
    if current is not None:
        import torch

        if torch.get_num_threads() != current:
            torch.set_num_threads(current)
    return current
