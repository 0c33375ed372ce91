"""Progress bars that stay readable in a terminal and in a pipeline task's log."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def bar(total: int, desc: str, unit: str = "it", disable: bool = False):
    # Not a terminal (a KFP task log): redraw rarely so the log keeps a few lines, not thousands.
    interactive = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True,
                mininterval=0.5 if interactive else 15.0, file=sys.stderr, disable=disable)
