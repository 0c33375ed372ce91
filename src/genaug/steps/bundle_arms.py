"""Between the experiment's two loops: every arm's real data and synthetic set in one
folder, indexed by fraction. (KFP cannot hand a loop's collected outputs to the tasks of
another loop directly; one artifact can.)"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from genaug.data import imageset

INDEX = "index.json"


def bundle_arms(data_paths: list[str], synthetic_paths: list[str], out_dir: str) -> dict:
    """Copy each prepared dataset and the synthetic set made from it (matched by the data's
    content hash) into ``out_dir``; write index.json {fraction: {data, synthetic}}."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_hash = {}
    for path in synthetic_paths:
        meta = imageset.read_meta(path, "synthetic dataset")
        by_hash[meta["real_data_hash"]] = path
    index = {}
    for i, path in enumerate(data_paths):
        meta = imageset.read_meta(path, "prepared dataset")
        synth = by_hash.get(meta["content_hash"])
        if synth is None:
            raise imageset.ArtifactError(f"no synthetic set was made from the prepared data at {path} "
                                         f"(fraction {meta['fraction']}); check the experiment's first loop")
        shutil.copyfile(path, out / f"data-{i}.npz")
        shutil.copyfile(synth, out / f"synthetic-{i}.npz")
        index[f"{float(meta['fraction']):g}"] = {"data": f"data-{i}.npz", "synthetic": f"synthetic-{i}.npz"}
    (out / INDEX).write_text(json.dumps(index, indent=2))
    return {"fractions": sorted(index), "seconds": round(time.perf_counter() - t0, 3)}


def arm_paths(bundle_dir: str, fraction: float) -> tuple[str, str]:
    """(prepared data path, synthetic set path) of the arm at ``fraction``."""
    index = json.loads((Path(bundle_dir) / INDEX).read_text())
    entry = index.get(f"{float(fraction):g}")
    if entry is None:
        raise imageset.ArtifactError(f"the arms bundle at {bundle_dir} holds fractions {sorted(index)}, "
                                     f"not {fraction}; check the experiment's configuration list")
    return str(Path(bundle_dir) / entry["data"]), str(Path(bundle_dir) / entry["synthetic"])
