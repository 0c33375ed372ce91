"""Progress bars that stay readable in a terminal and in a pipeline task's log.

In a terminal tqdm draws them. Elsewhere (a KFP task, whose output the runner reads line
by line, or the bare torch environment bench/gpu.sh runs in) a plain bar prints one
``[genaug] ...`` line at most every 15 s, with the share done, the rate and the time left;
tqdm's carriage-return redraws would reach such a reader as one line at the very end.
The plain bar is also where a long loop follows its task's thread share (genaug.threads).
"""

from __future__ import annotations

import sys
import time

from genaug import threads

try:
    from tqdm.auto import tqdm
except ImportError:  # torch alone, no tqdm
    tqdm = None


class PlainBar:
    """The part of tqdm's interface the training loops use: update, set_postfix, a context."""

    def __init__(self, total: int, desc: str, unit: str, disable: bool, every_s: float = 15.0):
        self.total, self.desc, self.unit, self.disable, self.every_s = total, desc, unit, disable, every_s
        self.n, self.postfix = 0, ""
        self._start = self._shown = self._followed = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._followed >= threads.POLL_S:
            self._followed = now
            threads.follow()  # a long loop takes up the threads that other tasks gave back
        if not self.disable and now - self._shown >= self.every_s:
            self._print()

    def set_postfix(self, values=None, **kwargs) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(values or {}), **kwargs}.items())

    def line(self) -> str:
        """'[genaug] train_generator: 450/1500 step (30%), 8.6 step/s, 2 min 2 s left, ...'."""
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.n / elapsed
        parts = [f"{self.n}/{self.total} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        if self.n:
            parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 else f"{1 / rate:.3g} s/{self.unit}")
            if self.total and self.n < self.total:
                parts.append(f"{_duration((self.total - self.n) / rate)} left")
            elif self.n >= self.total:
                parts.append(f"done in {_duration(elapsed)}")
        if self.postfix:
            parts.append(self.postfix)
        return f"[genaug] {self.desc}: " + ", ".join(parts)

    def _print(self) -> None:
        self._shown = time.monotonic()
        print(self.line(), file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.disable:
            self._print()
        return False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def bar(total: int, desc: str, unit: str = "it", disable: bool = False):
    """A progress bar over ``total`` units of ``unit`` (a word: "step", "img", "batch")."""
    if tqdm is None or not sys.stderr.isatty():
        return PlainBar(total, desc, unit, disable)
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, mininterval=0.5, file=sys.stderr,
                disable=disable)
