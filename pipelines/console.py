"""What a person sees of a local run, and where the rest goes.

KFP's local runner prints, per task, its executor input (~40 lines of JSON), its command
and every line the task writes. All of it goes to ``<run folder>/pipeline.log``; the
terminal shows the lines genaug's steps mark for people (``[genaug] ...``: a step's start,
its progress every 15 s, its end or its error) and KFP's retry notices. When a run fails,
``failure()`` gives the failing step, its error and where the full log is, so that the
last lines on the screen say what went wrong and how to fix it.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections import deque
from pathlib import Path

from genaug.steps.timing import FAILED_MARK

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SHOWN = ("[genaug] ",)
_KFP_SHOWN = ("Retrying in",)  # parts of KFP's own log lines that a person waiting needs to see
_TAIL = 15  # lines of the log shown for a failure that left no step error line


class Console(io.TextIOBase):
    """A text stream: every line to ``log`` (a file), the lines meant for people to ``terminal``."""

    def __init__(self, log, terminal):
        self.log, self.terminal = log, terminal
        self.failures: list[str] = []          # "[genaug] step x: failed after ..." lines, in order
        self.tail: deque[str] = deque(maxlen=_TAIL)
        self._partial = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self.log.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        self.terminal.flush()

    def _line(self, raw: str) -> None:
        line = _ANSI.sub("", raw).strip()
        if not line:
            return
        self.tail.append(line)
        start = line.find("[genaug] ")
        if start >= 0:
            line = line[start:]
            if FAILED_MARK in line:
                self.failures.append(line)
            self.terminal.write(line + "\n")
            self.terminal.flush()
        elif any(part in line for part in _KFP_SHOWN):
            self.terminal.write(f"[kfp] {line}\n")
            self.terminal.flush()

    def failure(self, log_path: Path) -> str:
        """The end of a failed run's story: each failing step and its error, or the log's last lines."""
        if self.failures:
            seen = dict.fromkeys(f.removeprefix("[genaug] step ") for f in self.failures)
            body = [f"  {failure}" for failure in seen]
        else:
            body = ["  no step reported an error; the log ends with:", *(f"    {line}" for line in self.tail)]
        return "\n".join(["the run failed:", *body, f"  full log: {log_path}"])


@contextlib.contextmanager
def captured(log_path: Path):
    """Send sys.stdout and sys.stderr (KFP's logger and every task's output) through a Console
    writing ``log_path``; yields the Console."""
    saved = sys.stdout, sys.stderr
    with open(log_path, "a", encoding="utf-8", buffering=1) as log:
        console = Console(log, saved[1])
        sys.stdout = sys.stderr = console
        try:
            yield console
        finally:
            sys.stdout, sys.stderr = saved
