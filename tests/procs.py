"""Processes on this machine, read from /proc: what a test checks is gone after a failure."""

import os
from pathlib import Path


def mentioning(marker: str) -> list[int]:
    """PIDs of live processes (this one excepted) whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def await_checkpoint(proc, store, checkpointer, hang_guard_s: float = 300.0) -> None:
    """Wait until ``checkpointer``'s object exists while ``proc`` still runs (the moment a
    resume test kills it); the deadline is a hang guard, not a performance check."""
    import time

    deadline = time.monotonic() + hang_guard_s
    while not store.exists(checkpointer.bucket, checkpointer.object_key) and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.05)
