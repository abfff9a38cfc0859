"""Fast tests of discovery, classification, keys, configuration and the dry-run oracle (no server)."""

from __future__ import annotations

import datetime as dt
import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

import boto3
import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from s3_landing import cli, config, discovery, report
from s3_landing.config import Settings
from s3_landing.discovery import Problem, SourceFile
from s3_landing.transfer import destination, files, signing

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DAY = dt.date(2022, 5, 2)
CONFIG_VARIABLES = (
    "BUCKET_NAME",
    "LOCAL_DIR",
    "RAW_ZONE_PATH",
    "UPLOAD_DATE",
    "AWS_ENDPOINT_URL",
    "UPLOAD_CONCURRENCY",
    "DRY_RUN",
    "TZ",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
)


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No setting from the machine leaks in, and whatever a .env file adds is removed afterwards."""
    saved = dict(os.environ)
    for name in CONFIG_VARIABLES:
        os.environ.pop(name, None)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


def settings_for(source: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "source": source,
        "bucket": "lake",
        "prefix": "Raw/Local/CSV",
        "date": DAY,
        "endpoint_url": None,
        "concurrency": 4,
        "dry_run": True,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


# --- classification and keys --------------------------------------------------------------------

name_text = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="/\x00"), min_size=1)


@given(before=name_text, movies=st.sampled_from(["movies", "MOVIES", "Movies", "mOvIeS"]), after=name_text)
def test_a_name_containing_movies_in_any_case_is_movies(before: str, movies: str, after: str) -> None:
    assert discovery.category_for(before + movies + after) == "Movies"


@given(name=name_text)
def test_a_name_without_movies_is_series(name: str) -> None:
    expected = "Movies" if "movies" in name.lower() else "Series"
    assert discovery.category_for(name) == expected


def test_classification_reads_the_file_name_only() -> None:
    assert discovery.category_for("series.csv") == "Series"
    assert discovery.category_for("top_movies_2020.CSV") == "Movies"
    assert discovery.category_for("movie.csv") == "Series"


@given(name=name_text)
def test_key_keeps_the_file_name_byte_for_byte(name: str) -> None:
    key = discovery.object_key("Raw/Local/CSV", DAY, name)
    assert key == f"Raw/Local/CSV/{discovery.category_for(name)}/2022/05/02/{name}"
    assert key.encode("utf-8").endswith(name.encode("utf-8"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Raw/Local/CSV", "Raw/Local/CSV"),
        ("/Raw/Local/CSV/", "Raw/Local/CSV"),
        ("Raw\\Local\\CSV", "Raw/Local/CSV"),
        ("Raw//Local", "Raw/Local"),
        ("", ""),
    ],
)
def test_prefix_is_normalized_to_slashes_without_leading_slash(raw: str, expected: str) -> None:
    assert config.normalize_prefix(raw) == expected


def test_empty_prefix_gives_a_key_without_leading_slash() -> None:
    assert discovery.object_key("", DAY, "movies.csv") == "Movies/2022/05/02/movies.csv"


def test_month_and_day_have_two_digits() -> None:
    assert discovery.object_key("p", dt.date(2024, 1, 9), "s.csv") == "p/Series/2024/01/09/s.csv"


@pytest.mark.parametrize("name", ["a.csv", "MOVIES.CSV", "x.Csv", "dir.with.dots.csv"])
def test_csv_extension_in_any_case(name: str) -> None:
    assert discovery.is_csv_name(name)


@pytest.mark.parametrize("name", ["a.csv.bak", "a.txt", "csv", "a.csvx", "a.tsv"])
def test_other_extensions_are_not_csv(name: str) -> None:
    assert not discovery.is_csv_name(name)


def test_key_problems_name_invalid_utf8_and_overlong_keys() -> None:
    assert discovery.key_problem("Raw/ok.csv") is None
    assert "UTF-8" in (discovery.key_problem("Raw/bad\udcff.csv") or "")
    assert "1024" in (discovery.key_problem("R/" + "a" * 1100 + ".csv") or "")
    assert discovery.key_problem("R/" + "é" * 511) is None  # 2 + 1022 bytes: at the limit


def test_part_size_keeps_within_ten_thousand_parts() -> None:
    for size in (0, 20 * discovery.MIB, 5 * 1024**3, 80 * 1024**3, 5 * 1024**4):
        part = discovery.part_size_for(size)
        assert part >= discovery.MIN_PART_SIZE
        assert part % discovery.MIB == 0
        assert -(-size // part) <= discovery.MAX_PARTS


# --- discovery ----------------------------------------------------------------------------------


def write(path: Path, text: str = "id|x\n1|2\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def found_paths(root: Path) -> list[str]:
    return [str(item.path.relative_to(root)) for item in discovery.walk_csv_files(root) if isinstance(item, SourceFile)]


def test_walk_finds_csv_files_recursively_in_a_stable_order(tmp_path: Path) -> None:
    for relative in ["b/movies.csv", "a/deep/er/series.CSV", "top.csv", "a/notes.txt", "a/z.csv"]:
        write(tmp_path / relative)
    assert found_paths(tmp_path) == ["top.csv", "a/z.csv", "a/deep/er/series.CSV", "b/movies.csv"]


def test_walk_ignores_hidden_files_and_folders(tmp_path: Path) -> None:
    write(tmp_path / ".hidden.csv")
    write(tmp_path / ".git" / "movies.csv")
    write(tmp_path / "ok" / ".also-hidden" / "series.csv")
    write(tmp_path / "ok" / "series.csv")
    assert found_paths(tmp_path) == ["ok/series.csv"]


def test_walk_reports_fifo_and_broken_link_without_opening_them(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "broken.csv").symlink_to(tmp_path / "nowhere.csv")
    problems = [item for item in discovery.walk_csv_files(tmp_path) if isinstance(item, Problem)]
    reasons = {item.path.name: item.reason for item in problems}
    assert "not a regular file" in reasons["pipe.csv"]
    assert "broken symbolic link" in reasons["broken.csv"]
    assert all(item.fails_run for item in problems)


def test_walk_follows_a_symlink_loop_only_once(tmp_path: Path) -> None:
    write(tmp_path / "a" / "movies.csv")
    (tmp_path / "a" / "back").symlink_to(tmp_path)
    items = list(discovery.walk_csv_files(tmp_path))
    assert [item.path.name for item in items if isinstance(item, SourceFile)] == ["movies.csv"]
    warnings = [item for item in items if isinstance(item, Problem)]
    assert len(warnings) == 1
    assert not warnings[0].fails_run


def test_walk_refuses_links_that_leave_the_source_folder_unless_allowed(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(outside / "secret.txt")
    write(outside / "folder" / "movies.csv")
    root.mkdir()
    (root / "secret.csv").symlink_to(outside / "secret.txt")
    (root / "folder").symlink_to(outside / "folder")
    (root / "notes").symlink_to(outside / "secret.txt")  # neither a CSV nor a folder: not mentioned
    problems = {item.path.name: item for item in discovery.walk_csv_files(root) if isinstance(item, Problem)}
    assert sorted(problems) == ["folder", "secret.csv"]
    assert all(problem.fails_run and "FOLLOW_LINKS_OUTSIDE=true" in problem.reason for problem in problems.values())
    found = [item for item in discovery.walk_csv_files(root, follow_links_outside=True) if isinstance(item, SourceFile)]
    assert sorted(str(item.path.relative_to(root)) for item in found) == ["folder/movies.csv", "secret.csv"]
    assert {item.real_path for item in found} == {str(outside / "secret.txt"), str(outside / "folder" / "movies.csv")}


def discovered(root: Path) -> SourceFile:
    [found] = [item for item in discovery.walk_csv_files(root) if isinstance(item, SourceFile)]
    return found


def test_a_file_swapped_for_a_link_after_discovery_is_not_opened(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "secret.txt")
    root = tmp_path / "root"
    write(root / "movies.csv")
    found = discovered(root)
    (root / "movies.csv").unlink()
    (root / "movies.csv").symlink_to(outside)
    with pytest.raises(files.FileChanged, match="replaced by a symbolic link"):
        files.open_regular_file(found)


def test_a_folder_swapped_for_a_link_after_discovery_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "day" / "movies.csv")
    found = discovered(root)
    write(tmp_path / "outside" / "movies.csv")  # same name, same size: only the inode tells them apart
    (root / "day").rename(tmp_path / "old-day")
    (root / "day").symlink_to(tmp_path / "outside")
    with pytest.raises(files.FileChanged, match="replaced by another file"):
        files.open_regular_file(found)
    with pytest.raises(files.FileChanged):
        files.ensure_unchanged(found)


def test_walk_follows_a_symlinked_file(tmp_path: Path) -> None:
    target = write(tmp_path / "store" / "real.txt")
    (tmp_path / "linked_series.csv").symlink_to(target)
    assert found_paths(tmp_path) == ["linked_series.csv"]


# --- configuration ------------------------------------------------------------------------------


def test_bucket_comes_from_flag_over_environment_over_env_file(clean_env: Path) -> None:
    write(clean_env / ".env", "BUCKET_NAME=from-file\nRAW_ZONE_PATH=File/Prefix\n")
    assert config.load_settings([]).bucket == "from-file"
    os.environ["BUCKET_NAME"] = "from-env"
    settings = config.load_settings([])
    assert settings.bucket == "from-env"
    assert settings.prefix == "File/Prefix"
    assert config.load_settings(["--bucket", "from-flag"]).bucket == "from-flag"


def test_env_file_flag_reads_another_file(clean_env: Path) -> None:
    write(clean_env / "conf" / "prod.env", "BUCKET_NAME=prod-bucket\nUPLOAD_DATE=2021-12-31\n")
    settings = config.load_settings(["--env-file", str(clean_env / "conf" / "prod.env")])
    assert (settings.bucket, settings.date) == ("prod-bucket", dt.date(2021, 12, 31))


def test_defaults(clean_env: Path) -> None:
    settings = config.load_settings(["--bucket", "b"])
    assert settings.source == Path("/app/data.base")
    assert settings.prefix == "Raw/Local/CSV"
    assert settings.date == dt.date.today()
    assert settings.endpoint_url is None
    assert not settings.dry_run
    assert settings.retry_mode == "standard"


def test_flags_override_every_setting(clean_env: Path) -> None:
    os.environ.update({"LOCAL_DIR": "/env", "RAW_ZONE_PATH": "env", "UPLOAD_DATE": "2020-01-01"})
    os.environ.update({"AWS_ENDPOINT_URL": "http://env", "UPLOAD_CONCURRENCY": "3"})
    argv = ["--bucket", "b", "--source", "/flag", "--prefix", "flag", "--date", "2021-02-03"]
    argv += ["--endpoint-url", "http://flag", "--concurrency", "7", "--dry-run"]
    settings = config.load_settings(argv)
    assert settings == Settings(Path("/flag"), "b", "flag", dt.date(2021, 2, 3), "http://flag", 7, True)


def test_environment_settings_are_read(clean_env: Path) -> None:
    os.environ.update({"BUCKET_NAME": "b", "LOCAL_DIR": "/env", "UPLOAD_DATE": "2020-01-01", "DRY_RUN": "true"})
    os.environ.update({"AWS_ENDPOINT_URL": "http://env", "UPLOAD_CONCURRENCY": "3", "AWS_MAX_ATTEMPTS": "9"})
    settings = config.load_settings([])
    assert (settings.source, settings.date, settings.endpoint_url) == (
        Path("/env"),
        DAY.replace(2020, 1, 1),
        "http://env",
    )
    assert (settings.concurrency, settings.dry_run, settings.max_attempts) == (3, True, 9)


def test_time_zone_decides_the_date_near_midnight(clean_env: Path) -> None:
    os.environ["TZ"] = "Pacific/Kiritimati"  # UTC+14
    ahead = config.today_in_local_zone()
    os.environ["TZ"] = "Pacific/Pago_Pago"  # UTC-11
    behind = config.today_in_local_zone()
    assert (ahead - behind).days == 1


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, "no bucket name"),
        (["--bucket", "b", "--date", "02/05/2022"], {}, "is not YYYY-MM-DD"),
        (["--bucket", "b", "--concurrency", "0"], {}, "from 1 to 256"),
        (["--bucket", "b"], {"UPLOAD_CONCURRENCY": "many"}, "from 1 to 256"),
        (["--bucket", "b"], {"AWS_RETRY_MODE": "sometimes"}, "AWS_RETRY_MODE"),
        (["--bucket", "b"], {"TZ": "Mars/Olympus"}, "not a time zone"),
        (["--bucket", "b", "--env-file", "missing.env"], {}, "env file missing.env not found"),
        (["--bucket", "b", "--nonsense"], {}, "unrecognized arguments"),
        (["--bucket", "b", "--source", "does/not/exist"], {}, "does not exist"),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(
    clean_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], env: dict[str, str], expected: str
) -> None:
    os.environ.update(env)
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert expected in captured.err
    assert "Traceback" not in captured.err


def test_help_documents_every_flag_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for word in ["--source", "LOCAL_DIR", "--bucket", "BUCKET_NAME", "--prefix", "RAW_ZONE_PATH", "--date"]:
        assert word in text
    for word in ["UPLOAD_DATE", "--endpoint-url", "AWS_ENDPOINT_URL", "--concurrency", "UPLOAD_CONCURRENCY"]:
        assert word in text
    for word in ["--dry-run", "DRY_RUN", "--env-file", "AWS_PROFILE", "AWS_SESSION_TOKEN"]:
        assert word in text


# --- the dry run as the test oracle -------------------------------------------------------------


def test_dry_run_prints_every_key_and_touches_nothing(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = clean_env / "data"
    write(source / "movies.csv")
    write(source / "2022" / "series.csv")
    write(source / "extra" / "Top MOVIES #1 +50% é.csv")
    code = cli.main(["--source", str(source), "--bucket", "lake", "--date", "2022-05-02", "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out == [
        f"[dry-run] Iniciando upload de {source}/movies.csv para s3://lake/Raw/Local/CSV/Movies/2022/05/02/movies.csv",
        f"[dry-run] Iniciando upload de {source}/2022/series.csv para s3://lake/Raw/Local/CSV/Series/2022/05/02/series.csv",
        f"[dry-run] Iniciando upload de {source}/extra/Top MOVIES #1 +50% é.csv para "
        "s3://lake/Raw/Local/CSV/Movies/2022/05/02/Top MOVIES #1 +50% é.csv",
        "Processo concluído!",
        "Resumo (dry-run, nada enviado): 3 a enviar, 0 com falha",
    ]


def test_dry_run_needs_no_credentials_or_network(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(clean_env / "data" / "movies.csv")
    os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # nothing listens there
    assert cli.main(["--source", str(clean_env / "data"), "--bucket", "b", "--dry-run"]) == 0


def test_same_name_in_two_folders_fails_both_and_uploads_neither(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = clean_env / "data"
    write(source / "a" / "movies.csv")
    write(source / "b" / "movies.csv")
    write(source / "series.csv")
    assert cli.main(["--source", str(source), "--bucket", "b", "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("Iniciando upload") == 1
    assert "series.csv" in captured.out
    errors = captured.err.splitlines()
    assert len(errors) == 2
    assert all(line.startswith("Erro ao enviar") and "same key" in line for line in errors)


def test_empty_folder_exits_0_with_a_clear_message(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (clean_env / "empty").mkdir()
    assert cli.main(["--source", str(clean_env / "empty"), "--bucket", "b"]) == 0
    assert "Nenhum arquivo CSV" in capsys.readouterr().out


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


def test_bucket_region_comes_from_head_bucket_even_when_it_is_refused() -> None:
    client = boto3.session.Session().client(
        "s3", region_name="us-east-1", aws_access_key_id="AKIAUNIT", aws_secret_access_key="unit"
    )
    with Stubber(client) as stub:
        stub.add_response("head_bucket", {"ResponseMetadata": {"HTTPHeaders": {"x-amz-bucket-region": "sa-east-1"}}})
        stub.add_client_error(
            "head_bucket",
            "301",
            http_status_code=301,
            response_meta={"HTTPHeaders": {"x-amz-bucket-region": "eu-west-1"}},
        )
        stub.add_response("head_bucket", {"ResponseMetadata": {"HTTPHeaders": {}}})
        assert destination.bucket_region(client, "lake") == "sa-east-1"
        assert destination.bucket_region(client, "lake") == "eu-west-1"
        assert destination.bucket_region(client, "lake") is None


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
        (files.FileChanged("changed during the upload"), "changed during the upload"),
    ],
)
def test_each_error_type_has_its_message(tmp_path: Path, error: BaseException, expected: str) -> None:
    message = report.explain(error, settings_for(tmp_path))
    assert expected in message
    assert "\n" not in message


def test_explain_never_prints_a_secret(clean_env: Path, tmp_path: Path) -> None:
    os.environ["AWS_SECRET_ACCESS_KEY"] = "Zsecretvalue"
    message = report.explain(RuntimeError("boom Zsecretvalue"), settings_for(tmp_path))
    assert "Zsecretvalue" not in message


def test_human_bytes() -> None:
    assert report.human_bytes(0) == "0 B"
    assert report.human_bytes(1536) == "1.5 KiB"
    assert report.human_bytes(3 * 1024**3) == "3.0 GiB"


FROZEN_NOW = dt.datetime(2026, 11, 28, 23, 59, 58)


def botocore_authorization(url: str, headers: dict[str, str], credentials: Credentials, region: str) -> str:
    """botocore's own S3 SigV4 signature of the same PUT: the oracle for PutSigner."""
    request = AWSRequest(method="PUT", url=url, headers=headers)
    request.context["payload_signing_enabled"] = False  # as botocore does for a streamed body over https
    S3SigV4Auth(credentials, "s3", region).add_auth(request)
    return str(request.headers["Authorization"])


