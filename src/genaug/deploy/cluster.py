"""A Kubernetes API client and namespace: the pod's ServiceAccount inside a cluster, else
the kubeconfig ($KUBECONFIG or ~/.kube/config) and its current context's namespace."""

from __future__ import annotations

import os
from pathlib import Path

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ClusterError(RuntimeError):
    """No Kubernetes API to talk to; the message says what was looked for."""


def connect():
    """(kubernetes.client.ApiClient, namespace)."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    if os.environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT / "token").is_file():
        config.load_incluster_config()
        return client.ApiClient(), (SERVICE_ACCOUNT / "namespace").read_text().strip()
    # kubernetes.config reads $KUBECONFIG when it is imported; read it now.
    path = os.environ.get("KUBECONFIG") or None
    try:
        config.load_kube_config(config_file=path)
        _, context = config.list_kube_config_contexts(config_file=path)
    except (ConfigException, OSError) as err:
        raise ClusterError(f"no Kubernetes API: this is not a pod of a cluster and no kubeconfig was found "
                           f"({err}); NODES > 1 runs on a Kubeflow cluster (make pipeline TARGET=kfp)") from err
    return client.ApiClient(), context["context"].get("namespace") or "default"
