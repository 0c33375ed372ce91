"""The services genaug talks to (S3, MLflow, Triton), as production code sees them: their
names (``names``), where to find them (``endpoints``), and the clients every part shares:
``store`` (S3), ``tracking`` (MLflow) and ``triton`` (Triton's HTTP and gRPC APIs).

Production code imports these and never ``genaug.stack``, which starts the local dev stack
and reads the same names from here.
"""
