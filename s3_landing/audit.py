"""--check: does the bucket hold exactly these files' bytes? Every local CSV against its object by the skips'
proof rule (the listed ETag's MD5 forms, then what a HEAD shows), and the objects of the day's folders that have no
local file. Read-only: listings and HEADs, nothing is sent."""

from __future__ import annotations

import collections
import functools
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s3_landing.config import Settings
from s3_landing.discovery import Inventory, Job, Problem, RemoteObject, object_key, plan_jobs
from s3_landing.flight import Flight
from s3_landing.report import Event, ManifestWriter, Reporter, Tally, printable
from s3_landing.transfer.destination import read_stored
from s3_landing.transfer.files import FileChanged
from s3_landing.transfer.proof import EVERY_FORM, Digests, compare_listed, compare_stored, digests_of_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FAILING = ("missing", "different", "unverifiable", "collision")
HEADLINES = {
    "present": "Presente",
    "missing": "Ausente",
    "different": "Diferente",
    "unverifiable": "Não verificável",
    "collision": "Colisão",
}
CHECK_MANIFEST_VERSION = 2


@dataclass(frozen=True)
class Finding:
    """What --check found for one local file (path) or one object without a local file (status extra)."""

    status: str  # present, missing, different, unverifiable, collision, extra
    path: Path | None
    key: str | None
    size: int | None
    reason: str = ""
    sha256: str | None = None


def compare_safely(client: S3Client, bucket: str, job: Job) -> Finding:
    """compare, with anything unforeseen made a finding: one file never stops the check of the others."""
    try:
        return compare(client, bucket, job)
    except Exception as error:  # noqa: BLE001 - reported as this file's finding
        reason = f"unexpected error: {type(error).__name__}: {error}"
        return Finding("unverifiable", job.source.path, job.key, job.source.size, reason)


def compare(client: S3Client, bucket: str, job: Job) -> Finding:
    """One local file against its object by the proof rule (transfer/proof.py): the listed ETag in its MD5 forms,
    then what a HEAD shows. No write probe is made, so a store's checksum counts only for KMS-encrypted objects."""
    found = Finding("present", job.source.path, job.key, job.source.size)
    if job.remote is None:
        return replace(found, status="missing", reason="no object under its key")
    if job.remote.size != job.source.size:
        return replace(found, status="different", reason=f"the object has {job.remote.size} bytes")
    try:
        digests = local_digests(job)
    except (OSError, FileChanged) as error:
        return replace(found, status="unverifiable", reason=f"cannot read the file: {error}")
    found = replace(found, sha256=digests.sha256)
    comparison = compare_listed(job.remote, digests)
    if comparison is None:
        comparison = compare_stored(read_stored(client, bucket, job.key), digests, lambda: False)
    if comparison.status == "same":
        return found
    missing = comparison.why == "the object was deleted after the listing"
    return replace(found, status="missing" if missing else comparison.status, reason=comparison.why)


def local_digests(job: Job) -> Digests:
    """Every digest the comparison may need, in one streamed read (memory stays flat)."""
    assert job.remote is not None
    return digests_of_file(job.source, EVERY_FORM)


def problem_finding(problem: Problem, key: str) -> Finding:
    return Finding("collision" if problem.collision else "unverifiable", problem.path, key, None, problem.reason)


def extras(settings: Settings, remote: dict[str, RemoteObject], local_keys: set[str]) -> Iterator[Finding]:
    """Objects of the day's folders with no local file (of this shard: judged by the name, as files are)."""
    for key in sorted(remote):
        name = key.rsplit("/", 1)[-1]
        if key not in local_keys and name and settings.shard.owns(name):
            yield Finding("extra", None, key, remote[key].size, "no local file has this name")


