"""Progress bars that stay readable in a terminal and in a pipeline task's log.

tqdm draws them; where it is not installed (the bare torch environment bench/gpu.sh runs
in), a plain bar prints a line at most every 15 s instead, with the same interface.
"""

from __future__ import annotations

import sys
import time

try:
    from tqdm.auto import tqdm
except ImportError:  # torch alone, no tqdm
    tqdm = None


class PlainBar:
    """The part of tqdm's interface the training loops use: update, set_postfix, a context."""

    def __init__(self, total: int, desc: str, unit: str, disable: bool, every_s: float = 15.0):
        self.total, self.desc, self.unit, self.disable, self.every_s = total, desc, unit, disable, every_s
        self.n, self.postfix, self._shown = 0, "", time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.disable and time.monotonic() - self._shown >= self.every_s:
            self._print()

    def set_postfix(self, values=None, **kwargs) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in {**(values or {}), **kwargs}.items())

    def _print(self) -> None:
        self._shown = time.monotonic()
        print(f"{self.desc}: {self.n}/{self.total} {self.unit} {self.postfix}".rstrip(), file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if not self.disable:
            self._print()
        return False


def bar(total: int, desc: str, unit: str = "it", disable: bool = False):
    if tqdm is None:
        return PlainBar(total, desc, unit, disable)
    # Not a terminal (a KFP task log): redraw rarely so the log keeps a few lines, not thousands.
    interactive = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True,
                mininterval=0.5 if interactive else 15.0, file=sys.stderr, disable=disable)
