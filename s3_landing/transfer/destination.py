"""The bucket as a run talks to it, prepared up front: client, sender, listings, write check."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import botocore.session
from botocore.exceptions import (
    ClientError,
)

from s3_landing.config import Settings, make_s3_client, new_session
from s3_landing.discovery import RemoteObject, date_folder, list_remote_objects, today_folders
from s3_landing.transfer.sending import PutSender
from s3_landing.transfer.uploads import PARTS_IN_FLIGHT

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


PROBE_SUFFIX = ".upload_s3-write-check"  # the key of the write probe's multipart upload, never completed


@dataclass(frozen=True)
class Destination:
    """The bucket as this run talks to it: botocore's client for listings and multipart calls, a PutSender for
    bodies, and what today's folders already hold."""

    client: S3Client
    sender: PutSender
    remote: dict[str, RemoteObject]


def bucket_region(client: S3Client, bucket: str) -> str | None:
    """The bucket's region as AWS reports it. botocore's own calls follow a wrong region by redirect, but the PUTs
    PutSigner signs for the client's region would be refused, so the client must be made for the right one."""
    try:
        headers = client.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    except ClientError as error:  # a 301 or 403 still names the region
        headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return headers.get("x-amz-bucket-region")


def check_write_access(client: S3Client, settings: Settings) -> None:
    # Starting and aborting a multipart upload proves the right to write without leaving anything behind. It
    # carries the objects' encryption, class, ACL and tags, so a bucket policy that requires them passes it too.
    probe_key = date_folder(settings.prefix, "Movies", settings.date) + PROBE_SUFFIX
    upload = client.create_multipart_upload(Bucket=settings.bucket, Key=probe_key, **settings.writes.parameters())
    client.abort_multipart_upload(Bucket=settings.bucket, Key=probe_key, UploadId=upload["UploadId"])


def survey(
    settings: Settings, session: botocore.session.Session, write_check: bool
) -> tuple[S3Client, dict[str, RemoteObject]]:
    """A client for the bucket's region and what today's folders hold; with write_check, proof that we may write.
    Raises botocore's errors: any of them means the bucket cannot be used."""
    client = make_s3_client(settings, session)
    with cf.ThreadPoolExecutor(4, thread_name_prefix="preflight") as pool:  # one round trip's wait, not four
        listings = [pool.submit(list_remote_objects, client, settings.bucket, f) for f in today_folders(settings)]
        asked_region = pool.submit(bucket_region, client, settings.bucket)
        writing = pool.submit(check_write_access, client, settings) if write_check else None
        remote = {key: found for listing in listings for key, found in listing.result().items()}
        if writing is not None:
            writing.result()
        region = asked_region.result()
    if region not in (None, client.meta.region_name):
        client = make_s3_client(settings, session, region)
    return client, remote


def preflight(settings: Settings, stop: threading.Event) -> Destination:
    """A client, what is already in today's folders, and proof that we may write."""
    session = new_session()
    client, remote = survey(settings, session, write_check=True)
    sender = PutSender(client, session, settings.bucket, settings.concurrency + PARTS_IN_FLIGHT, stop)
    return Destination(client, sender, remote)
