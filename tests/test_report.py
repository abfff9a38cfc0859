"""What the user reads: one-line messages for every error type, secrets masked, sizes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from unit_support import settings_for

from s3_landing import manifest as manifests
from s3_landing import report
from s3_landing.config import RunMode
from s3_landing.errors import EngineError, FileChanged, S3Failure

if TYPE_CHECKING:
    from s3_landing.transfer.destination import Destination

# --- output -------------------------------------------------------------------------------------


def test_printable_keeps_one_line_per_event() -> None:
    assert report.printable("a\nb\tc\x1b") == "a\\nb\\tc\\x1b"
    assert report.printable("caf\udce9.csv") == "caf\\xe9.csv"
    assert report.printable("Les Misérables ø.csv") == "Les Misérables ø.csv"


def test_redact_hides_every_secret_variable(clean_env: Path) -> None:
    os.environ.update({"AWS_ACCESS_KEY_ID": "AKIAXYZ123", "AWS_SECRET_ACCESS_KEY": "s3cr3t/v4lue+x"})
    os.environ["AWS_SESSION_TOKEN"] = "tok3n" * 10
    text = "id AKIAXYZ123 key s3cr3t/v4lue+x token " + "tok3n" * 10
    assert report.redact(text) == "id **** key **** token ****"


def test_redact_hides_the_query_of_presigned_urls(clean_env: Path) -> None:
    url = (
        "http://127.0.0.1:8333/lake/k.csv?X-Amz-Credential=AKIAROLE%2F2024&X-Amz-Security-Token=tok&X-Amz-Signature=ab"
    )
    assert report.redact(f"cannot reach {url} now") == "cannot reach http://127.0.0.1:8333/lake/k.csv?... now"


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "server words"}}, "ListObjectsV2")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("NoSuchBucket"), "bucket 'lake' does not exist"),
        (client_error("InvalidAccessKeyId"), "credentials rejected (InvalidAccessKeyId)"),
        (client_error("SignatureDoesNotMatch"), "AWS_SECRET_ACCESS_KEY"),
        (client_error("ExpiredToken"), "AWS_SESSION_TOKEN"),
        (client_error("AccessDenied"), "access denied on s3://lake/Raw/Local/CSV"),
        (client_error("PermanentRedirect"), "AWS_REGION"),
        (client_error("AuthorizationQueryParametersError"), "AWS_REGION"),
        (client_error("SlowDown"), "S3 answered SlowDown: server words"),
        (NoCredentialsError(), "no usable AWS credentials"),
        (EndpointConnectionError(endpoint_url="http://x"), "cannot reach"),
        (PermissionError(13, "Permission denied"), "cannot read the file (Permission denied)"),
        (FileChanged("changed during the upload"), "changed during the upload"),
    ],
)
def test_each_error_type_has_its_message(tmp_path: Path, error: BaseException, expected: str) -> None:
    message = report.in_words(error, settings_for(tmp_path))
    assert expected in message
    assert "\n" not in message


def test_explain_never_prints_a_secret(clean_env: Path, tmp_path: Path) -> None:
    os.environ["AWS_SECRET_ACCESS_KEY"] = "Zsecretvalue"
    message = report.in_words(RuntimeError("boom Zsecretvalue"), settings_for(tmp_path))
    assert "Zsecretvalue" not in message


def test_human_bytes() -> None:
    assert report.human_bytes(0) == "0 B"
    assert report.human_bytes(1536) == "1.5 KiB"
    assert report.human_bytes(3 * 1024**3) == "3.0 GiB"


def test_each_manifest_place_is_written_whatever_became_of_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A local path that fails keeps neither the bucket's manifest from being written nor its spool file open; a
    bucket that fails names its own place."""
    written: list[str] = []
    monkeypatch.setattr(manifests, "write_document", lambda _destination, _settings, key, *_: written.append(key))
    destination = cast("Destination", object())
    bad_file = tmp_path / "a-file"
    bad_file.write_text("x", encoding="utf-8")
    bad = bad_file / "manifest.json"
    settings = settings_for(tmp_path, RunMode.UPLOAD, manifest_to_bucket=True, manifest_file=bad)
    manifest = manifests.ManifestWriter(settings, "run-1")
    reporter = report.Reporter(settings, report.Console(settings.output), manifest)
    assert not reporter.save_manifest(lambda: manifest.save(reporter.manifest_summary(), destination))
    assert manifest.entries.closed
    assert len(written) == 1 and written[0].endswith("/run-1.json")
    err = capsys.readouterr().err.splitlines()
    assert err == [f"Erro ao gravar o manifesto: cannot write {bad_file / 'manifest.json'} (Not a directory)"]

    def refused(*_: object) -> None:
        raise EngineError(S3Failure(403, "AccessDenied", "Access Denied"))

    monkeypatch.setattr(manifests, "write_document", refused)
    good = settings_for(tmp_path, RunMode.UPLOAD, manifest_to_bucket=True, manifest_file=tmp_path / "manifest.json")
    manifest = manifests.ManifestWriter(good, "run-2")
    reporter = report.Reporter(good, report.Console(good.output), manifest)
    assert not reporter.save_manifest(lambda: manifest.save(reporter.manifest_summary(), destination))
    assert (tmp_path / "manifest.json").is_file()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "Erro ao gravar o manifesto: cannot write s3://lake/Raw/Local/CSV/_manifests/2022/05/02/run-2"
    )
    assert "access denied on s3://lake/Raw/Local/CSV (AccessDenied)" in line and "None" not in line
