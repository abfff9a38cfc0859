"""What the user sees. A Console prints events (the challenge's lines in Portuguese, or JSON); a Tally counts what
became of the files; a ProgressTicker tells how far the run is; the Reporter turns each outcome into its line, its
count and its manifest entry."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from s3_landing.config import QUIET, VERBOSE, Output, RunMode, Settings
from s3_landing.discovery import Deferred, Job, Problem
from s3_landing.errors import NOT_STARTED, explain
from s3_landing.manifest import ManifestWriter, outcome_entry, utc_now
from s3_landing.transfer.files import Outcome, Status
from s3_landing.transfer.uploads import HEAD_REFUSED, NOT_PROVEN, SENT_WITHOUT_PROOF

SECRET_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
URL_QUERY = re.compile(r"(https?://[^\s?\"']*)\?[^\s\"']*")
UNPROVEN_BECAUSE = {
    NOT_PROVEN: "arquivos enviados de novo: nothing proves their same-size objects hold the file's bytes (no MD5 "
    "ETag, and no checksum the store checked), so an unchanged file cannot be told from a changed one",
    HEAD_REFUSED: "arquivos enviados de novo: their objects' ETags are not an MD5 of the file (changed, or encrypted "
    "with SSE-KMS) and reading the object (HEAD) was refused; grant s3:GetObject to make re-runs content-exact "
    "(README, IAM policy)",
    SENT_WITHOUT_PROOF: "arquivos enviados sem prova: the objects' ETags are no MD5s here (KMS encryption) and the "
    "store does not check x-amz-checksum-sha256, so nothing proves the bytes it stored (README, Integrity)",
}


def printable(text: str) -> str:
    """One line, whatever the file name holds: control characters and undecodable bytes escaped."""
    if text.isprintable():  # the common case; lone surrogates and control characters are not printable
        return text
    try:  # undecodable bytes of a file name come back as the bytes they were: \xff, not \udcff
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def redact(text: str) -> str:
    """Mask secrets: known credential values, and the query of any URL (presigned URLs carry credentials)."""
    text = URL_QUERY.sub(r"\1?...", text)
    for variable in SECRET_VARIABLES:
        secret = os.environ.get(variable, "")
        if len(secret) >= 4:
            text = text.replace(secret, "****")
    return text


def in_words(error: BaseException, settings: Settings) -> str:
    """explain()'s line, as it may be printed: escaped, secrets masked."""
    return printable(redact(explain(error, settings)))


