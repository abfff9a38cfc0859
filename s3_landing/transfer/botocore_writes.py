"""The object writes obstore cannot make, made with botocore's own calls (README, Development):

- keys holding a control character (a newline or ESC in a file name), which object_store's paths refuse;
- on obstore 0.8 (Python 3.9), objects with a canned ACL or a storage class: 0.8 has no storage class and sends
  extra headers unsigned, which S3 refuses;
- with --no-overwrite, multipart uploads: object_store has no conditional completion (object_store#289).

They carry what obstore's writes carry (the file's checksum for the store to check, the lineage metadata, the write
options) and are proven the same way; a multipart upload streams its parts with PARTS_AT_ONCE in flight and is
aborted if anything fails."""

from __future__ import annotations

import base64
import concurrent.futures as cf
import contextlib
import hashlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from s3_landing.objects import WriteOptions
from s3_landing.transfer.engine import Stream, Written

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef


def sha256_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def object_parameters(content_type: str, metadata: dict[str, str], writes: WriteOptions) -> dict[str, Any]:
    return {"ContentType": content_type, "Metadata": metadata, **writes.parameters()}


def put_object(
    client: S3Client, bucket: str, key: str, data: bytes, parameters: dict[str, Any], checksums: bool
) -> Written:
    checksum: dict[str, Any] = {"ChecksumSHA256": sha256_base64(data)} if checksums else {}
    answer = client.put_object(Bucket=bucket, Key=key, Body=data, **checksum, **parameters)
    return Written(answer.get("ETag", "").strip('"'), answer.get("VersionId"))


def put_multipart(
    client: S3Client,
    bucket: str,
    key: str,
    stream: Stream,
    part_size: int,
    parts_at_once: int,
    parameters: dict[str, Any],
    checksums: bool,
    if_none_match: bool = False,
) -> Written:
    """if_none_match: complete only if no object is under the key (412 otherwise, and the upload is aborted)."""
    algorithm: dict[str, Any] = {"ChecksumAlgorithm": "SHA256"} if checksums else {}
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **algorithm, **parameters)["UploadId"]
    condition: dict[str, Any] = {"IfNoneMatch": "*"} if if_none_match else {}
    try:
        parts = send_parts(client, bucket, key, upload_id, stream, part_size, parts_at_once, checksums)
        answer = client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **condition
        )
    except BaseException:
        with contextlib.suppress(BotoCoreError, ClientError):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return Written(answer.get("ETag", "").strip('"'), answer.get("VersionId"))


def send_parts(
    client: S3Client,
    bucket: str,
    key: str,
    upload_id: str,
    stream: Stream,
    part_size: int,
    parts_at_once: int,
    checksums: bool,
) -> list[CompletedPartTypeDef]:
    """The stream read part by part, at most parts_at_once parts held and sent at a time."""

    def send(number: int, data: bytes) -> CompletedPartTypeDef:
        checksum: dict[str, Any] = {"ChecksumSHA256": sha256_base64(data)} if checksums else {}
        answer = client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **checksum
        )
        part: CompletedPartTypeDef = {"PartNumber": number, "ETag": answer["ETag"]}
        if checksums:
            part["ChecksumSHA256"] = checksum["ChecksumSHA256"]
        return part

    with cf.ThreadPoolExecutor(parts_at_once, thread_name_prefix="part") as pool:
        pending: list[cf.Future[CompletedPartTypeDef]] = []
        done: list[CompletedPartTypeDef] = []
        for number, data in enumerate(iter(lambda: read_part(stream, part_size), b""), start=1):
            if len(pending) >= parts_at_once:
                done.append(pending.pop(0).result())
            pending.append(pool.submit(send, number, data))
        done.extend(future.result() for future in pending)
    return done


def read_part(stream: Stream, part_size: int) -> bytes:
    blocks, wanted = [], part_size
    while wanted:
        block = stream.read(wanted)
        if not block:
            break
        blocks.append(block)
        wanted -= len(block)
    return b"".join(blocks)