class Audit:
    """Runs the comparisons on a thread pool and reports the findings in the order of the files."""

    def __init__(self, settings: Settings, reporter: Reporter, stop: threading.Event, run_id: str) -> None:
        self.settings = settings
        self.reporter = reporter
        self.stop = stop
        self.counts: collections.Counter[str] = collections.Counter()
        self.manifest = CheckManifest(settings, run_id) if settings.manifest_file else None

    def run(self, inventory: Inventory, client: S3Client, remote: dict[str, RemoteObject]) -> bool:
        """True when every local file is present. remote: what the listings of the day's folders hold."""
        local_keys: set[str] = set()
        concurrency = self.settings.concurrency
        flight: Flight[Job, Finding] = Flight(concurrency, 2 * concurrency, self.stop, self.report, ordered=True)
        with flight:
            for item in plan_jobs(self.settings, inventory, remote):
                flight.make_room()
                if self.stop.is_set():
                    break
                if isinstance(item, Problem) and not item.fails_run:
                    self.reporter.problem(item)  # a warning; the file itself follows
                elif isinstance(item, Problem):
                    key = object_key(self.settings.prefix, self.settings.date, item.path.name)
                    local_keys.add(key)
                    self.report(problem_finding(item, key))
                else:
                    local_keys.add(item.key)
                    flight.submit(item, functools.partial(compare_safely, client, self.settings.bucket, item))
            flight.finish(lambda _job: None)  # after a signal: left out, as the line below says
        if self.stop.is_set():
            text = "Verificação interrompida: the findings below cover only the files checked before the signal"
            self.reporter.emit(Event("interrupted", text, "warning"))
        else:
            for finding in extras(self.settings, remote, local_keys):
                self.report(finding)
        saved = self.summarize()
        return saved and not any(self.counts[status] for status in FAILING)

    def report(self, finding: Finding) -> None:
        self.counts[finding.status] += 1
        if self.manifest is not None:
            self.manifest.add_finding(finding)
        url = printable(f"s3://{self.settings.bucket}/{finding.key or ''}")
        local = printable(str(finding.path)) if finding.path else ""
        reason = printable(finding.reason)
        if finding.status == "extra":
            text, level = f"Aviso: objeto sem arquivo local: {url}", "warning"
        elif finding.status == "present":
            text, level = f"Presente: {local} = {url}", "info"
        else:
            text, level = f"{HEADLINES[finding.status]}: {local} -> {url}: {reason}", "error"
        extra: dict[str, object] = {"sha256": finding.sha256} if finding.sha256 else {}
        event = Event("check", text, level, finding.path, finding.key, finding.size, finding.status, reason or None)
        self.reporter.emit(replace(event, extra=extra))

    def summarize(self) -> bool:
        """The summary line, after the findings' manifest; False when that manifest could not be written."""
        counts = {status: self.counts[status] for status in (*HEADLINES, "extra")}
        text = (
            f"Verificação: {counts['present']} presentes, {counts['missing']} ausentes, {counts['different']} "
            f"diferentes, {counts['unverifiable']} não verificáveis, {counts['collision']} em colisão; "
            f"{counts['extra']} objetos sem arquivo local"
        )
        manifest, interrupted = self.manifest, self.stop.is_set()
        saved = manifest is None or self.reporter.save_manifest(lambda: manifest.save_findings(counts, interrupted))
        self.reporter.emit(Event("summary", text, extra=dict(counts)))
        return saved


class CheckManifest(ManifestWriter):
    """The findings of --check in the manifest's format: manifest_version 2, mode check, a status per file."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        super().__init__(settings, run_id)
        self.counts: dict[str, int] = {}
        self.interrupted = False

    def add_finding(self, finding: Finding) -> None:
        path = os.path.relpath(finding.path, self.settings.source) if finding.path else None
        entry = {"path": path, "key": finding.key, "size": finding.size, "status": finding.status}
        self.add_entry({**entry, "reason": finding.reason or None, "sha256": finding.sha256})

    def run_record(self, tally: Tally) -> dict[str, Any]:
        record = super().run_record(tally)
        record.update({"manifest_version": CHECK_MANIFEST_VERSION, "mode": "check", "summary": self.counts})
        record["run"]["interrupted"] = self.interrupted
        return record

    def save_findings(self, counts: dict[str, int], interrupted: bool) -> list[tuple[str, BaseException | None]]:
        self.counts, self.interrupted = counts, interrupted
        return self.save(Tally(), None)
