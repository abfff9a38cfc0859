"""Discovery and plan: the CSV files of the source folder, and the key and remote state of each."""

from __future__ import annotations

import datetime as dt
import functools
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from s3_landing.config import Settings, Shard

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


MIB = 1024 * 1024
MULTIPART_THRESHOLD = 16 * MIB
MIN_PART_SIZE = 8 * MIB
MAX_PARTS = 10_000
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class SourceFile:
    """A CSV file as discovery saw it: `path` as found under the source folder (what messages and manifests name),
    `real_path` with every link resolved (what is opened), the identity and state that opening must find, and the
    resolved source folder the opened file must lie in (None when links outside it are followed)."""

    path: Path
    real_path: str
    size: int
    mtime_ns: int
    device: int
    inode: int
    inside: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Problem:
    """Something found while walking that cannot be uploaded; `fails_run` makes the exit code 1."""

    path: Path
    reason: str
    fails_run: bool = True
    collision: bool = False  # another file of the same name maps to the same key


BACKSLASH_WARNING = (
    "the name holds a backslash, which some S3-compatible stores turn into '/': there the object lands under "
    "another key and the file is sent again on every run; rename it if that store is yours"
)
LINK_OPT_IN = "set --follow-links-outside or FOLLOW_LINKS_OUTSIDE=true to follow such links"


def is_csv_name(name: str) -> bool:
    return name.lower().endswith(".csv")


def is_inside(path: str, real_root: str) -> bool:
    return path == real_root or path.startswith(real_root.rstrip(os.sep) + os.sep)


def inspect_csv_entry(entry: os.DirEntry[str], real_path: str, inside: str | None) -> SourceFile | Problem:
    path = Path(entry.path)
    try:
        info = entry.stat(follow_symlinks=True)
    except FileNotFoundError:
        return Problem(path, "broken symbolic link: its target does not exist")
    except OSError as error:
        return Problem(path, f"cannot read file information ({error.strerror})")
    if not stat.S_ISREG(info.st_mode):
        return Problem(path, "not a regular file (FIFO, socket or device): only regular files are uploaded")
    return SourceFile(path, real_path, info.st_size, info.st_mtime_ns, info.st_dev, info.st_ino, inside)


def is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:  # a link to itself, or a link in a folder that can be listed but not entered
        return False  # then inspect_csv_entry names the problem, if it is a CSV


def sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted((entry for entry in entries if not entry.name.startswith(".")), key=lambda entry: entry.name)


def link_leaving(entry: os.DirEntry[str], real_path: str, is_dir: bool) -> Problem:
    if is_dir:
        reason = f"symbolic link to the folder {real_path}, outside the source folder: its files were not uploaded"
    else:
        reason = f"symbolic link to {real_path}, outside the source folder: not opened"
    return Problem(Path(entry.path), f"{reason}; {LINK_OPT_IN}")


def walk_csv_files(root: Path, follow_links_outside: bool = False) -> Iterator[SourceFile | Problem]:
    """CSV files below root in a stable order, hidden names ignored. Symbolic links are followed while their
    resolved target stays inside root (anywhere with follow_links_outside); each folder is walked once."""
    real_root = os.path.realpath(root)
    visited: set[tuple[int, int]] = set()
    folders = [root]
    while folders:
        folder = folders.pop()
        real_folder = os.path.realpath(folder)
        if not follow_links_outside and not is_inside(real_folder, real_root):  # swapped for a link since listed
            yield Problem(folder, f"now leads outside the source folder, to {real_folder}: not walked; {LINK_OPT_IN}")
            continue
        try:
            identity = os.stat(real_folder)
            if (identity.st_dev, identity.st_ino) in visited:
                yield Problem(folder, "folder already visited through a symbolic link: skipped", fails_run=False)
                continue
            visited.add((identity.st_dev, identity.st_ino))
            entries = sorted_entries(folder)
        except OSError as error:
            yield Problem(folder, f"cannot read folder ({error.strerror}): its CSV files were not uploaded")
            continue
        subfolders = []
        for entry in entries:
            linked = entry.is_symlink()
            real_path = os.path.realpath(entry.path) if linked else os.path.join(real_folder, entry.name)
            is_dir = is_folder(entry)
            if linked and not follow_links_outside and not is_inside(real_path, real_root):
                if is_dir or is_csv_name(entry.name):
                    yield link_leaving(entry, real_path, is_dir)
            elif is_dir:
                subfolders.append(Path(entry.path))
            elif is_csv_name(entry.name):
                yield inspect_csv_entry(entry, real_path, None if follow_links_outside else real_root)
        folders.extend(reversed(subfolders))


@dataclass(frozen=True)
class Inventory:
    """What this shard will handle, as the one walk that decides it found it: file-name counts (for key
    collisions) and the identity (device, inode) of each name's file, files and bytes (for progress); and what the
    whole folder holds, every shard's: CSV files and the entries that fail (a CSV that is a link leaving the folder,
    an unreadable file or folder), so that a folder is only called empty when it is. The plan walks the folder again
    to hand out the files one at a time (holding 100,000 of them would take 60-70 MB) and takes only the files this
    walk decided."""

    names: dict[str, int]
    identities: dict[str, tuple[int, int]]
    files: int
    bytes: int
    files_in_folder: int


