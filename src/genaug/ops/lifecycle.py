"""S3 lifecycle rules for the prefixes that only ever expire, set through the S3 API so that
any S3 store applies them (MinIO, AWS S3, Ceph); ``genaug gc`` sweeps the same prefixes on a
store that ignores them.

Only ``.staging/`` qualifies: an upload's staging copy is read back and deleted within
seconds (genaug.services.store), so one older than a day belongs to a process that died.
Everything else may be referenced by a kept run or the ledger, which only gc can tell.

The bucket set-up (genaug.deploy.buckets, the cluster's set-up Job) applies them. The local
stack does not: SeaweedFS turns an expiration rule into a TTL on the files written under
the prefix from then on, and staging copies are copied to their final keys, which must
never inherit a TTL.
"""

from __future__ import annotations

from genaug.services.names import CHECKPOINTS_BUCKET, DATASETS_BUCKET, TRITON_BUCKET
from genaug.services.store import STAGING, Store

EXPIRE_DAYS = 1
RULE_ID = "genaug-staging-expires"
# The buckets genaug's own uploads stage in (MLflow's server writes its bucket without staging).
STAGED_BUCKETS = (DATASETS_BUCKET, CHECKPOINTS_BUCKET, TRITON_BUCKET)


def rules():
    """The lifecycle configuration: ``.staging/`` expires after EXPIRE_DAYS, and multipart
    uploads abandoned for as long are aborted."""
    from minio.commonconfig import ENABLED, Filter
    from minio.lifecycleconfig import AbortIncompleteMultipartUpload, Expiration, LifecycleConfig, Rule

    return LifecycleConfig([Rule(ENABLED, rule_filter=Filter(prefix=f"{STAGING}/"), rule_id=RULE_ID,
                                 expiration=Expiration(days=EXPIRE_DAYS),
                                 abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(
                                     days_after_initiation=EXPIRE_DAYS))])


def describe(config) -> list[dict]:
    """A lifecycle configuration as plain data: per rule its id, prefix and days."""
    if config is None:
        return []
    return [{"id": r.rule_id, "status": r.status, "prefix": r.rule_filter.prefix if r.rule_filter else None,
             "expire_days": r.expiration.days if r.expiration else None,
             "abort_multipart_days": (r.abort_incomplete_multipart_upload.days_after_initiation
                                      if r.abort_incomplete_multipart_upload else None)} for r in config.rules]


def apply(store: Store, buckets=STAGED_BUCKETS) -> list[str]:
    """Set the rules on ``buckets`` (the admin identity: it changes bucket configuration)."""
    lines = []
    for bucket in buckets:
        store.ensure_bucket(bucket)
        store._call(f"setting the lifecycle of s3://{bucket}", store.client.set_bucket_lifecycle, bucket, rules())
        lines.append(f"bucket {bucket}: {STAGING}/ expires after {EXPIRE_DAYS} day(s)")
    return lines


def read(store: Store, bucket: str) -> list[dict]:
    """The bucket's lifecycle rules as the server returns them."""
    return describe(store._call(f"reading the lifecycle of s3://{bucket}", store.client.get_bucket_lifecycle, bucket))
