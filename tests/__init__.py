"""The test suite: real PostgreSQL, real Prefect, the model simulator over HTTP."""
