"""What the cluster deployment (manifests/) runs besides the pipeline steps.

- ``buckets``: the set-up Job: buckets, Triton's repository prefix and, on the bundled
  MinIO, one least-privilege user per client (pipeline, MLflow, Triton read-only).
- ``reconciler``: the sidecar next to Triton that loads the promotion ledger's champions
  after every start and keeps them loaded, one model at a time.
"""
