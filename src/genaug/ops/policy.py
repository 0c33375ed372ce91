"""The retention policy: what ``genaug gc`` keeps. Its defaults live here and nowhere else.

The command line (``genaug gc --keep-versions 5``), ``make gc`` and the CronJob only ever
override a field; they never restate a default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from genaug.serving.retention import KEEP_OTHERS

DAY_S = 86400.0


@dataclass(frozen=True)
class RetentionPolicy:
    """What stays, whatever the age: every version an alias or the ledger names, and
    everything a kept run uses. Beyond that:

    keep_versions:  per registered model, the newest N versions no alias points to (the
                    same N the promotion keeps in Triton's repository).
    max_age_days:   MLflow runs, pipeline-root outputs (synthetic sets among them) and
                    unreferenced checkpoints or dataset objects younger than this stay.
    keep_snapshots: per dataset, the newest N snapshot versions stay besides the latest,
                    the labelled and the used ones.
    staging_hours:  ``.staging/`` objects (uploads in flight) younger than this stay.
    """

    keep_versions: int = KEEP_OTHERS
    max_age_days: float = 30.0
    keep_snapshots: int = 3
    staging_hours: float = 24.0

    def __post_init__(self):
        for f in fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"retention {f.name}={getattr(self, f.name)} must be >= 0")

    @property
    def max_age_s(self) -> float:
        return self.max_age_days * DAY_S

    @property
    def staging_s(self) -> float:
        return self.staging_hours * 3600.0

    def as_dict(self) -> dict:
        return asdict(self)
