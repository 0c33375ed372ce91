"""Serving: the Triton model repository in S3, promotion with gates, the gRPC client."""
