"""The command line: settings, signals, the run from discovery to summary, and exit codes."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Callable, Generic, NoReturn, TypeVar

from s3_landing.config import VERBOSE, RunMode, Settings, check_manifest_file, check_source_folder, load_settings
from s3_landing.discovery import MULTIPART_THRESHOLD, Deferred, Inventory, Job, Problem, plan_jobs, take_inventory
from s3_landing.errors import (
    EXIT_FATAL,
    EXIT_OK,
    EXIT_SOME_FAILED,
    NOT_STARTED,
    ConfigError,
    EngineError,
    FatalError,
    Interrupted,
    UploadS3Error,
    explain,
)
from s3_landing.flight import Flight
from s3_landing.manifest import ManifestWriter, utc_now
from s3_landing.report import Console, Event, Reporter
from s3_landing.transfer.destination import Destination
from s3_landing.transfer.files import Outcome, Status
from s3_landing.transfer.start import direct_start
from s3_landing.transfer.unchanged import Read, SkipChecks, may_be_skipped, worth_a_helper
from s3_landing.transfer.uploads import Transfer

T = TypeVar("T")


EMPTY_FOLDER_FIX = 'check LOCAL_DIR / --source; in Docker, mount the folder with -v "$PWD/data:/app/data.base:ro"'
EXIT_BY_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class StopOnSignal:
    """SIGINT/SIGTERM set an event instead of killing the process, so the run can end cleanly."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_number: int | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for number in EXIT_BY_SIGNAL:
                self.previous[number] = signal.signal(number, self.handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]

    def handle(self, number: int, frame: FrameType | None) -> None:
        if self.event.is_set():  # a second Ctrl-C: the user does not want to wait for the clean end
            os._exit(EXIT_BY_SIGNAL[signal.Signals(number)])
        self.signal_number = number
        self.event.set()


def report_without_uploading(settings: Settings, reporter: Reporter, inventory: Inventory, reason: str = "") -> None:
    """Every problem, and each file as planned (dry run) or, given a reason, as failed (interrupted before start)."""
    for item in plan_jobs(settings, inventory, remote={}):
        if isinstance(item, Problem):
            reporter.problem(item)
        elif isinstance(item, Deferred):
            reporter.deferred(item)
        elif reason:
            reporter.outcome(Outcome(item.source.path, Status.FAILED, item.key, item.source.size, reason))
        else:
            reporter.announce(item)
            reporter.outcome(Outcome(item.source.path, Status.PLANNED, item.key, item.source.size))


class Contact(Generic[T]):
    """The first requests (the start, or the check's survey) in a daemon thread, so that a signal during a hung
    first request still ends the run at once."""

    def __init__(self, contact: Callable[[], T]) -> None:
        self.results: list[T] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self.attempt, args=(contact,), name="contact", daemon=True)
        self.thread.start()

    def attempt(self, contact: Callable[[], T]) -> None:
        try:
            self.results.append(contact())
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which raises it
            self.errors.append(error)

    def result(self, settings: Settings, stop: threading.Event) -> T:
        """What the requests gave; any of botocore's or the engine's errors there is fatal."""
        if stop.is_set():
            raise Interrupted()
        while self.thread.is_alive():
            self.thread.join(0.05)  # returns as soon as the thread ends: polling the stop event made runs wait 50 ms
            if stop.is_set():
                raise Interrupted()
        if not self.errors:
            return self.results[0]
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(self.errors[0], (BotoCoreError, ClientError, EngineError)):
            raise FatalError(explain(self.errors[0], settings)) from None
        raise self.errors[0]


def contact_unless_stopped(settings: Settings, stop: threading.Event, contact: Callable[[], T]) -> T:
    if stop.is_set():
        raise Interrupted()
    return Contact(contact).result(settings, stop)