def take_inventory(
    root: Path, shard: Shard, follow_links_outside: bool = False, first_found: Callable[[], object] | None = None
) -> Inventory:
    """The Inventory; first_found is called when the walk finds this shard's first file."""
    names: dict[str, int] = {}
    identities: dict[str, tuple[int, int]] = {}
    files = size = in_folder = 0
    for item in walk_csv_files(root, follow_links_outside):
        in_folder += isinstance(item, SourceFile) or item.fails_run
        if isinstance(item, SourceFile) and shard.owns(item.name):
            names[item.name] = names.get(item.name, 0) + 1
            identities.setdefault(item.name, (item.device, item.inode))
            files += 1
            size += item.size
            if files == 1 and first_found is not None:
                first_found()
    return Inventory(names, identities, files, size, in_folder)


@dataclass(frozen=True)
class RemoteObject:
    size: int
    etag: str


@dataclass(frozen=True)
class Deferred:
    """A file modified less than MIN_AGE ago, or in the future: perhaps still being written, so it is not opened
    and waits for the next run. age: seconds since its modification (negative when in the future)."""

    source: SourceFile
    key: str
    age: float

    def why(self, min_age: float, then: str) -> str:
        """Its age against MIN_AGE, then what becomes of it (the upload's and --check's words)."""
        if self.age < 0:
            return f"modified {-self.age:.0f} s in the future by this machine's clock: {then} (MIN_AGE)"
        return f"modified {self.age:.0f} s ago, less than MIN_AGE ({min_age:g} s): {then}"


@dataclass(frozen=True)
class Job:
    source: SourceFile
    key: str
    remote: RemoteObject | None

    @property
    def same_size_in_bucket(self) -> bool:
        return self.remote is not None and self.remote.size == self.source.size

    @property
    def may_be_unchanged(self) -> bool:
        """The bucket holds an object of the same size, with an ETag to compare the content with."""
        return self.same_size_in_bucket and bool(self.remote and self.remote.etag)


def category_for(file_name: str) -> str:
    return "Movies" if "movies" in file_name.lower() else "Series"


@functools.cache  # formatting the date cost more than the rest of planning a file
def date_folder(prefix: str, category: str, date: dt.date) -> str:
    parts = [prefix, category, f"{date:%Y}", f"{date:%m}", f"{date:%d}"]
    return "/".join(part for part in parts if part) + "/"


def object_key(prefix: str, date: dt.date, file_name: str) -> str:
    return date_folder(prefix, category_for(file_name), date) + file_name


def manifest_key(settings: Settings, run_id: str) -> str:
    return date_folder(settings.target.prefix, "_manifests", settings.target.date) + f"{run_id}.json"


def key_problem(key: str) -> str | None:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "file name is not valid UTF-8, which S3 keys require: rename the file"
    if size > MAX_KEY_BYTES:
        return f"key would be {size} bytes, S3 allows {MAX_KEY_BYTES}: shorten the file name or the prefix"
    return None


APPEARED = "appeared after the run counted the folder's files: left for the next run"


def plan_jobs(
    settings: Settings, inventory: Inventory, remote: dict[str, RemoteObject]
) -> Iterator[Job | Problem | Deferred]:
    """One Job per uploadable file of this shard that the inventory counted; a Problem for anything that cannot go
    (collisions too), or that the inventory did not see (a file that appeared since); Deferred for a file younger
    than MIN_AGE."""
    now, min_age = time.time(), settings.source.min_age
    for item in walk_csv_files(settings.source.folder, settings.source.follow_links_outside):
        if not settings.source.shard.owns(item.path.name):
            continue
        if isinstance(item, Problem):
            yield item
            continue
        if "\\" in item.name:
            yield Problem(item.path, BACKSLASH_WARNING, fails_run=False)
        key = object_key(settings.target.prefix, settings.target.date, item.name)
        problem = key_problem(key)
        count = inventory.names.get(item.name, 0)
        if problem is not None:
            yield Problem(item.path, problem)
        elif count > 1:
            reason = f"{count} files named {item.name!r} map to the same key {key}: rename all but one"
            yield Problem(item.path, reason, collision=True)
        elif inventory.identities.get(item.name) != (item.device, item.inode):
            yield Problem(item.path, APPEARED, fails_run=False)
        elif min_age and (age := now - item.mtime_ns / 1e9) < min_age:
            yield Deferred(item, key, age)
        else:
            yield Job(item, key, remote.get(key))


def list_remote_objects(client: S3Client, bucket: str, folder: str) -> dict[str, RemoteObject]:
    found: dict[str, RemoteObject] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for item in page.get("Contents", []):
            found[item["Key"]] = RemoteObject(item["Size"], item.get("ETag", "").strip('"'))  # some gateways list none
    return found


def today_folders(settings: Settings) -> list[str]:
    return [date_folder(settings.target.prefix, category, settings.target.date) for category in ("Movies", "Series")]


def part_size_for(size: int) -> int:
    """Fixed by the file size alone, so a re-run can recompute the multipart ETag."""
    needed = -(-size // MAX_PARTS)
    return max(MIN_PART_SIZE, -(-needed // MIB) * MIB)
