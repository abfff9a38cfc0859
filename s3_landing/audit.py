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
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from s3_landing.config import Settings
from s3_landing.discovery import Deferred, Inventory, Job, Problem, RemoteObject, object_key, plan_jobs
from s3_landing.errors import FileChanged
from s3_landing.flight import Flight
from s3_landing.manifest import ManifestWriter
from s3_landing.report import Event, Reporter, printable
from s3_landing.transfer.botocore_calls import read_stored
from s3_landing.transfer.proof import EVERY_FORM, compare_listed, compare_stored, digests_of_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class Verdict(Enum):
    """What --check says of a file (or of an object no local file has: EXTRA): its status, its line's headline, and
    whether it makes the check fail."""

    PRESENT = ("present", "Presente", False)
    MISSING = ("missing", "Ausente", True)
    DIFFERENT = ("different", "Diferente", True)
    UNVERIFIABLE = ("unverifiable", "Não verificável", True)
    COLLISION = ("collision", "Colisão", True)
    DEFERRED = ("deferred", "Adiado", False)  # younger than MIN_AGE: not compared, reported apart
    EXTRA = ("extra", "Aviso: objeto sem arquivo local", False)

    def __init__(self, status: str, headline: str, failing: bool) -> None:
        self.status = status
        self.headline = headline
        self.failing = failing


COMPARISON_VERDICTS = {"different": Verdict.DIFFERENT, "unverifiable": Verdict.UNVERIFIABLE}


@dataclass(frozen=True)
class Finding:
    """What --check found for one local file (path) or one object without a local file (Verdict.EXTRA)."""

    verdict: Verdict
    path: Path | None
    key: str | None
    size: int | None
    reason: str = ""
    sha256: str | None = None

    def entry(self, source: Path) -> dict[str, Any]:
        """Its entry in the findings' manifest."""
        path = os.path.relpath(self.path, source) if self.path else None
        entry = {"path": path, "key": self.key, "size": self.size, "status": self.verdict.status}
        return {**entry, "reason": self.reason or None, "sha256": self.sha256}


def compare_safely(client: S3Client, bucket: str, job: Job) -> Finding:
    """compare, with anything unforeseen made a finding: one file never stops the check of the others."""
    try:
        return compare(client, bucket, job)
    except Exception as error:  # noqa: BLE001 - reported as this file's finding
        reason = f"unexpected error: {type(error).__name__}: {error}"
        return Finding(Verdict.UNVERIFIABLE, job.source.path, job.key, job.source.size, reason)


def compare(client: S3Client, bucket: str, job: Job) -> Finding:
    """One local file against its object by the proof rule (transfer/proof.py): the listed ETag in its MD5 forms,
    then what a HEAD shows. No write probe is made, so a store's checksum counts only for KMS-encrypted objects."""
    found = Finding(Verdict.PRESENT, job.source.path, job.key, job.source.size)
    if job.remote is None:
        return replace(found, verdict=Verdict.MISSING, reason="no object under its key")
    if job.remote.size != job.source.size:
        return replace(found, verdict=Verdict.DIFFERENT, reason=f"the object has {job.remote.size} bytes")
    try:
        digests = digests_of_file(job.source, EVERY_FORM)  # every form a comparison may need, in one read
    except (OSError, FileChanged) as error:
        return replace(found, verdict=Verdict.UNVERIFIABLE, reason=f"cannot read the file: {error}")
    found = replace(found, sha256=digests.sha256)
    comparison = compare_listed(job.remote, digests)
    if comparison is None:
        stored = read_stored(client, bucket, job.key)
        if stored.missing:
            return replace(found, verdict=Verdict.MISSING, reason="the object was deleted after the listing")
        comparison = compare_stored(stored, digests, lambda: False)
    if comparison.status == "same":
        return found
    return replace(found, verdict=COMPARISON_VERDICTS[comparison.status], reason=comparison.why)


def problem_finding(problem: Problem, key: str) -> Finding:
    verdict = Verdict.COLLISION if problem.collision else Verdict.UNVERIFIABLE
    return Finding(verdict, problem.path, key, None, problem.reason)


def extras(settings: Settings, remote: dict[str, RemoteObject], local_keys: set[str]) -> Iterator[Finding]:
    """Objects of the day's folders with no local file (of this shard: judged by the name, as files are)."""
    for key in sorted(remote):
        name = key.rsplit("/", 1)[-1]
        if key not in local_keys and name and settings.source.shard.owns(name):
            yield Finding(Verdict.EXTRA, None, key, remote[key].size, "no local file has this name")