UNIT_KEY_ID, UNIT_SECRET = "AKIAUNIT", "unit/secret+key"


@functools.cache
def client_for(endpoint_url: str | None) -> S3Client:
    session = config.new_session()
    client_config = Config(signature_version="s3v4")
    client = session.create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="sa-east-1",
        config=client_config,
        aws_access_key_id=UNIT_KEY_ID,
        aws_secret_access_key=UNIT_SECRET,
    )
    return cast("S3Client", client)


@pytest.mark.parametrize(
    ("endpoint_url", "expected_url"),
    [
        (None, "https://lake.s3.sa-east-1.amazonaws.com"),  # AWS: virtual-host addressing
        ("https://minio.internal:9000", "https://minio.internal:9000"),  # a custom endpoint: path style
    ],
)
@hypothesis_settings(deadline=None)  # the first example builds botocore's client: hundreds of ms on a busy machine
@given(
    key=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
    part=st.none() | st.integers(1, 10_000),
    token=st.none() | st.text("abcXYZ019+/=", min_size=1, max_size=20),
)
def test_put_signer_signs_exactly_as_botocore(
    endpoint_url: str | None, expected_url: str, key: str, part: int | None, token: str | None
) -> None:
    credentials = Credentials(UNIT_KEY_ID, UNIT_SECRET, token)
    signer = signing.PutSigner(client_for(endpoint_url), "lake", credentials)
    assert signer.url == expected_url
    query = {} if part is None else {"partNumber": str(part), "uploadId": "2~a/b+c=d e"}
    target = signer.target(key, query)
    headers = {"content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "content-type": "text/csv", "content-length": "0"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "gmtime", FROZEN_NOW.timetuple)
        patch.setattr(botocore.auth, "get_current_datetime", lambda: FROZEN_NOW)
        ours = signer.sign(target, headers)
        theirs = botocore_authorization(signer.url + target, headers, credentials, "sa-east-1")
    assert ours["authorization"] == theirs
    assert ours["x-amz-date"] == "20261128T235958Z"
    assert ours.get("x-amz-security-token") == token
