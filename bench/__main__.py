"""``python -m bench [names...]`` (or ``make bench``): every benchmark in turn, on this
machine, each printing its figures and ratio and writing bench/results/<name>.json; a
summary table of the ratios at the end. Names: data_loading, gan_step, diffusion_step,
sampling, fid_features, diversity, serving, promotion, data_versions, pipeline_overhead, resolution,
mlflow_login, ddp."""

from __future__ import annotations

import importlib
import sys
import time

ORDER = ("data_loading", "gan_step", "diffusion_step", "sampling", "fid_features", "diversity", "serving",
         "promotion", "data_versions", "pipeline_overhead", "resolution", "mlflow_login", "ddp")


def main(argv: list[str]) -> int:
    names = argv or list(ORDER)
    unknown = sorted(set(names) - set(ORDER))
    if unknown:
        print(f"bench: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}", file=sys.stderr)
        return 2
    rows, t0 = [], time.perf_counter()
    for name in names:
        start = time.perf_counter()
        record = importlib.import_module(f"bench.{name}").main([])
        rows.append((name, record["ratio"], time.perf_counter() - start))
    print(f"\n== ratios ({time.perf_counter() - t0:.0f} s in all)")
    for name, ratio, seconds in rows:
        print(f"   {name:<18} {ratio['value']:>7.2f}x  target {ratio['target']:<28} "
              f"{'not judged' if ratio['met'] is None else 'met' if ratio['met'] else 'MISSED'}  ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