class Audit:
    """Runs the comparisons on a thread pool and reports the findings in the order of the files."""

    def __init__(self, settings: Settings, reporter: Reporter, stop: threading.Event, manifest: ManifestWriter | None):
        self.settings = settings
        self.reporter = reporter
        self.stop = stop
        self.counts: collections.Counter[Verdict] = collections.Counter()
        self.manifest = manifest

    def run(self, inventory: Inventory, client: S3Client, remote: dict[str, RemoteObject]) -> bool:
        """True when every local file is present. remote: what the listings of the day's folders hold."""
        local_keys: set[str] = set()
        concurrency, bucket = self.settings.run.concurrency, self.settings.target.bucket
        flight: Flight[Job, Finding] = Flight(concurrency, 2 * concurrency, self.stop, self.report, ordered=True)
        with flight:
            for item in plan_jobs(self.settings, inventory, remote):
                flight.make_room()
                if self.stop.is_set():
                    break
                if isinstance(item, Deferred):
                    local_keys.add(item.key)
                    reason = item.why(self.settings.source.min_age, then="not compared this run")
                    self.report(Finding(Verdict.DEFERRED, item.source.path, item.key, item.source.size, reason))
                elif isinstance(item, Problem) and not item.fails_run:
                    self.reporter.problem(item)  # a warning; the file itself follows
                elif isinstance(item, Problem):
                    key = object_key(self.settings.target.prefix, self.settings.target.date, item.path.name)
                    local_keys.add(key)
                    self.report(problem_finding(item, key))
                else:
                    local_keys.add(item.key)
                    flight.submit(item, functools.partial(compare_safely, client, bucket, item))
            flight.finish(lambda _job: None)  # after a signal: left out, as the line below says
        if self.stop.is_set():
            text = "Verificação interrompida: the findings below cover only the files checked before the signal"
            self.reporter.emit(Event("interrupted", text, "warning"))
        else:
            for finding in extras(self.settings, remote, local_keys):
                self.report(finding)
        saved = self.summarize()
        return saved and not any(self.counts[verdict] for verdict in Verdict if verdict.failing)

    def report(self, finding: Finding) -> None:
        self.counts[finding.verdict] += 1
        if self.manifest is not None:
            self.manifest.add(finding.entry(self.settings.source.folder))
        url = printable(f"s3://{self.settings.target.bucket}/{finding.key or ''}")
        local = printable(str(finding.path)) if finding.path else ""
        reason = printable(finding.reason)
        verdict = finding.verdict
        if verdict is Verdict.EXTRA:
            text, level = f"{verdict.headline}: {url}", "warning"
        elif verdict is Verdict.PRESENT:
            text, level = f"{verdict.headline}: {local} = {url}", "info"
        elif verdict is Verdict.DEFERRED:
            text, level = f"{verdict.headline}: {local} -> {url}: {reason}", "warning"
        else:
            text, level = f"{verdict.headline}: {local} -> {url}: {reason}", "error"
        extra: dict[str, object] = {"sha256": finding.sha256} if finding.sha256 else {}
        event = Event("check", text, level, finding.path, finding.key, finding.size, verdict.status, reason or None)
        self.reporter.emit(replace(event, extra=extra))

    def summarize(self) -> bool:
        """The summary line, after the findings' manifest; False when that manifest could not be written."""
        shown = [verdict for verdict in Verdict if verdict is not Verdict.DEFERRED or self.settings.source.min_age]
        counts = {verdict.status: self.counts[verdict] for verdict in shown}
        deferred = f", {counts['deferred']} adiados (MIN_AGE)" if "deferred" in counts else ""
        text = (
            f"Verificação: {counts['present']} presentes, {counts['missing']} ausentes, {counts['different']} "
            f"diferentes, {counts['unverifiable']} não verificáveis, {counts['collision']} em colisão{deferred}; "
            f"{counts['extra']} objetos sem arquivo local"
        )
        manifest, interrupted = self.manifest, self.stop.is_set()
        saved = manifest is None or self.reporter.save_manifest(lambda: manifest.save(counts, None, interrupted))
        self.reporter.emit(Event("summary", text, extra=dict(counts)))
        return saved
