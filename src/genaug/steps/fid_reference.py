"""The real data's reference features for FID, before the experiment measures its generators
in parallel, computed once per (dataset, split, N, mode, network) and cached in S3."""

from __future__ import annotations

from genaug import accel, catalog, tracking
from genaug.data.sources import load_raw
from genaug.metrics import feature_net
from genaug.metrics.reference import reference
from genaug.profiles import PROFILES
from genaug.steps.context import optional_store
from genaug.steps.timing import timed_step


@timed_step
def fid_reference(dataset: str, profile: str, parent_run_id: str = "") -> dict:
    """Make sure the profile's reference features exist in the cache (computing them once);
    returns their cache keys, per mode. Runs before generators are measured in parallel."""
    spec, prof = catalog.dataset(dataset), PROFILES[profile]
    store = optional_store()
    net, origin = feature_net.for_profile(prof.fid_network, store, accel.pick().device)
    if net is None:
        return {"network": None, "reason": origin, "keys": {}}
    raw = load_raw(spec, store=store)
    refs = {mode: reference(spec, raw, prof.fid_samples, mode, net, store) for mode in prof.fid_modes}
    tracking.log_params({"fid_network": net.name, "fid_n_reference": prof.fid_samples})
    return {"network": net.describe(), "keys": {m: r.key for m, r in refs.items()},
            "cached": {m: r.cached for m, r in refs.items()}}
