"""The run manifest: one JSON document per run, an entry per file, spooled to a temporary file as the run goes (so
memory does not grow with the number of files) and written where it was asked for. Uploads and --check use it the
same way: add() an entry for each file as it is reported, then save() with the run's summary."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from s3_landing import __version__
from s3_landing.config import RunMode, Settings
from s3_landing.discovery import manifest_key
from s3_landing.errors import ConfigError, EngineError
from s3_landing.transfer.destination import Destination
from s3_landing.transfer.files import Outcome
from s3_landing.transfer.uploads import write_document

VERSIONS = {RunMode.UPLOAD: 1, RunMode.CHECK: 2}  # --check's findings: version 2, with "mode": "check"
NO_STATS = {"sha256": None, "header": None, "delimiter": None, "rows": None}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def outcome_entry(outcome: Outcome, source: Path) -> dict[str, Any]:
    """An upload's entry: the file, its status, its content details and its object's receipt."""
    receipt = outcome.receipt
    return {
        "path": os.path.relpath(outcome.path, source),
        "key": outcome.key,
        "size": outcome.size,
        "status": outcome.status.value,
        "reason": outcome.reason or None,
        **(outcome.stats or NO_STATS),
        "etag": receipt.etag if receipt else None,
        "version_id": receipt.version_id if receipt else None,
        "checksum_sha256": (receipt.checksum_sha256 or None) if receipt else None,
        "proof": (receipt.proof or None) if receipt else None,
    }


class ManifestWriter:
    """The run's lineage record (uploads) or findings (--check)."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        self.settings = settings
        self.run_id = run_id
        self.started_at = utc_now()
        try:
            self.entries = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 - closed by save()
        except OSError as error:
            raise ConfigError(
                f"no writable temporary folder for the manifest ({error.strerror or error}): set TMPDIR, "
                "or give the container one (docker run --tmpfs /tmp)"
            ) from None
        self.lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.entries.write(json.dumps(entry, ensure_ascii=True) + "\n")

    def record(self, summary: Mapping[str, object], interrupted: bool) -> dict[str, Any]:
        settings, mode = self.settings, self.settings.run.mode
        run: dict[str, object] = {
            "id": self.run_id,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "ended_at": utc_now().isoformat(timespec="seconds"),
            "program": "upload_s3",
            "version": __version__,
            "source": str(settings.source.folder),
            "bucket": settings.target.bucket,
            "prefix": settings.target.prefix,
            "date": settings.target.date.isoformat(),
            "shard": {"index": settings.source.shard.index, "count": settings.source.shard.count},
        }
        if mode is RunMode.CHECK:
            run["interrupted"] = interrupted
            return {"manifest_version": VERSIONS[mode], "run": run, "summary": dict(summary), "mode": "check"}
        return {"manifest_version": VERSIONS[mode], "run": run, "summary": dict(summary)}

    def write(self, handle: TextIO, record: dict[str, Any]) -> None:
        head = json.dumps(record, ensure_ascii=True, indent=1)
        handle.write(head[: head.rindex("}")].rstrip() + ',\n "files": [')
        self.entries.seek(0)
        for number, line in enumerate(self.entries):
            handle.write(("\n  " if number == 0 else ",\n  ") + line.rstrip("\n"))
        handle.write("\n ]\n}\n")

    def save(
        self, summary: Mapping[str, object], destination: Destination | None, interrupted: bool = False
    ) -> list[tuple[str, BaseException | None]]:
        """Write the manifest where it was asked for (the same document everywhere), each place whatever became of
        the other; returns each place with the error that kept it from being written, if one did."""
        record = self.record(summary, interrupted)
        output = self.settings.output
        places: list[tuple[str, Callable[[], None]]] = []
        if output.manifest_file is not None:
            target = output.manifest_file
            places.append((str(target), lambda: self.write_file(record, target)))
        if output.manifest_to_bucket and destination is not None:
            key = manifest_key(self.settings, self.run_id)
            place = f"s3://{self.settings.target.bucket}/{key}"
            places.append((place, lambda: self.write_object(record, destination, key)))
        try:
            return [(place, failure_of(write)) for place, write in places]
        finally:
            self.entries.close()

    def write_file(self, record: dict[str, Any], target: Path) -> None:
        partial = target.with_name(target.name + ".partial")
        with partial.open("w", encoding="utf-8") as handle:
            self.write(handle, record)
        partial.replace(target)

    def write_object(self, record: dict[str, Any], destination: Destination, key: str) -> None:
        with tempfile.TemporaryFile(mode="w+b") as buffer:
            with open(buffer.fileno(), "w", encoding="utf-8", closefd=False) as text:
                self.write(text, record)
            buffer.seek(0)
            write_document(destination, self.settings, key, buffer, "application/json")


def failure_of(write: Callable[[], None]) -> BaseException | None:
    from botocore.exceptions import BotoCoreError, ClientError  # the manifest may be written by botocore

    try:
        write()
    except (BotoCoreError, ClientError, EngineError, OSError) as error:
        return error
    return None
