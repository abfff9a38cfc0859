"""What the user sees: one-line messages, console and JSON events, progress and the run manifest."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from s3_landing import __version__
from s3_landing.config import NORMAL, QUIET, VERBOSE, ConfigError, Settings
from s3_landing.discovery import Job, Problem, manifest_key
from s3_landing.transfer.destination import Destination
from s3_landing.transfer.engine import EngineError, S3Failure
from s3_landing.transfer.files import NOT_STARTED, FileChanged, Interrupted, Outcome
from s3_landing.transfer.uploads import HEAD_REFUSED, NOT_PROVEN, SENT_WITHOUT_PROOF, StoredBytesDiffer, write_document

SECRET_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
URL_QUERY = re.compile(r"(https?://[^\s?\"']*)\?[^\s\"']*")
CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
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


def causes(error: BaseException) -> Iterator[BaseException]:
    """error and what it wraps: botocore's `error` argument, urllib3's wrapped exception, Python's chain."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        wrapped = current.kwargs.get("error") if isinstance(current, BotoCoreError) else None
        if wrapped is None and current.args and isinstance(current.args[0], BaseException):
            wrapped = current.args[0]
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__ or current.__context__


def is_certificate_failure(error: BaseException) -> bool:
    """A certificate that does not verify (botocore's calls): permanent, unlike a TLS connection closed mid-send."""
    return any(isinstance(cause, (ssl.SSLCertVerificationError, ssl.CertificateError)) for cause in causes(error))


def explain_code(code: str, message: str, settings: Settings) -> str:
    """S3's error code (and message) in words, with the fix where there is one."""
    where = f"s3://{settings.bucket}/{settings.prefix}"
    if code == "NoSuchBucket":
        return f"bucket {settings.bucket!r} does not exist: create it or correct BUCKET_NAME / --bucket"
    if code in CREDENTIAL_CODES:
        return (
            f"credentials rejected ({code}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and "
            "AWS_SESSION_TOKEN (or AWS_PROFILE) for this endpoint"
        )
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        kms = " (and kms:GenerateDataKey and kms:Decrypt on the KMS key)" if "kms" in message.lower() else ""
        return (
            f"access denied on {where} ({code}): the identity needs s3:ListBucket, s3:PutObject and "
            f"s3:AbortMultipartUpload there{kms} (see the README's IAM policy)"
        )
    if code in (
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "AuthorizationQueryParametersError",
        "IllegalLocationConstraintException",
    ):
        return f"bucket {settings.bucket!r} is in another region ({code}): set AWS_REGION to the bucket's region"
    return f"S3 answered {code}: {message}".rstrip(": ")


def explain_failure(failure: S3Failure, settings: Settings) -> str:
    """A write the engine could not do: S3's answer, or why none came (after obstore's retries)."""
    endpoint = settings.endpoint_url or "the S3 endpoint"
    if failure.status is not None:
        text = explain_code(failure.code, failure.message, settings)
        return text if failure.status < 500 else f"{text} (after {settings.max_attempts} attempts)"
    if failure.kind == "certificate":
        return "TLS certificate not trusted: for a private CA set AWS_CA_BUNDLE to its PEM file"
    if failure.kind == "unreachable":
        return f"cannot reach {endpoint}: check AWS_ENDPOINT_URL / --endpoint-url and the network"
    if failure.kind == "timeout":
        return "the server stopped answering (read timeout), so the upload is not confirmed: run again to check"
    return (
        f"the connection to {endpoint} failed on every attempt, so the upload is not confirmed: check the network "
        "and run again"
    )


def explain(error: BaseException, settings: Settings) -> str:
    """One line naming the cause and, where there is one, the fix; never a secret."""
    endpoint = settings.endpoint_url or "the S3 endpoint"
    if isinstance(error, EngineError):
        text = explain_failure(error.failure, settings)
    elif isinstance(error, ClientError):
        details = error.response.get("Error", {})
        text = explain_code(details.get("Code", "Unknown"), details.get("Message", ""), settings)
    elif isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        text = "no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use a role"
    elif isinstance(error, ProfileNotFound):
        text = f"{error}: fix AWS_PROFILE or ~/.aws/config"
    elif isinstance(error, SSLError) or is_certificate_failure(error):
        text = "TLS certificate not trusted: for a private CA set AWS_CA_BUNDLE to its PEM file"
    elif isinstance(error, ProxyConnectionError):
        text = f"{error}: check HTTPS_PROXY / HTTP_PROXY and NO_PROXY"
    elif isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        text = f"cannot reach {endpoint}: check AWS_ENDPOINT_URL / --endpoint-url and the network"
    elif isinstance(error, ReadTimeoutError):
        text = "the server stopped answering (read timeout), so the upload is not confirmed: run again to check"
    elif isinstance(error, (HTTPClientError, BotoConnectionError)):
        text = (
            f"the connection to {endpoint} failed ({type(error).__name__}) on every attempt, so the upload is not "
            "confirmed: check the network and run again"
        )
    elif isinstance(error, FileChanged):
        text = f"file {error}; it was not reported as sent: run again once it is stable"
    elif isinstance(error, (Interrupted, StoredBytesDiffer)):
        text = str(error) or NOT_STARTED
    elif isinstance(error, OSError):
        text = f"cannot read the file ({error.strerror or error}): fix its permissions or remove it"
    else:
        text = f"{type(error).__name__}: {error}"
    return printable(redact(text))