class DirectStart:
    """The direct start (start.direct_start), begun once: when the walk finds the first file to send, so that the
    listing and the rest of the walk overlap, or when the run needs the bucket for its manifest alone."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.contact: Contact[Destination | None] | None = None

    def begun(self) -> Contact[Destination | None]:
        if self.contact is None:
            self.contact = Contact(lambda: direct_start(self.settings))
        return self.contact


def not_confirmed(job: Job) -> Outcome:
    reason = "interrupted while it was being sent; the server did not confirm it"
    return Outcome(job.source.path, Status.FAILED, job.key, job.source.size, reason)


def upload_all(
    settings: Settings,
    reporter: Reporter,
    inventory: Inventory,
    stop: threading.Event,
    run_id: str,
    direct: DirectStart,
) -> Destination | None:
    try:
        destination = direct.begun().result(settings, stop) or botocore_start(settings, stop)
    except Interrupted:
        report_without_uploading(settings, reporter, inventory, NOT_STARTED)
        return None
    concurrency = settings.run.concurrency
    flight: Flight[Job, Outcome] = Flight(concurrency, 2 * concurrency, stop, reporter.outcome)
    sender = Sender(settings, reporter, stop, Transfer(destination, settings, stop, reporter.tally.add_bytes, run_id))
    use_helper = worth_a_helper(destination.remote.values(), inventory.files, inventory.bytes)
    try:
        with flight, reporter.ticker(), SkipChecks(settings.output.records_content, stop, use_helper) as checks:
            for item in plan_jobs(settings, inventory, destination.remote):
                if isinstance(item, Problem):
                    reporter.problem(item)
                elif isinstance(item, Deferred):
                    reporter.deferred(item)
                elif may_be_skipped(item) and not stop.is_set():
                    for job, read in checks.add(item):  # 100,000 files: not all queued (a few batches pending)
                        sender.send(flight, job, read)
                else:
                    sender.send(flight, item)
            for job, read in checks.rest():
                sender.send(flight, job, read)
            if sender.unproven and settings.output.manifest_to_bucket:  # the manifest would be the run's first write
                with contextlib.suppress(Interrupted):
                    sender.transfer = restart_with_botocore(settings, stop, sender.transfer)
            flight.finish(lambda job: reporter.outcome(not_confirmed(job)))
    finally:
        transfer = sender.transfer
        begun = {**transfer.large_started, **transfer.destination.probes_begun}
        if stop.is_set() and begun:
            from s3_landing.transfer.botocore_calls import abort_uploads_of_run

            reporter.left_open(abort_uploads_of_run(transfer.destination, settings, begun))
    reporter.sent_unverified(transfer.unverifiable)
    return transfer.destination


class Sender:
    """Each job to the pool, unless its skip check's read proves it unchanged; a run that made no write probe sends
    its first file alone (send_first)."""

    def __init__(self, settings: Settings, reporter: Reporter, stop: threading.Event, transfer: Transfer) -> None:
        self.settings = settings
        self.reporter = reporter
        self.stop = stop
        self.transfer = transfer
        self.unproven = not transfer.destination.write_proven

    def send(self, flight: Flight[Job, Outcome], job: Job, read: Read | None = None) -> None:
        skipped = self.transfer.skip_if_unchanged(job, read)
        if skipped is not None:
            self.reporter.outcome(skipped)
            return
        flight.make_room()  # 100,000 files: not all queued
        if self.stop.is_set():
            self.reporter.outcome(Outcome(job.source.path, Status.FAILED, job.key, job.source.size, NOT_STARTED))
            return
        if self.unproven:
            self.transfer, reported = send_first(self.settings, self.reporter, self.stop, self.transfer, job)
            self.unproven = False
            if reported:
                return
        flight.submit(job, functools.partial(self.transfer.upload, job, self.reporter.announce))


def send_first(
    settings: Settings, reporter: Reporter, stop: threading.Event, transfer: Transfer, job: Job
) -> tuple[Transfer, bool]:
    """A run started without botocore made no write probe: the first file it must send, sent alone, is the proof.
    When that write fails, or the file proves unchanged after all (by a HEAD: nothing was written), botocore's start
    makes the probe: FatalError when the bucket cannot be written at all, as when it starts the run. A failed file
    is then sent once more, to the region botocore found. A large file is not sent alone, which would hold back the
    others: the probe is made, and the file left to the caller. Returns the Transfer to go on with, and whether the
    file was reported."""
    announced: list[Job] = []

    def send(current: Transfer) -> Outcome:
        return contact_unless_stopped(settings, stop, lambda: current.upload(job, announced.append))

    try:
        if job.source.size >= MULTIPART_THRESHOLD:
            return restart_with_botocore(settings, stop, transfer), False
        outcome = send(transfer)
        if outcome.status in (Status.FAILED, Status.SKIPPED) and not stop.is_set():
            transfer = restart_with_botocore(settings, stop, transfer)
            if outcome.status is Status.FAILED:
                outcome = send(transfer)
    except Interrupted:
        outcome = (
            not_confirmed(job)
            if announced
            else Outcome(job.source.path, Status.FAILED, job.key, job.source.size, NOT_STARTED)
        )
    if announced:
        reporter.announce(job)
    reporter.outcome(outcome)
    return transfer, True


def restart_with_botocore(settings: Settings, stop: threading.Event, transfer: Transfer) -> Transfer:
    """botocore's start (HeadBucket, the write probe): FatalError when the bucket cannot be written at all, as when it
    starts the run; else a Transfer to the region it found."""
    return Transfer(botocore_start(settings, stop), settings, stop, transfer.on_bytes, transfer.run_id)


def botocore_start(settings: Settings, stop: threading.Event) -> Destination:
    from s3_landing.transfer.botocore_calls import preflight_by_botocore

    return contact_unless_stopped(settings, stop, lambda: preflight_by_botocore(settings))


def new_run_id(settings: Settings) -> str:
    shard = settings.source.shard
    in_shards = f"-shard{shard.index}of{shard.count}" if shard.count > 1 else ""
    return f"{utc_now():%Y%m%dT%H%M%SZ}{in_shards}-{os.urandom(4).hex()}"


def check(settings: Settings, reporter: Reporter, inventory: Inventory, stop: threading.Event) -> int:
    """--check: read-only, no write probe; exit 0 only when every local file is present."""
    from s3_landing.audit import Audit  # --check: botocore's HEADs and survey
    from s3_landing.transfer.botocore_calls import new_session, survey

    try:
        found = contact_unless_stopped(settings, stop, lambda: survey(settings, new_session(), write_check=False))
    except Interrupted:
        return EXIT_FATAL  # the signal's own exit code replaces it
    present = Audit(settings, reporter, stop, reporter.manifest).run(inventory, found.client, found.remote)
    return EXIT_OK if present else EXIT_SOME_FAILED


def run(settings: Settings, reporter: Reporter, stop: threading.Event, run_id: str) -> int:
    check_source_folder(settings.source.folder)
    if settings.run.mode is not RunMode.DRY_RUN:
        check_manifest_file(settings.output.manifest_file)
    direct = DirectStart(settings)
    first_found = direct.begun if settings.run.mode is RunMode.UPLOAD else None
    source = settings.source
    inventory = take_inventory(source.folder, source.shard, source.follow_links_outside, first_found)
    if not inventory.files_in_folder and settings.source.fail_if_empty:
        raise ConfigError(f"no CSV file in {settings.source.folder} (FAIL_IF_EMPTY is set): {EMPTY_FOLDER_FIX}")
    reporter.tally.expected_files, reporter.tally.expected_bytes = inventory.files, inventory.bytes
    if not inventory.files:
        reporter.no_files(inventory.files_in_folder, EMPTY_FOLDER_FIX)
    if settings.run.mode is RunMode.CHECK:
        return check(settings, reporter, inventory, stop)
    destination = None
    if settings.run.mode is RunMode.DRY_RUN or not (inventory.files or settings.output.manifest_to_bucket):
        report_without_uploading(settings, reporter, inventory)
    else:
        destination = upload_all(settings, reporter, inventory, stop, run_id, direct)
    if stop.is_set():
        reporter.emit(Event("interrupted", "Execução interrompida: nenhum arquivo novo foi iniciado depois do sinal"))
    manifest = reporter.manifest
    if manifest is not None and not reporter.save_manifest(
        lambda: manifest.save(reporter.manifest_summary(), destination)
    ):
        reporter.tally.counts[Status.FAILED] += 1
    reporter.summary()
    return EXIT_SOME_FAILED if reporter.tally[Status.FAILED] else EXIT_OK


def manifest_writer(settings: Settings, run_id: str) -> ManifestWriter | None:
    """Uploads and --check write one where it was asked for; a dry run writes none."""
    if settings.output.records_content and settings.run.mode is not RunMode.DRY_RUN:
        return ManifestWriter(settings, run_id)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the uploader; returns the exit code (see --help)."""
    console, reporter = Console(), None
    try:
        settings = load_settings(argv)
        console = Console(settings.output)
        run_id = new_run_id(settings)  # in the manifest and on every object (x-amz-meta-run-id)
        reporter = Reporter(settings, console, manifest_writer(settings, run_id))
        with StopOnSignal() as stopper:
            code = run(settings, reporter, stopper.event, run_id)
    except SystemExit as exit_request:  # --help and --version
        return int(exit_request.code or 0)
    except UploadS3Error as error:
        console.fatal(str(error))
        return error.exit_code
    except Exception as error:  # noqa: BLE001 - whatever went wrong still ends as one line and a meaningful code
        return report_unexpected(console, reporter, error)
    if stopper.signal_number is not None:
        return EXIT_BY_SIGNAL[signal.Signals(stopper.signal_number)]
    return code


def report_unexpected(console: Console, reporter: Reporter | None, error: Exception) -> int:
    """A failure nobody foresaw: one line (the traceback only with --verbose); exit 1 if files were attempted,
    since some may have landed, else 2."""
    if console.verbosity == VERBOSE:
        import traceback

        traceback.print_exc()
    hint = "" if console.verbosity == VERBOSE else " (run again with --verbose for the traceback)"
    console.fatal(f"unexpected error: {type(error).__name__}: {error}{hint}")
    attempted = reporter is not None and (reporter.tally.files_done or reporter.started)
    return EXIT_SOME_FAILED if attempted else EXIT_FATAL


def entry() -> NoReturn:
    """The command (`python upload_s3.py`, `upload-s3`): run, flush, and leave at once. Everything is reported and
    written by then. Skipping the interpreter's tear-down keeps it from racing obstore's native threads (letting it
    run aborted the process now and then, SIGABRT), saves botocore's loaded models' clean-up (0.1 s of every run)
    and, after a signal, the wait for threads stuck on a silent server."""
    exit_code = main()
    with contextlib.suppress(OSError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(exit_code)
