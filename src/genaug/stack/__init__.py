"""The local stack of real servers: SeaweedFS (S3), MLflow and Triton on loopback.

    python -m genaug.stack up|down|status      (or: make up / make down / make status)

The local dev stack only: production code never imports it. The names it serves under
(buckets, Triton's admin header) are genaug.services.names'. Tests and operator commands
read a stack's admin key with ``from genaug.stack import admin_key``.
Reconciling Triton with the promotion ledger is serving's job (genaug.serving.reconcile);
``up`` runs one pass.

Modules: ``config`` (paths, ports), ``credentials`` (keys), ``ports``, ``procs``
(pid files, process groups), one module per server (``seaweed``, ``mlflow_server``,
``triton_server`` with ``triton_venv``), ``launcher`` (up/down/status), ``cli``.
"""

from genaug.stack.credentials import admin_key
from genaug.stack.errors import StackError

__all__ = ["StackError", "admin_key"]
