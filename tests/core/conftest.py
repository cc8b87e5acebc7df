"""Fixtures of the core tests: a real S3 API server (moto's) for the artifact store."""

from tests.support.s3 import s3_bucket, s3_endpoint  # noqa: F401 (fixtures)
