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
