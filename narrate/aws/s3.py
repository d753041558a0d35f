"""S3 locations and objects as narrate uses them: every object encrypted, inputs fetched atomically."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from narrate.errors import ConfigError
from narrate.files import write_bytes_atomic

if TYPE_CHECKING:
    from narrate.aws.clients import AwsClients


def split_s3(location: str) -> tuple[str, str]:
    """(bucket, key) of an ``s3://bucket/key`` location."""
    parsed = urlparse(location)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// location: {location!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def s3_encryption(kms_key_id: str | None) -> dict[str, str]:
    """Server-side encryption arguments for every object narrate writes to S3."""
    if kms_key_id:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    return {"ServerSideEncryption": "AES256"}


def fetch_to_local(location: str, folder: Path, clients: AwsClients) -> Path:
    """A local path as it is, or an ``s3://`` object downloaded (atomically) under ``folder``."""
    if not location.startswith("s3://"):
        return Path(location)
    bucket, _, key = location.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise ConfigError(f"{location}: not an s3://bucket/key URI")
    target = folder / hashlib.sha256(location.encode()).hexdigest()[:16] / Path(key).name
    try:
        body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise ConfigError(f"{location}: could not read it from S3 ({exc.__class__.__name__})") from None
    return write_bytes_atomic(target, body)