def human_bytes(amount: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


@dataclass(frozen=True)
class Event:
    """One thing worth telling: a human line, and the stable fields of its JSON form."""

    name: str
    text: str
    level: str = "info"
    path: Path | None = None
    key: str | None = None
    size: int | None = None
    status: str | None = None
    error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @staticmethod
    def about(outcome: Outcome, name: str, text: str, level: str = "info") -> Event:
        error = outcome.reason or None
        return Event(name, text, level, outcome.path, outcome.key, outcome.size, outcome.status.value, error)

    def as_json(self) -> str:
        record: dict[str, object] = {"time": utc_now().isoformat(timespec="milliseconds"), "level": self.level}
        record.update({"event": self.name, "file": str(self.path) if self.path else None, "key": self.key})
        record.update({"bytes": self.size, "status": self.status, "error": self.error, **self.extra})
        return json.dumps(record, ensure_ascii=True)


class Console:
    """Prints events, flushed at once and safe across threads: errors and warnings to standard error, the rest to
    standard output; with --quiet only errors, warnings and the closing lines. On a terminal the progress line is
    updated in place."""

    def __init__(self, output: Output | None = None, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.output = output or Output()
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.lock = threading.Lock()
        self.progress_on_screen = False

    @property
    def verbosity(self) -> int:
        return self.output.verbosity

    def emit(self, event: Event) -> None:
        if self.verbosity == QUIET and event.level == "info" and event.name not in ("done", "summary"):
            return
        line = redact(event.as_json() if self.output.log_format == "json" else event.text)
        self.write_line(line, self.err if event.level in ("error", "warning") else self.out)

    def write_line(self, line: str, stream: TextIO) -> None:
        with self.lock:
            if self.progress_on_screen:
                self.out.write("\r\x1b[K")
                self.progress_on_screen = False
            print(line, file=stream, flush=True)

    def progress(self, text: str, numbers: dict[str, object]) -> None:
        if self.output.log_format != "json" and self.out.isatty():
            with self.lock:
                self.out.write("\r" + text + "\x1b[K")
                self.out.flush()
                self.progress_on_screen = True
        else:
            self.emit(Event("progress", text, extra=numbers))

    def fatal(self, message: str) -> None:
        message = printable(message)
        self.emit(Event("fatal", f"upload_s3: error: {message}", "error", error=message))


@dataclass
class Tally:
    """What became of the run's files, and its bytes; owned by the run, safe across threads."""

    counts: Counter[Status] = field(default_factory=Counter)
    bytes_sent: int = 0
    files_done: int = 0
    bytes_done: int = 0
    expected_files: int = 0
    expected_bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __getitem__(self, status: Status) -> int:
        return self.counts[status]

    def count(self, outcome: Outcome) -> None:
        with self.lock:
            self.counts[outcome.status] += 1
            self.bytes_sent += outcome.bytes_sent
            self.files_done += 1

    def add_bytes(self, amount: int) -> None:
        with self.lock:
            self.bytes_done += amount


class ProgressTicker:
    """A progress line every few seconds while files are uploaded."""

    def __init__(self, console: Console, tally: Tally, interval: float) -> None:
        self.console = console
        self.tally = tally
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.tick, name="progress", daemon=True)

    def tick(self) -> None:
        while not self.stopped.wait(self.interval):
            self.show()

    def show(self) -> None:
        tally, elapsed = self.tally, max(time.monotonic() - self.tally.started, 1e-6)
        rate = tally.bytes_done / elapsed
        left = (tally.expected_bytes - tally.bytes_done) / rate if rate else None
        text = (
            f"Progresso: {tally.files_done}/{tally.expected_files} arquivos, {human_bytes(tally.bytes_done)} de "
            f"{human_bytes(tally.expected_bytes)}, {human_bytes(rate)}/s, "
            + (f"faltam ~{left:.0f} s" if left is not None else "calculando o tempo restante")
        )
        numbers: dict[str, object] = {"files_done": tally.files_done, "files_total": tally.expected_files}
        numbers.update({"bytes_done": tally.bytes_done, "bytes_total": tally.expected_bytes})
        numbers.update({"bytes_per_second": round(rate), "seconds_left": left and round(left, 1)})
        self.console.progress(text, numbers)

    def __enter__(self) -> ProgressTicker:
        if self.interval > 0 and self.console.verbosity != QUIET:
            self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()


class Reporter:
    """Each outcome as its line, its count in the tally and, when a manifest is written, its entry."""

    def __init__(self, settings: Settings, console: Console, manifest: ManifestWriter | None = None) -> None:
        self.settings = settings
        self.console = console
        self.emit = console.emit
        self.tally = Tally()
        self.manifest = manifest
        self.started = 0
        self.not_started = 0  # with --quiet, files not started after a signal are counted, not listed
        self.lock = threading.Lock()

    @property
    def dry_run(self) -> bool:
        return self.settings.run.mode is RunMode.DRY_RUN

    def url(self, key: str | None) -> str:
        return printable(f"s3://{self.settings.target.bucket}/{key or ''}")

    def ticker(self) -> ProgressTicker:
        return ProgressTicker(self.console, self.tally, self.settings.output.progress_interval)

    def save_manifest(self, save: Callable[[], list[tuple[str, BaseException | None]]]) -> bool:
        """Run save (the manifest writer's) and name where the manifest went, or one error line for each place it
        could not be written; False when any could not."""
        saved = True
        for place, error in save():
            if error is None:
                self.emit(Event("manifest", f"Manifesto gravado: {printable(place)}", key=place))
                continue
            reason = (error.strerror or str(error)) if isinstance(error, OSError) else explain(error, self.settings)
            message = printable(redact(f"cannot write {place} ({reason})"))
            text = f"Erro ao gravar o manifesto: {message}"
            self.emit(Event("failed", text, "error", status=Status.FAILED.value, error=message))
            saved = False
        return saved

    def sent_unverified(self, unverifiable: Mapping[str, int]) -> None:
        """One line a run for each reason files were sent again, or sent, without proof of the bytes stored."""
        for why, text in UNPROVEN_BECAUSE.items():
            if unverifiable.get(why):
                line = f"Aviso: {unverifiable[why]} {text}"
                self.emit(Event("warning", line, "warning", extra={"files": unverifiable[why]}))

    def left_open(self, keys: list[str]) -> None:
        """Warn about multipart uploads of this run that could not be aborted after a signal."""
        for key in keys:
            text = (
                f"Aviso: a multipart upload of {printable(key)} started by this run may be left open (it could not "
                "be aborted in time, or s3:ListBucketMultipartUploads is not granted); a lifecycle rule for "
                "incomplete uploads will remove it"
            )
            self.emit(Event("warning", text, "warning", key=key))

    def no_files(self, files_in_folder: int, fix: str) -> None:
        """This shard has no file to send: the folder is empty, or the other shards have them all. (Files that
        cannot be sent are named on their own error lines.)"""
        source = printable(str(self.settings.source.folder))
        if not files_in_folder:
            text = f"Nenhum arquivo CSV para enviar em {source}: the folder has no *.csv file ({fix})"
        elif self.settings.source.shard.count > 1:
            text = f"Nenhum arquivo CSV para enviar em {source}: none of its {files_in_folder} falls to this shard"
        else:
            return
        self.emit(Event("no_files", text))

    def announce(self, job: Job) -> None:
        if not self.dry_run:
            with self.lock:
                self.started += 1
        marker, status = ("[dry-run] ", Status.PLANNED.value) if self.dry_run else ("", "started")
        text = f"{marker}Iniciando upload de {printable(str(job.source.path))} para {self.url(job.key)}"
        self.emit(Event("start", text, path=job.source.path, key=job.key, size=job.source.size, status=status))

    def problem(self, problem: Problem) -> None:
        reason = printable(problem.reason)
        if problem.fails_run:
            self.outcome(Outcome(problem.path, Status.FAILED, reason=reason))
        else:
            text = f"Aviso: {printable(str(problem.path))}: {reason}"
            self.emit(Event("warning", text, "warning", problem.path, error=reason))

    def deferred(self, item: Deferred) -> None:
        """A file too young to open: its own warning line, counted as deferred, and not a failure."""
        reason = item.why(self.settings.source.min_age, then="left for the next run")
        self.outcome(Outcome(item.source.path, Status.DEFERRED, item.key, item.source.size, reason))

    def outcome(self, outcome: Outcome) -> None:
        if outcome.error is not None and not outcome.reason:
            outcome = replace(outcome, reason=in_words(outcome.error, self.settings))
        self.tally.count(outcome)
        if self.manifest is not None:
            self.manifest.add(outcome_entry(outcome, self.settings.source.folder))
        local = printable(str(outcome.path))
        if outcome.status is Status.UPLOADED:
            self.emit(Event.about(outcome, "uploaded", f"Arquivo enviado: {local} -> {self.url(outcome.key)}"))
            if outcome.warning:
                text = f"Aviso: {local}: {outcome.warning}"
                self.emit(Event("warning", text, "warning", outcome.path, error=outcome.warning))
        elif outcome.status is Status.SKIPPED:
            why = " (same size and ETag as the object in the bucket)" if self.console.verbosity == VERBOSE else ""
            if outcome.receipt is not None and outcome.receipt.already_there:
                why = " (already there with the same bytes when it was written: landed since the listing)"
            text = f"Arquivo sem alterações, ignorado: {local} = {self.url(outcome.key)}{why}"
            self.emit(Event.about(outcome, "skipped", text))
        elif outcome.status is Status.DEFERRED:
            self.emit(Event.about(outcome, "deferred", f"Aviso: {local}: {outcome.reason}", "warning"))
        elif outcome.status is Status.FAILED and self.console.verbosity == QUIET and outcome.reason == NOT_STARTED:
            with self.lock:
                self.not_started += 1  # after a signal there may be thousands: one line in the summary instead
        elif outcome.status is Status.FAILED:
            self.emit(Event.about(outcome, "failed", f"Erro ao enviar {local}: {outcome.reason}", "error"))

    def summary(self) -> None:
        tally = self.tally
        seconds = time.monotonic() - tally.started
        if self.not_started:
            text = f"Erro: {self.not_started} arquivos não enviados: {NOT_STARTED} (--quiet lists them as one line)"
            extra: dict[str, object] = {"files": self.not_started}
            self.emit(Event("not_started", text, "error", status=Status.FAILED.value, extra=extra))
        self.emit(Event("done", "Processo concluído!"))
        uploaded, skipped, failed = tally[Status.UPLOADED], tally[Status.SKIPPED], tally[Status.FAILED]
        if self.dry_run:
            text = f"Resumo (dry-run, nada enviado): {tally[Status.PLANNED]} a enviar, {failed} com falha"
            self.emit(Event("summary", text, extra={"planned": tally[Status.PLANNED], "failed": failed}))
            return
        deferred = f", {tally[Status.DEFERRED]} adiados (MIN_AGE)" if self.settings.source.min_age else ""
        text = (
            f"Resumo: {uploaded} enviados, {skipped} ignorados sem alterações, {failed} com falha{deferred}; "
            f"{tally.bytes_sent} bytes ({human_bytes(tally.bytes_sent)}) enviados em {seconds:.1f} s"
        )
        counts: dict[str, object] = {"uploaded": uploaded, "skipped": skipped, "failed": failed}
        if self.settings.source.min_age:
            counts["deferred"] = tally[Status.DEFERRED]
        counts.update({"bytes_sent": tally.bytes_sent, "seconds": round(seconds, 3)})
        self.emit(Event("summary", text, extra=counts))

    def manifest_summary(self) -> dict[str, object]:
        tally = self.tally
        summary: dict[str, object] = {
            "uploaded": tally[Status.UPLOADED],
            "skipped": tally[Status.SKIPPED],
            "failed": tally[Status.FAILED],
        }
        if self.settings.source.min_age:
            summary["deferred"] = tally[Status.DEFERRED]
        summary["bytes_uploaded"] = tally.bytes_sent
        return summary
