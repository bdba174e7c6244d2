"""``open_file_store``: the data dir unless ``MEETD_S3_BUCKET`` names a bucket."""

from __future__ import annotations

from meetd.clock import Clock
from meetd.files import FileStore
from meetd.files.local import LocalFileStore
from meetd.settings import Settings


def open_file_store(settings: Settings, signing_key: bytes, clock: Clock) -> FileStore:
    """The store for these settings; ``signing_key`` signs upload forms and download links."""
    if settings.s3_bucket is None:
        return LocalFileStore(
            settings.data_dir / "files",
            public_url=settings.public_url,
            signing_key=signing_key,
            clock=clock,
        )
    # Importing boto3 takes about 0.15 s: only deployments with a bucket pay for it.
    from meetd.files.s3 import S3FileStore, s3_client

    return S3FileStore(
        s3_client(settings),
        settings.s3_bucket,
        public_url=settings.public_url,
        signing_key=signing_key,
        clock=clock,
    )
