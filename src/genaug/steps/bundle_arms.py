"""Between the experiment's two loops: every arm's real data and synthetic set in one
folder, indexed by fraction and generator seed. (KFP cannot hand a loop's collected outputs
to the tasks of another loop directly; one artifact can.)"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from genaug.data import imageset

INDEX = "index.json"


def _arm_key(fraction: float, generator_seed: int) -> str:
    return f"{float(fraction):g}/g{int(generator_seed)}"


def _generator_seed(meta: dict) -> int:
    """The seed the synthetic set's generator trained with (the arm's generator seed)."""
    return int((meta.get("generator_meta") or {}).get("seed", meta.get("seed", 0)))


def bundle_arms(data_paths: list[str], synthetic_paths: list[str], out_dir: str) -> dict:
    """Copy each prepared dataset once (the arms of one fraction share it) and each synthetic
    set, matched to its data by the data's content hash and keyed by its generator's seed,
    into ``out_dir``; write index.json {"data": {fraction: file}, "synthetic": {fraction/gSEED: file}}."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fraction_of, index = {}, {"data": {}, "synthetic": {}}
    for path in data_paths:
        meta = imageset.read_meta(path, "prepared dataset")
        key = f"{float(meta['fraction']):g}"
        if meta["content_hash"] not in fraction_of:
            fraction_of[meta["content_hash"]] = key
            index["data"][key] = f"data-{len(index['data'])}.npz"
            shutil.copyfile(path, out / index["data"][key])
    for path in synthetic_paths:
        meta = imageset.read_meta(path, "synthetic dataset")
        fraction = fraction_of.get(meta["real_data_hash"])
        if fraction is None:
            raise imageset.ArtifactError(f"the synthetic set at {path} was made from data that no arm prepared "
                                         "(its real_data_hash matches none); check the experiment's first loop")
        key = _arm_key(float(fraction), _generator_seed(meta))
        index["synthetic"][key] = f"synthetic-{len(index['synthetic'])}.npz"
        shutil.copyfile(path, out / index["synthetic"][key])
    missing = [f for f in index["data"] if not any(k.startswith(f + "/") for k in index["synthetic"])]
    if missing:
        raise imageset.ArtifactError(f"no synthetic set was made from the prepared data of fraction(s) {missing}; "
                                     "check the experiment's first loop")
    (out / INDEX).write_text(json.dumps(index, indent=2))
    return {"fractions": sorted(index["data"]), "arms": sorted(index["synthetic"]),
            "seconds": round(time.perf_counter() - t0, 3)}


def arm_paths(bundle_dir: str, fraction: float, generator_seed: int | None = None) -> tuple[str, str]:
    """(prepared data path, synthetic set path) of the arm (``fraction``, ``generator_seed``);
    the synthetic path is "" for ``generator_seed`` None (real-only training needs none)."""
    index = json.loads((Path(bundle_dir) / INDEX).read_text())
    data = index["data"].get(f"{float(fraction):g}")
    if data is None:
        raise imageset.ArtifactError(f"the arms bundle at {bundle_dir} holds fractions {sorted(index['data'])}, "
                                     f"not {fraction}; check the experiment's configuration list")
    if generator_seed is None:
        return str(Path(bundle_dir) / data), ""
    synthetic = index["synthetic"].get(_arm_key(fraction, generator_seed))
    if synthetic is None:
        raise imageset.ArtifactError(f"the arms bundle at {bundle_dir} holds arms {sorted(index['synthetic'])}, "
                                     f"not fraction {fraction:g} with generator seed {generator_seed}; check the "
                                     "experiment's configuration list")
    return str(Path(bundle_dir) / data), str(Path(bundle_dir) / synthetic)
