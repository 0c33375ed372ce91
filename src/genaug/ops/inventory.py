"""What an installation holds, as plain data: the input of the retention plan.

``genaug.ops.collect`` reads it from the servers; tests build it by hand. Times are unix
seconds, sizes bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StoredObject:
    """One S3 object."""

    bucket: str
    key: str
    size: int
    modified: float

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version of MLflow, with the aliases that point at it."""

    model: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrackedRun:
    """An active MLflow run: its pipeline run, the checkpoint it trained from (an s3:// URI)
    and the digests of the datasets it logged as inputs."""

    run_id: str
    start: float
    pipeline_run_id: str | None = None
    checkpoint: str | None = None
    data_digests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """One version of a dataset: the objects its manifest names (keys in the datasets
    bucket) and the objects of its own folder (manifest, metadata, decoded caches)."""

    dataset: str
    version: str
    created: float
    objects: frozenset[str]
    files: tuple[StoredObject, ...] = ()


@dataclass(frozen=True)
class DatasetPointers:
    """A dataset's latest version and its labelled ones."""

    dataset: str
    latest: str | None
    labelled: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PipelineOutput:
    """One task output under the KFP pipeline root: a local path or an s3:// URI."""

    location: str
    task: str
    size: int
    modified: float


@dataclass
class Inventory:
    now: float
    ledger: dict[str, dict] = field(default_factory=dict)               # model -> ledger record
    triton_files: dict[str, dict[str, dict]] = field(default_factory=dict)  # model -> rel path -> {"size"}
    versions: list[ModelVersion] = field(default_factory=list)
    runs: list[TrackedRun] = field(default_factory=list)
    checkpoints: list[StoredObject] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    pointers: list[DatasetPointers] = field(default_factory=list)
    dataset_objects: list[StoredObject] = field(default_factory=list)   # content objects and raw copies
    pinned_objects: frozenset[str] = frozenset()                         # keys a cache index names
    outputs: list[PipelineOutput] = field(default_factory=list)
    cached_outputs: frozenset[str] = frozenset()                        # locations KFP's cache points to
    staging: list[StoredObject] = field(default_factory=list)
