"""Prepare an S3 server for genaug: the buckets, Triton's repository prefix, the lifecycle
rules of the prefixes that only expire (genaug.ops.lifecycle), and (MinIO only)
one user per client with only the access it needs. Idempotent: every run converges.

    python -m genaug.deploy.buckets [--users]

S3 endpoint and admin keys from GENAUG_S3_ENDPOINT / GENAUG_S3_ACCESS_KEY /
GENAUG_S3_SECRET_KEY / GENAUG_S3_SECURE. ``--users`` (the bundled MinIO; not on a store
that KFP ships, whose admin API differs) also reads, for each client in ``CLIENTS``,
GENAUG_<CLIENT>_ACCESS_KEY and GENAUG_<CLIENT>_SECRET_KEY, and creates that user with its
policy:
- pipeline: read/write on every genaug bucket but genaug-triton (the steps);
- promote: read/write on genaug-triton only: the model repository and the promotion ledger
  (the promote step and Triton's reconciler; no other identity can change what is served);
- mlflow: read/write on genaug-mlflow (the artifact store it proxies);
- triton: read-only on genaug-triton (its model repository);
- backup: read-only on genaug-mlflow and genaug-triton (the backup CronJob, docs/backup.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

from genaug.ops import lifecycle
from genaug.services.names import BUCKETS, MLFLOW_BUCKET, TRITON_BUCKET, TRITON_PLACEHOLDER, TRITON_PLACEHOLDER_KEY
from genaug.services.store import Store, StoreError

READ = ["s3:GetObject", "s3:GetBucketLocation", "s3:ListBucket"]
WRITE = READ + ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
                "s3:ListBucketMultipartUploads"]


@dataclass(frozen=True)
class Client:
    """One S3 user: its name (also the env prefix and policy name), buckets and actions."""

    name: str
    buckets: tuple[str, ...]
    actions: tuple[str, ...]

    @property
    def policy_name(self) -> str:
        return f"genaug-{self.name}"

    def policy(self) -> dict:
        """An S3 IAM policy document granting ``actions`` on ``buckets`` and their objects."""
        resources = [f"arn:aws:s3:::{b}" for b in self.buckets] + [f"arn:aws:s3:::{b}/*" for b in self.buckets]
        return {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": list(self.actions), "Resource": resources}]}

    def keys(self, env=os.environ) -> tuple[str, str]:
        names = [f"GENAUG_{self.name.upper()}_ACCESS_KEY", f"GENAUG_{self.name.upper()}_SECRET_KEY"]
        missing = [n for n in names if not env.get(n)]
        if missing:
            raise StoreError(f"{', '.join(missing)} not set; they come from the "
                             "Secret genaug-minio-users (manifests/base/services/secrets/minio-users.env)")
        return env[names[0]], env[names[1]]


CLIENTS = (
    Client("pipeline", tuple(b for b in BUCKETS if b != TRITON_BUCKET), tuple(WRITE)),
    Client("promote", (TRITON_BUCKET,), tuple(WRITE)),
    Client("mlflow", (MLFLOW_BUCKET,), tuple(WRITE)),
    Client("triton", (TRITON_BUCKET,), tuple(READ)),
    Client("backup", (MLFLOW_BUCKET, TRITON_BUCKET), tuple(READ)),
)


def ensure_buckets(store: Store) -> list[str]:
    """Create the missing buckets and Triton's repository prefix; what was done, as lines."""
    done = []
    for bucket in BUCKETS:
        store.ensure_bucket(bucket)
        done.append(f"bucket {bucket} ok")
    if not store.exists(TRITON_BUCKET, TRITON_PLACEHOLDER_KEY):
        store.put_bytes(TRITON_BUCKET, TRITON_PLACEHOLDER_KEY, TRITON_PLACEHOLDER)
        done.append(f"wrote s3://{TRITON_BUCKET}/{TRITON_PLACEHOLDER_KEY} (Triton needs a non-empty prefix)")
    return done


def ensure_users(store: Store, env=os.environ) -> list[str]:
    """MinIO only: each client's user and policy, replaced with the current definition."""
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    cfg = store.config
    admin = MinioAdmin(endpoint=cfg.endpoint, credentials=StaticProvider(cfg.access_key, cfg.secret_key),
                       secure=cfg.secure)
    done = []
    for client in CLIENTS:
        access, secret = client.keys(env)
        try:
            admin.policy_add(client.policy_name, policy=client.policy())
            admin.user_add(access, secret)
        except Exception as err:  # the SDK raises plain exceptions with the server's answer
            raise StoreError(f"the MinIO admin API of {cfg.endpoint} refused to create user {access!r} "
                             f"({type(err).__name__}: {str(err)[:200]}); --users needs MinIO and its root keys. "
                             "On a store KFP ships (manifests/overlays/byo-s3) run without --users") from err
        try:
            admin.attach_policy([client.policy_name], user=access)
        except Exception as err:  # MinIO refuses to attach a policy that is already attached
            if "already" not in str(err).lower():
                raise StoreError(f"cannot attach {client.policy_name} to {access!r} on {cfg.endpoint}: {err}") from err
        done.append(f"user {access} ({client.name}): {client.policy_name} on {', '.join(client.buckets)}")
    return done


def _lifecycle(store: Store) -> list[str]:
    """The lifecycle rules, or a line saying why not: a store that refuses them (a shared one
    whose keys may not change bucket configuration) only leaves ``genaug gc`` to sweep."""
    try:
        return lifecycle.apply(store)
    except StoreError as err:
        return [f"lifecycle rules not set ({err}); `genaug gc` sweeps .staging/ instead"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genaug.deploy.buckets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", action="store_true", help="also create the per-client MinIO users")
    args = parser.parse_args(argv)
    try:
        store = Store(timeout_s=5.0)
        lines = ensure_buckets(store) + _lifecycle(store)
        if args.users:
            lines += ensure_users(store)
    except StoreError as err:
        print(f"genaug.deploy.buckets: {err}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