def human_bytes(amount: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class Tally:
    uploaded: int = 0
    skipped: int = 0
    failed: int = 0
    planned: int = 0
    bytes_sent: int = 0
    files_done: int = 0
    bytes_done: int = 0
    started: float = field(default_factory=time.monotonic)


class ManifestWriter:
    """The run's lineage record; file entries go to a temporary file so memory does not grow with their number."""

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

    def add(self, outcome: Outcome) -> None:
        stats = outcome.stats or {"sha256": None, "header": None, "delimiter": None, "rows": None}
        receipt = outcome.receipt
        entry = {
            "path": os.path.relpath(outcome.path, self.settings.source),
            "key": outcome.key,
            "size": outcome.size,
            "status": outcome.status,
            "reason": outcome.reason or None,
            **stats,
            "etag": receipt.etag if receipt else None,
            "version_id": receipt.version_id if receipt else None,
            "checksum_sha256": (receipt.checksum_sha256 or None) if receipt else None,
            "proof": (receipt.proof or None) if receipt else None,
        }
        self.add_entry(entry)

    def add_entry(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.entries.write(json.dumps(entry, ensure_ascii=True) + "\n")

    def run_record(self, tally: Tally) -> dict[str, Any]:
        settings = self.settings
        return {
            "manifest_version": 1,
            "run": {
                "id": self.run_id,
                "started_at": self.started_at.isoformat(timespec="seconds"),
                "ended_at": utc_now().isoformat(timespec="seconds"),
                "program": "upload_s3",
                "version": __version__,
                "source": str(settings.source),
                "bucket": settings.bucket,
                "prefix": settings.prefix,
                "date": settings.date.isoformat(),
                "shard": {"index": settings.shard.index, "count": settings.shard.count},
            },
            "summary": {
                "uploaded": tally.uploaded,
                "skipped": tally.skipped,
                "failed": tally.failed,
                "bytes_uploaded": tally.bytes_sent,
            },
        }

    def write(self, handle: TextIO, record: dict[str, Any]) -> None:
        head = json.dumps(record, ensure_ascii=True, indent=1)
        handle.write(head[: head.rindex("}")].rstrip() + ',\n "files": [')
        self.entries.seek(0)
        for number, line in enumerate(self.entries):
            handle.write(("\n  " if number == 0 else ",\n  ") + line.rstrip("\n"))
        handle.write("\n ]\n}\n")

    def save(self, tally: Tally, destination: Destination | None) -> list[tuple[str, BaseException | None]]:
        """Write the manifest where it was asked for (the same document everywhere), each place whatever became of
        the other; returns each place with the error that kept it from being written, if one did."""
        record = self.run_record(tally)
        places: list[tuple[str, Callable[[], None]]] = []
        if self.settings.manifest_file is not None:
            places.append((str(self.settings.manifest_file), lambda: self.write_file(record)))
        if self.settings.manifest and destination is not None:
            key = manifest_key(self.settings, self.run_id)
            places.append((f"s3://{self.settings.bucket}/{key}", lambda: self.write_object(record, destination, key)))
        try:
            return [(place, failure_of(write)) for place, write in places]
        finally:
            self.entries.close()

    def write_file(self, record: dict[str, Any]) -> None:
        assert self.settings.manifest_file is not None
        target = self.settings.manifest_file
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
    try:
        write()
    except (BotoCoreError, ClientError, EngineError, OSError) as error:
        return error
    return None


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
        return Event(name, text, level, outcome.path, outcome.key, outcome.size, outcome.status, error)

    def as_json(self) -> str:
        record: dict[str, object] = {"time": utc_now().isoformat(timespec="milliseconds"), "level": self.level}
        record.update({"event": self.name, "file": str(self.path) if self.path else None, "key": self.key})
        record.update({"bytes": self.size, "status": self.status, "error": self.error, **self.extra})
        return json.dumps(record, ensure_ascii=True)


UNPROVEN_BECAUSE = {
    NOT_PROVEN: "arquivos enviados de novo: nothing proves their same-size objects hold the file's bytes (no MD5 "
    "ETag, and no checksum the store checked), so an unchanged file cannot be told from a changed one",
    HEAD_REFUSED: "arquivos enviados de novo: their objects' ETags are not an MD5 of the file (changed, or encrypted "
    "with SSE-KMS) and reading the object (HEAD) was refused; grant s3:GetObject to make re-runs content-exact "
    "(README, IAM policy)",
    SENT_WITHOUT_PROOF: "arquivos enviados sem prova: the objects' ETags are no MD5s here (KMS encryption) and the "
    "store does not check x-amz-checksum-sha256, so nothing proves the bytes it stored (README, Integrity)",
}


class Reporter:
    """Console lines of the challenge (in Portuguese) or JSON lines; flushed at once, safe across threads."""

    def __init__(self, settings: Settings | None = None, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.settings = settings
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.tally = Tally()
        self.lock = threading.Lock()
        self.manifest: ManifestWriter | None = None
        self.total_files = 0
        self.total_bytes = 0
        self.progress_on_screen = False
        self.started = 0
        self.not_started = 0  # with --quiet, files not started after a signal are counted, not listed

    @property
    def as_json(self) -> bool:
        return self.settings is not None and self.settings.log_format == "json"

    @property
    def verbosity(self) -> int:
        return self.settings.verbosity if self.settings else NORMAL

    @property
    def dry_run(self) -> bool:
        return self.settings is not None and self.settings.dry_run

    def emit(self, event: Event) -> None:
        if self.verbosity == QUIET and event.level == "info" and event.name not in ("done", "summary"):
            return
        line = redact(event.as_json() if self.as_json else event.text)
        self.write_line(line, self.err if event.level in ("error", "warning") else self.out)

    def write_line(self, line: str, stream: TextIO) -> None:
        with self.lock:
            if self.progress_on_screen:
                self.out.write("\r\x1b[K")
                self.progress_on_screen = False
            print(line, file=stream, flush=True)

    def save_manifest(self, save: Callable[[], list[tuple[str, BaseException | None]]]) -> bool:
        """Run save (a manifest writer's) and name where the manifest went, or one error line for each place it
        could not be written; False when any could not."""
        assert self.settings is not None  # manifests are only written once settings are known
        saved = True
        for place, error in save():
            if error is None:
                self.emit(Event("manifest", f"Manifesto gravado: {printable(place)}", key=place))
                continue
            reason = (error.strerror or str(error)) if isinstance(error, OSError) else explain(error, self.settings)
            message = printable(f"cannot write {place} ({reason})")
            text = f"Erro ao gravar o manifesto: {message}"
            self.emit(Event("failed", text, "error", status="failed", error=message))
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

    def fatal(self, message: str) -> None:
        message = printable(message)
        self.emit(Event("fatal", f"upload_s3: error: {message}", "error", error=message))

    def url(self, key: str | None) -> str:
        assert self.settings is not None
        return printable(f"s3://{self.settings.bucket}/{key or ''}")

    def no_files(self, files_in_folder: int, fix: str) -> None:
        """This shard has no file to send: the folder is empty, or the other shards have them all. (Files that
        cannot be sent are named on their own error lines.)"""
        assert self.settings is not None
        source = printable(str(self.settings.source))
        if not files_in_folder:
            text = f"Nenhum arquivo CSV para enviar em {source}: the folder has no *.csv file ({fix})"
        elif self.settings.shard.count > 1:
            text = f"Nenhum arquivo CSV para enviar em {source}: none of its {files_in_folder} falls to this shard"
        else:
            return
        self.emit(Event("no_files", text))

    def announce(self, job: Job) -> None:
        if not self.dry_run:
            with self.lock:
                self.started += 1
        marker, status = ("[dry-run] ", "planned") if self.dry_run else ("", "started")
        text = f"{marker}Iniciando upload de {printable(str(job.source.path))} para {self.url(job.key)}"
        self.emit(Event("start", text, path=job.source.path, key=job.key, size=job.source.size, status=status))

    def problem(self, problem: Problem) -> None:
        reason = printable(problem.reason)
        if problem.fails_run:
            self.outcome(Outcome(problem.path, "failed", reason=reason))
        else:
            text = f"Aviso: {printable(str(problem.path))}: {reason}"
            self.emit(Event("warning", text, "warning", problem.path, error=reason))

    def outcome(self, outcome: Outcome) -> None:
        if outcome.error is not None and not outcome.reason:
            assert self.settings is not None  # files are only handled once settings are known
            outcome = replace(outcome, reason=explain(outcome.error, self.settings))
        self.count(outcome)
        if self.manifest is not None:
            self.manifest.add(outcome)
        local = printable(str(outcome.path))
        if outcome.status == "uploaded":
            self.emit(Event.about(outcome, "uploaded", f"Arquivo enviado: {local} -> {self.url(outcome.key)}"))
            if outcome.warning:
                text = f"Aviso: {local}: {outcome.warning}"
                self.emit(Event("warning", text, "warning", outcome.path, error=outcome.warning))
        elif outcome.status == "skipped":
            why = " (same size and ETag as the object in the bucket)" if self.verbosity == VERBOSE else ""
            text = f"Arquivo sem alterações, ignorado: {local} = {self.url(outcome.key)}{why}"
            self.emit(Event.about(outcome, "skipped", text))
        elif outcome.status == "failed" and self.verbosity == QUIET and outcome.reason == NOT_STARTED:
            with self.lock:
                self.not_started += 1  # after a signal there may be thousands: one line in the summary instead
        elif outcome.status == "failed":
            self.emit(Event.about(outcome, "failed", f"Erro ao enviar {local}: {outcome.reason}", "error"))

    def count(self, outcome: Outcome) -> None:
        with self.lock:
            tally = self.tally
            setattr(tally, outcome.status, getattr(tally, outcome.status) + 1)  # statuses name Tally's counters
            tally.bytes_sent += outcome.bytes_sent
            tally.files_done += 1

    def expect(self, files: int, size: int) -> None:
        self.total_files, self.total_bytes = files, size

    def add_bytes(self, amount: int) -> None:
        with self.lock:
            self.tally.bytes_done += amount

    def progress(self) -> None:
        tally, elapsed = self.tally, max(time.monotonic() - self.tally.started, 1e-6)
        rate = tally.bytes_done / elapsed
        left = (self.total_bytes - tally.bytes_done) / rate if rate else None
        text = (
            f"Progresso: {tally.files_done}/{self.total_files} arquivos, {human_bytes(tally.bytes_done)} de "
            f"{human_bytes(self.total_bytes)}, {human_bytes(rate)}/s, "
            + (f"faltam ~{left:.0f} s" if left is not None else "calculando o tempo restante")
        )
        if not self.as_json and self.out.isatty():
            with self.lock:
                self.out.write("\r" + text + "\x1b[K")
                self.out.flush()
                self.progress_on_screen = True
            return
        numbers: dict[str, object] = {"files_done": tally.files_done, "files_total": self.total_files}
        numbers.update({"bytes_done": tally.bytes_done, "bytes_total": self.total_bytes})
        numbers.update({"bytes_per_second": round(rate), "seconds_left": left and round(left, 1)})
        self.emit(Event("progress", text, extra=numbers))

    def summary(self) -> None:
        tally = self.tally
        seconds = time.monotonic() - tally.started
        if self.not_started:
            text = f"Erro: {self.not_started} arquivos não enviados: {NOT_STARTED} (--quiet lists them as one line)"
            self.emit(Event("not_started", text, "error", status="failed", extra={"files": self.not_started}))
        self.emit(Event("done", "Processo concluído!"))
        if self.dry_run:
            text = f"Resumo (dry-run, nada enviado): {tally.planned} a enviar, {tally.failed} com falha"
            self.emit(Event("summary", text, extra={"planned": tally.planned, "failed": tally.failed}))
            return
        text = (
            f"Resumo: {tally.uploaded} enviados, {tally.skipped} ignorados sem alterações, {tally.failed} com falha; "
            f"{tally.bytes_sent} bytes ({human_bytes(tally.bytes_sent)}) enviados em {seconds:.1f} s"
        )
        counts: dict[str, object] = {"uploaded": tally.uploaded, "skipped": tally.skipped, "failed": tally.failed}
        counts.update({"bytes_sent": tally.bytes_sent, "seconds": round(seconds, 3)})
        self.emit(Event("summary", text, extra=counts))


class ProgressTicker:
    """A progress line every few seconds while files are uploaded."""

    def __init__(self, reporter: Reporter, interval: float) -> None:
        self.reporter = reporter
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.tick, name="progress", daemon=True)

    def tick(self) -> None:
        while not self.stopped.wait(self.interval):
            self.reporter.progress()

    def __enter__(self) -> ProgressTicker:
        if self.interval > 0 and self.reporter.verbosity != QUIET:
            self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()
