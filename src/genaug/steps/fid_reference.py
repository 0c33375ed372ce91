"""The real data's reference features for FID, before the experiment measures its generators
in parallel, computed once per (dataset, split, N, mode, network) and cached in S3."""

from __future__ import annotations

from genaug import accel
from genaug.data.decoded import reference_data
from genaug.metrics import feature_net
from genaug.metrics.reference import reference
from genaug.sections import LATEST_DATA, DataConfig, MetricsConfig
from genaug.services import tracking
from genaug.services.store import optional_store
from genaug.steps.timing import timed_step


@timed_step
def fid_reference(dataset: str, parent_run_id: str = "", version: str = LATEST_DATA, *,
                  metrics: MetricsConfig, data: DataConfig | None = None) -> dict:
    """Make sure the reference features that ``metrics`` asks for exist in the cache
    (computing them once); returns their cache keys, per mode. Runs before generators are
    measured in parallel. ``version``: a user dataset's version ("latest", a label or an id);
    ``data``: the run's data section, whose resolution the arms' data will have."""
    metrics, data = MetricsConfig.coerce(metrics), DataConfig.coerce(data)
    store = optional_store()
    net, origin = feature_net.for_profile(metrics.fid_network, store, accel.pick().device)
    if net is None:
        return {"network": None, "reason": origin, "keys": {}}
    spec, raw = reference_data(dataset, version, store, data=data)
    refs = {mode: reference(spec, raw, metrics.fid_samples, mode, net, store) for mode in metrics.fid_modes}
    tracking.log_params({"fid_network": net.name, "fid_n_reference": metrics.fid_samples})
    return {"network": net.describe(), "keys": {m: r.key for m, r in refs.items()},
            "cached": {m: r.cached for m, r in refs.items()}}
