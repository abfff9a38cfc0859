"""The bucket as a run talks to it: obstore's store for every object write, what today's folders hold, and
botocore's client for the calls obstore cannot make, which may be made only when the first of them comes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from s3_landing.config import Settings
from s3_landing.discovery import RemoteObject, list_remote_objects
from s3_landing.transfer.engine import list_objects

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from obstore.store import S3Store


@dataclass(frozen=True)
class Destination:
    """The bucket as this run talks to it.
    - kms: its objects are KMS-encrypted, so their ETags are no MD5s (from --sse, or the bucket's default encryption,
      which the write probe's answer names).
    - clients: botocore's client (made on the first call, when the run started without it).
    - clock_skew: the server's clock minus ours, in seconds; None until a HeadBucket was made.
    - write_proven: the write probe was made; when False, the run's first write is its proof."""

    store: S3Store
    remote: dict[str, RemoteObject]
    kms: bool
    sends_checksums: bool
    checks_checksums: Callable[[], bool]  # botocore_calls.ChecksumCheck
    clients: Callable[[], S3Client]
    clock_skew: float | None = None
    write_proven: bool = True
    probes_begun: dict[str, float] = field(default_factory=dict)  # the checksum probe's upload, once it begins

    @property
    def client(self) -> S3Client:
        return self.clients()


def list_folder(
    store: S3Store, clients: Callable[[], S3Client], settings: Settings, folder: str
) -> dict[str, RemoteObject]:
    """The engine's listing; botocore's where the engine cannot list the folder or read the store's listing."""
    listed = list_objects(store, folder)
    return listed if listed is not None else list_remote_objects(clients(), settings.target.bucket, folder)
