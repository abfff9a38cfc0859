"""Local files as the transfer reads them: opened as discovery saw them, hashed and streamed."""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

from s3_landing.discovery import SourceFile, is_inside
from s3_landing.errors import FileChanged


class Status(str, Enum):
    """What became of a file: the console's line, the JSON event, the tally's count and the manifest's status."""

    UPLOADED = "uploaded"
    SKIPPED = "skipped"  # already there, proven the same
    FAILED = "failed"
    PLANNED = "planned"  # a dry run's
    DEFERRED = "deferred"  # younger than MIN_AGE: left for the next run


class ContentStats:
    """SHA-256, header line, delimiter and data rows of a CSV, fed chunk by chunk as it is read for upload."""

    HEADER_LIMIT = 64 * 1024
    DELIMITERS = ("|", ",", ";", "\t")

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.newlines = 0
        self.last_byte = b""
        self.header = bytearray()
        self.header_done = False

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.sha256.update(chunk)
        self.newlines += chunk.count(b"\n")
        self.last_byte = chunk[-1:]
        if not self.header_done:
            end = chunk.find(b"\n")
            self.header += chunk if end < 0 else chunk[:end]
            self.header_done = end >= 0 or len(self.header) >= self.HEADER_LIMIT
            del self.header[self.HEADER_LIMIT :]

    def summary(self) -> dict[str, Any]:
        lines = self.newlines + (1 if self.last_byte not in (b"", b"\n") else 0)
        header = bytes(self.header).rstrip(b"\r").decode("utf-8", "replace").lstrip("\ufeff")
        counts = {delimiter: header.count(delimiter) for delimiter in self.DELIMITERS}
        delimiter = max(counts, key=lambda candidate: counts[candidate])
        return {
            "sha256": self.sha256.hexdigest(),
            "header": header if lines else None,
            "delimiter": delimiter if counts[delimiter] else None,
            "rows": max(lines - 1, 0),
        }


def feed(stats: ContentStats | None, chunk: bytes) -> None:
    if stats is not None:
        stats.feed(chunk)


@dataclass(frozen=True)
class Receipt:
    """How an object came to count as this file: the ETag and version the write (or the listing) gave, the
    x-amz-checksum-sha256 sent with it, and the proof ("etag", "checksum", or "" for none)."""

    etag: str
    version_id: str | None = None
    checksum_sha256: str = ""
    proof: str = ""
    already_there: bool = False  # a conditional write found the key taken by these same bytes


@dataclass
class Outcome:
    """What became of one file. A failure carries its reason in words, or the error itself for the report
    stage to put into words."""

    path: Path
    status: Status
    key: str | None = None
    size: int | None = None
    reason: str = ""
    stats: dict[str, Any] | None = None
    error: Exception | None = None
    warning: str = ""  # something the user should know about a file that did land
    receipt: Receipt | None = None

    @property
    def bytes_sent(self) -> int:
        return (self.size or 0) if self.status is Status.UPLOADED else 0


def file_chunks(read: Callable[[int], bytes], size: int, chunk_size: int) -> Iterator[bytes]:
    """The file's `size` bytes in chunks, and a check that nothing follows them."""
    remaining = size
    while remaining > 0:
        chunk = read(min(chunk_size, remaining))
        if not chunk:
            raise FileChanged("became shorter while it was read")
        remaining -= len(chunk)
        yield chunk
    if read(1):
        raise FileChanged("grew while it was read")


def open_regular_file(source: SourceFile) -> BinaryIO:
    descriptor = open_checked(source)
    try:
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def open_checked(source: SourceFile) -> int:
    """Open the file discovery checked, and no other: its resolved path, refusing a final link, and only if it is
    still the same file (device and inode) in the same state. O_NONBLOCK: a FIFO swapped in must not block open()."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(source.real_path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise FileChanged("was replaced by a symbolic link since it was found") from None
        raise
    try:
        check_same_file(source, os.fstat(descriptor))
        check_opened_inside(source, descriptor)
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def check_opened_inside(source: SourceFile, descriptor: int) -> None:
    """The file opened lies inside the source folder, wherever links led: a folder on its path swapped for a link
    while discovery ran would have shown discovery the outside file too. Linux tells through /proc."""
    if source.inside is None:
        return
    try:
        opened = os.readlink(f"/proc/self/fd/{descriptor}")
    except OSError:  # no /proc: the device and inode check stands alone
        return
    if not is_inside(opened, source.inside):
        raise FileChanged("now leads outside the source folder (a link was swapped in while it was found): not read")


def check_same_file(source: SourceFile, info: os.stat_result) -> None:
    if (info.st_dev, info.st_ino) != (source.device, source.inode):
        raise FileChanged("was replaced by another file since it was found")
    if not stat.S_ISREG(info.st_mode):
        raise FileChanged("is no longer a regular file")
    if (info.st_size, info.st_mtime_ns) != (source.size, source.mtime_ns):
        raise FileChanged("changed since it was found")


def read_whole(source: SourceFile) -> bytes:
    """The whole file, by its descriptor: a file object per small file cost a tenth of a skip check."""
    descriptor = open_checked(source)
    try:
        return b"".join(file_chunks(functools.partial(os.read, descriptor), source.size, source.size or 1))
    finally:
        os.close(descriptor)


def ensure_unchanged(source: SourceFile) -> None:
    try:
        info = os.stat(source.real_path, follow_symlinks=False)
    except FileNotFoundError:
        raise FileChanged("disappeared during the upload") from None
    if (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns) != (
        source.device,
        source.inode,
        source.size,
        source.mtime_ns,
    ):
        raise FileChanged("changed during the upload")


class BufferBudget:
    """Caps the bytes of small files held in memory by all threads together, so memory stays flat."""

    def __init__(self, limit: int) -> None:
        self.available = limit
        self.condition = threading.Condition()

    def acquire(self, amount: int) -> None:
        with self.condition:
            self.condition.wait_for(lambda: self.available >= amount)
            self.available -= amount

    def release(self, amount: int) -> None:
        with self.condition:
            self.available += amount
            self.condition.notify_all()
