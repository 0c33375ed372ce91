"""The real data's reference features for FID, before the experiment measures its generators
in parallel, computed once per (dataset, split, N, mode, network) and cached in S3."""

from __future__ import annotations

from genaug import accel, catalog
from genaug.data.sources import load_raw
from genaug.metrics import feature_net
from genaug.metrics.reference import reference
from genaug.sections import MetricsConfig
from genaug.services import tracking
from genaug.steps.context import optional_store
from genaug.steps.timing import timed_step


@timed_step
def fid_reference(dataset: str, parent_run_id: str = "", *, metrics: MetricsConfig) -> dict:
    """Make sure the reference features that ``metrics`` asks for exist in the cache
    (computing them once); returns their cache keys, per mode. Runs before generators are
    measured in parallel."""
    spec, metrics = catalog.dataset(dataset), MetricsConfig.coerce(metrics)
    store = optional_store()
    net, origin = feature_net.for_profile(metrics.fid_network, store, accel.pick().device)
    if net is None:
        return {"network": None, "reason": origin, "keys": {}}
    raw = load_raw(spec, store=store)
    refs = {mode: reference(spec, raw, metrics.fid_samples, mode, net, store) for mode in metrics.fid_modes}
    tracking.log_params({"fid_network": net.name, "fid_n_reference": metrics.fid_samples})
    return {"network": net.describe(), "keys": {m: r.key for m, r in refs.items()},
            "cached": {m: r.cached for m, r in refs.items()}}
