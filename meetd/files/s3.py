"""Files in an S3-compatible bucket (AWS S3, MinIO, Ceph, …), chosen by ``MEETD_S3_BUCKET``.

Clients upload straight to the bucket with presigned POST forms, the way Vonage's own
service worked, and recordings download from presigned GET links. Logos stay at
``{public_url}/files/logos/…`` whatever the store (meetd proxies them), so a theme's URLs do
not depend on the bucket being public.

Only calls every S3-compatible store answers are used: path-style addressing, checksums
only where an operation requires them, single-object deletes. Stale temporary uploads are
deleted by listing their prefix rather than by a lifecycle rule, which not every store has.
"""

from __future__ import annotations

import sys
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from meetd.clock import Clock
from meetd.files import (
    TEMPORARY_PREFIX,
    UPLOAD_FORM_SECONDS,
    StoredFile,
    UploadForm,
    is_stale,
    links,
)
from meetd.files.keys import check_key, is_valid_key
from meetd.settings import Settings

DEFAULT_REGION = "us-east-1"
_MISSING = {"404", "NoSuchKey", "NotFound"}


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client for the configured endpoint. Without MEETD_S3_ACCESS_KEY_ID, boto3
    finds credentials its usual way (environment, profile, instance role)."""
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        # botocore >= 1.36 adds CRC checksums to every upload by default; some
        # S3-compatible stores refuse them. Send them only where S3 requires one.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region or DEFAULT_REGION,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        config=config,
    )


class S3FileStore(links.MeetdLinks):
    """Links meetd signed itself (``download_url`` here points at the bucket instead) keep
    working, redirected, when a deployment moves its files from the data dir to a bucket."""

    def __init__(
        self, client: Any, bucket: str, *, public_url: str, signing_key: bytes, clock: Clock
    ) -> None:
        super().__init__(public_url=public_url, signing_key=signing_key, clock=clock)
        self.client = client
        self.bucket = bucket

    def upload_form(
        self, key: str, *, content_type: str, max_bytes: int, extra_fields: dict[str, str]
    ) -> UploadForm:
        # S3 refuses a form carrying a field its policy does not name, so every plain field
        # is a condition too (boto3 adds the bucket's and the key's itself).
        plain = {"Content-Type": content_type, **extra_fields}
        conditions: list[Any] = [{name: value} for name, value in plain.items()]
        conditions.append(["content-length-range", 1, max_bytes])
        post = self.client.generate_presigned_post(
            self.bucket,
            check_key(key),
            Fields={**plain, "bucket": self.bucket},
            Conditions=conditions,
            ExpiresIn=UPLOAD_FORM_SECONDS,
        )
        signed: dict[str, str] = post["fields"]
        # Vonage's order: Content-Type, key, the extra fields, bucket, then the signature.
        fields = {"Content-Type": content_type, "key": key, **extra_fields, "bucket": self.bucket}
        fields.update((name, value) for name, value in signed.items() if name not in fields)
        return UploadForm(url=str(post["url"]), fields=fields)

    def read(self, key: str) -> bytes | None:
        found = self.fetch(key, max_bytes=sys.maxsize)
        return None if found is None else found.data

    def fetch(self, key: str, *, max_bytes: int) -> StoredFile | None:
        if not is_valid_key(key):
            return None
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        # One GET: the length, LastModified and body all belong to the same object version.
        size = int(found["ContentLength"])
        with found["Body"] as body:
            data = bytes(body.read()) if size <= max_bytes else None
        return StoredFile(size=size, modified=found["LastModified"].timestamp(), data=data)

    def write(self, key: str, data: bytes, *, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type
        )

    def delete(self, key: str) -> None:
        if is_valid_key(key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def download_url(self, key: str, *, expires_in: int) -> str:
        url = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": check_key(key)},
            ExpiresIn=expires_in,
        )
        return str(url)

    def delete_stale_temporary(self, now: float) -> int:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=TEMPORARY_PREFIX
        )
        deleted = 0
        for page in pages:
            for found in page.get("Contents", []):
                if is_stale(found["LastModified"].timestamp(), now):
                    # One at a time: DeleteObjects needs a checksum header that not every
                    # S3-compatible store accepts, and there are only a few per hour.
                    self.client.delete_object(Bucket=self.bucket, Key=found["Key"])
                    deleted += 1
        return deleted


def _is_missing(error: Any) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING
