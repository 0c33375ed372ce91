"""What every benchmark shares: the machine record, timing, and the report.

A benchmark times our implementation and a reference in the same process on the same
machine and reports their ratio (> 1: ours is faster), so the figure does not depend on
how fast the machine is. Each one prints its figures with the ratio last and writes
``bench/results/<name>.json`` with the figures and the machine: host, CPU, GPU, torch
version, date.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

RESULTS = Path(os.environ.get("GENAUG_BENCH_RESULTS", Path(__file__).resolve().parent / "results"))


def machine() -> dict:
    """Where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda if gpu else None,
            "python": platform.python_version(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def seconds(fn, device="cpu", warmup: int = 1, repeats: int = 3) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns: dict, device="cpu", warmup: int = 1, repeats: int = 3) -> dict[str, float]:
    """Median seconds of each of ``fns`` (name -> callable), timed in turns (A B A B ...) so
    that a machine that slows down or speeds up mid-run affects both sides alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


class Report:
    """Figures of one benchmark; ``done()`` prints the ratio last and writes the JSON."""

    def __init__(self, name: str, what: str):
        self.name, self.what = name, what
        self.figures: list[dict] = []
        self.notes: list[str] = []
        print(f"== {name}: {what}", flush=True)

    def figure(self, label: str, value: float, unit: str) -> None:
        self.figures.append({"label": label, "value": value, "unit": unit})
        print(f"   {label:<58} {value:>12.4g} {unit}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"   note: {text}", flush=True)

    def done(self, ratio_label: str, ratio: float, target: str, met: bool | None) -> dict:
        """met: whether the target holds; None when this run's settings are not the ones the
        target is defined for (the record says so rather than pass or fail)."""
        record = {"name": self.name, "what": self.what, "machine": machine(), "figures": self.figures,
                  "notes": self.notes, "ratio": {"label": ratio_label, "value": ratio, "target": target,
                                                 "met": met}}
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        tmp = path.with_suffix(".json.partial")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, path)
        verdict = "not judged" if met is None else "met" if met else "MISSED"
        print(f"   RATIO {ratio_label}: {ratio:.2f}x (target {target}: {verdict})  -> {path}", flush=True)
        return record
