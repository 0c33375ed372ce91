"""The local stack of real servers: SeaweedFS (S3), MLflow and Triton on loopback.

    python -m genaug.stack up|down|status      (or: make up / make down / make status)

Library use (e.g. by promotion): ``from genaug.stack import admin_key, admin_headers``.
Reconciling Triton with the promotion ledger is serving's job (genaug.serving.reconcile);
``up`` runs one pass.

Modules: ``config`` (paths, ports, names), ``credentials`` (keys), ``ports``, ``procs``
(pid files, process groups), one module per server (``seaweed``, ``mlflow_server``,
``triton_server`` with ``triton_venv``), ``launcher`` (up/down/status), ``cli``.
"""

from genaug.stack.config import BUCKETS, TRITON_BUCKET
from genaug.stack.credentials import ADMIN_HEADER, ADMIN_KEY_ENV, admin_headers, admin_key
from genaug.stack.errors import StackError

__all__ = ["ADMIN_HEADER", "ADMIN_KEY_ENV", "BUCKETS", "TRITON_BUCKET", "StackError", "admin_headers", "admin_key"]
