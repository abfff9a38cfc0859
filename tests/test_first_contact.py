"""What a new user hits in the first hour, through the real command line: typos in settings, endpoints and bucket
names written the wrong way, dates, an empty or unmounted folder, and a failure nobody foresaw. Each is one line
that says what is wrong and how to fix it, with the exit code the README gives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from seaweed import SeaweedServer
from test_cli import DATE, MOVIES, SCRIPT, Run, assert_fatal, keys_in, run_uploader, uploader_env

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "movies.csv").write_text("tconst|title\ntt1|x\n", encoding="utf-8")
    return folder


def upload(server: SeaweedServer, bucket: str, source: Path, *args: str, **env: str) -> Run:
    settings = uploader_env(server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE, PROGRESS_INTERVAL="0", **env)
    return run_uploader(server, ["--source", str(source), *args], settings, timeout=60)


# --- true/false settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variable", ["DRY_RUN", "MANIFEST", "QUIET", "VERBOSE", "FOLLOW_LINKS_OUTSIDE", "FAIL_IF_EMPTY"]
)
def test_a_typo_in_a_true_false_setting_is_an_error_not_false(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, variable: str
) -> None:
    run = upload(s3_server, bucket, source, **{variable: "ture"})
    assert_fatal(run, f"{variable}='ture' is neither true nor false", "true or false")
    assert keys_in(admin_s3, bucket) == set()


@pytest.mark.parametrize("value", ["YES", "On", "1", "TRUE"])
def test_true_is_spelled_any_usual_way(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, value: str
) -> None:
    run = upload(s3_server, bucket, source, DRY_RUN=value)
    assert run.code == 0, run.err
    assert run.summary().startswith("Resumo (dry-run, nada enviado): 1 a enviar")
    assert keys_in(admin_s3, bucket) == set()


def test_false_is_spelled_any_usual_way(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path
) -> None:
    run = upload(s3_server, bucket, source, DRY_RUN="Off", QUIET="no", MANIFEST="0", VERBOSE="FALSE")
    assert run.code == 0, run.err
    assert keys_in(admin_s3, bucket) == {f"{MOVIES}/movies.csv"}


# --- endpoints and bucket names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("127.0.0.1:9000", ["'127.0.0.1:9000' is not an http(s) URL", "https://HOST[:PORT]"]),
        ("localhost:9000", ["'localhost:9000' is not an http(s) URL", "https://HOST[:PORT]"]),
        ("htp://127.0.0.1:9000", ["AWS_ENDPOINT_URL / --endpoint-url 'htp://127.0.0.1:9000' is not an http(s) URL"]),
        ("http://127.0.0.1:port", ["is not an http(s) URL"]),
    ],
    ids=["ip-port", "host-port", "bad-scheme", "bad-port"],
)
def test_an_endpoint_that_is_not_a_url_is_one_line_and_exit_2(
    s3_server: SeaweedServer, bucket: str, source: Path, endpoint: str, words: list[str]
) -> None:
    for args in (["--endpoint-url", endpoint], ["--dry-run", "--endpoint-url", endpoint]):
        assert_fatal(upload(s3_server, bucket, source, *args), *words)


def test_an_endpoint_ending_with_the_bucket_name_says_to_drop_it(
    s3_server: SeaweedServer, bucket: str, source: Path
) -> None:
    run = upload(s3_server, bucket, source, "--endpoint-url", f"{s3_server.endpoint}/{bucket}")
    assert_fatal(run, "ends with the bucket's name", f"({s3_server.endpoint})", "BUCKET_NAME / --bucket")


@pytest.mark.parametrize(
    ("name", "fix"),
    [
        ("s3://lake", "without s3://"),
        ("lake/", "without '/' or a path"),
        ("lake/raw", "without '/' or a path"),
        ('"lake"', "drop the quotes"),
        ("'lake'", "drop the quotes"),
        ("la ke", "lowercase letters, digits, dots and hyphens"),
    ],
)
def test_a_bucket_name_mistake_is_caught_up_front_dry_run_included(
    s3_server: SeaweedServer, source: Path, name: str, fix: str
) -> None:
    for args in ([], ["--dry-run"]):
        run = upload(s3_server, name, source, *args)
        assert_fatal(run, f"bucket name {name!r} is not valid", fix)


# --- dates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("date", "words"),
    [
        ("20240131", ["'20240131' is not YYYY-MM-DD"]),
        ("2024-W05-3", ["'2024-W05-3' is not YYYY-MM-DD"]),
        ("2024-1-31", ["is not YYYY-MM-DD"]),
        ("2024-13-01", ["has month 13, not 01 to 12"]),
        ("2023-02-29", ["has day 29, but 2023-02 has 28 days"]),
        ("0000-01-01", ["has year 0000"]),
    ],
)
def test_a_date_is_exactly_yyyy_mm_dd_and_the_bad_part_is_named(
    s3_server: SeaweedServer, bucket: str, source: Path, date: str, words: list[str]
) -> None:
    assert_fatal(upload(s3_server, bucket, source, "--dry-run", "--date", date), *words, "--date or UPLOAD_DATE")


def test_a_leap_day_is_a_date(s3_server: SeaweedServer, bucket: str, source: Path) -> None:
    run = upload(s3_server, bucket, source, "--dry-run", "--date", "2024-02-29")
    assert run.code == 0, run.err
    assert "/Movies/2024/02/29/movies.csv" in run.out


# --- an empty folder ----------------------------------------------------------------------------


def test_an_empty_folder_says_so_and_how_to_mount_one(s3_server: SeaweedServer, bucket: str, tmp_path: Path) -> None:
    run = upload(s3_server, bucket, tmp_path)
    assert run.code == 0, run.err
    assert f"Nenhum arquivo CSV para enviar em {tmp_path}: the folder has no *.csv file" in run.out
    assert '-v "$PWD/data:/app/data.base:ro"' in run.out


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_fail_if_empty_makes_an_empty_folder_exit_2(
    s3_server: SeaweedServer, bucket: str, tmp_path: Path, how: str
) -> None:
    (tmp_path / "notes.txt").write_text("not a CSV\n", encoding="utf-8")
    run = (
        upload(s3_server, bucket, tmp_path, "--fail-if-empty")
        if how == "flag"
        else upload(s3_server, bucket, tmp_path, FAIL_IF_EMPTY="true")
    )
    assert_fatal(run, f"no CSV file in {tmp_path} (FAIL_IF_EMPTY is set)", "-v")


def test_fail_if_empty_looks_at_the_folder_not_at_the_shard(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path
) -> None:
    runs = [upload(s3_server, bucket, source, "--fail-if-empty", "--shard", f"{index}/2") for index in (0, 1)]
    assert [run.code for run in runs] == [0, 0], [run.err for run in runs]
    assert sum("none of its 1 falls to this shard" in run.out for run in runs) == 1
    assert keys_in(admin_s3, bucket) == {f"{MOVIES}/movies.csv"}


def test_a_folder_whose_only_csv_cannot_be_sent_is_not_called_empty(
    s3_server: SeaweedServer, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    source.mkdir()
    (tmp_path / "secret.txt").write_text("outside\n", encoding="utf-8")
    (source / "movies.csv").symlink_to(tmp_path / "secret.txt")
    run = upload(s3_server, bucket, source, "--fail-if-empty")
    assert run.code == 1, run.out + run.err
    assert run.err.splitlines()[0].startswith(f"Erro ao enviar {source / 'movies.csv'}: symbolic link to ")
    assert "Nenhum arquivo CSV" not in run.out


def test_an_env_file_that_is_a_device_is_read(s3_server: SeaweedServer, bucket: str, source: Path) -> None:
    run = upload(s3_server, bucket, source, "--dry-run", "--env-file", "/dev/null")
    assert run.code == 0, run.err


# --- the unforeseen -----------------------------------------------------------------------------


def run_with_a_fault(server: SeaweedServer, bucket: str, source: Path, where: str, *args: str) -> Run:
    """The real entry point, with `where` (a function s3_landing.cli calls, named from that module) made to raise
    an error nobody foresaw."""
    program = (
        "import runpy, sys\n"
        "import s3_landing.cli as cli\n"
        "def fault(*args, **kwargs):\n"
        "    raise RuntimeError('disk on fire')\n"
        f"cli.{where} = fault\n"
        f"sys.argv = [{str(SCRIPT)!r}, *sys.argv[1:]]\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    env = uploader_env(server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE, PROGRESS_INTERVAL="0")
    completed = subprocess.run(
        [sys.executable, "-c", program, "--source", str(source), *args],
        env=env,
        cwd=SCRIPT.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Run(completed)


def test_an_unforeseen_error_before_any_upload_is_one_line_and_exit_2(
    s3_server: SeaweedServer, bucket: str, source: Path
) -> None:
    run = run_with_a_fault(s3_server, bucket, source, "take_inventory")
    assert "Traceback" not in run.err
    assert_fatal(run, "unexpected error: RuntimeError: disk on fire", "run again with --verbose for the traceback")


def test_an_unforeseen_error_after_uploads_began_is_exit_1_and_verbose_shows_the_traceback(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path
) -> None:
    run = run_with_a_fault(s3_server, bucket, source, "Reporter.save_manifest", "--manifest", "--verbose")
    assert run.code == 1, run.out + run.err
    assert "Traceback" in run.err
    assert run.err.splitlines()[-1] == "upload_s3: error: unexpected error: RuntimeError: disk on fire"
    assert keys_in(admin_s3, bucket) == {f"{MOVIES}/movies.csv"}
