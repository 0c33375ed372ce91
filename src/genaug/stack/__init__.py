"""The local stack of real servers: SeaweedFS (S3), MLflow and Triton on loopback.

    python -m genaug.stack up|down|status      (or: make up / make down / make status)

Library use (e.g. by promotion):

    from genaug.stack import admin_key, admin_headers, reconcile
    reconcile(triton_grpc, admin_key(), minio_client)

Modules: ``config`` (paths, ports, names), ``credentials`` (keys), ``ports``, ``procs``
(pid files, process groups), one module per server (``seaweed``, ``mlflow_server``,
``triton_server`` with ``triton_venv``), ``reconcile``, ``launcher`` (up/down/status), ``cli``.
"""

from genaug.stack.config import BUCKETS, LEDGER_KEY, TRITON_BUCKET
from genaug.stack.credentials import ADMIN_HEADER, ADMIN_KEY_ENV, admin_headers, admin_key
from genaug.stack.errors import StackError
from genaug.stack.reconcile import ReconcileReport, read_ledger, reconcile

__all__ = ["ADMIN_HEADER", "ADMIN_KEY_ENV", "BUCKETS", "LEDGER_KEY", "TRITON_BUCKET", "ReconcileReport",
           "StackError", "admin_headers", "admin_key", "read_ledger", "reconcile"]
