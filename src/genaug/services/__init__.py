"""The services genaug talks to (S3, MLflow, Triton), as production code sees them: their
names (``names``) and where to find them (``endpoints``).

Production code imports these and never ``genaug.stack``, which starts the local dev stack
and reads the same names from here.
"""
