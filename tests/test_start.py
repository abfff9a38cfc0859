"""The start without botocore: taken only when the environment alone says what botocore would make of it, held to
botocore's own endpoint answers, and, against SeaweedFS, a run that never imports botocore."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest
from seaweed import SeaweedServer
from test_cli import DATE, SCRIPT, keys_in, run_uploader, uploader_env
from unit_support import settings_for

from s3_landing import cli
from s3_landing.config import RunMode, Settings
from s3_landing.discovery import Inventory, take_inventory
from s3_landing.errors import FatalError
from s3_landing.transfer.botocore_calls import botocore_endpoint, make_s3_client, new_session
from s3_landing.transfer.destination import Destination
from s3_landing.transfer.start import direct_access, direct_endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ENDPOINTS: list[str | None] = [
    None,
    "http://127.0.0.1:8333",
    "http://localhost:9000",
    "https://minio.example.com",
    "https://s3.example.com:9000",
]
LEFT_TO_BOTOCORE: list[str | None] = [
    "https://s3-accelerate.amazonaws.com",
    "https://s3.eu-west-1.amazonaws.com",
    "https://lake.s3.example.com",
]
BUCKETS = ["lake", "lake--x", "my.lake", "My_Lake", "a" * 63, "arn:aws:s3:us-east-1:123456789012:accesspoint/lake"]
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_REGION": "eu-west-1",
    "AWS_CONFIG_FILE": "/nonexistent",
}
LOADS_BOTOCORE = """
import os, sys
from s3_landing import cli
code = cli.main(sys.argv[1:])
print("botocore imported:", "botocore" in sys.modules, flush=True)
os._exit(code)
"""


def every_region() -> list[str]:
    session = botocore.session.Session()
    partitions = session.get_available_partitions()
    return sorted({region for p in partitions for region in session.get_available_regions("s3", partition_name=p)})


@pytest.mark.parametrize("endpoint_url", ENDPOINTS + LEFT_TO_BOTOCORE)
def test_the_direct_endpoint_is_the_one_botocore_signs_for(
    endpoint_url: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For every region botocore knows and names of each kind: where the direct start names an endpoint, botocore
    builds the same one (URL, addressing style, signing region); where it names none, botocore starts the run."""
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    session = new_session()
    regions = every_region() if endpoint_url is None else ["us-east-1", "eu-west-1"]
    direct = 0
    for region in regions:
        for bucket in BUCKETS:
            endpoint = direct_endpoint(bucket, endpoint_url, region)
            if endpoint is None:
                continue
            direct += 1
            settings = settings_for(tmp_path)
            settings = dataclasses.replace(
                settings, target=dataclasses.replace(settings.target, bucket=bucket, endpoint_url=endpoint_url)
            )
            assert endpoint == botocore_endpoint(make_s3_client(settings, session, region), bucket), (region, bucket)
    if endpoint_url in LEFT_TO_BOTOCORE:  # S3's own endpoints, or one that names the bucket "lake"
        assert direct_endpoint("lake", endpoint_url, "eu-west-1") is None
        return
    names = 2 if endpoint_url is None else len(BUCKETS) - 1  # on AWS "lake" and "lake--x"; else all but the ARN
    assert direct >= len(regions) * names


def test_regions_outside_the_aws_partition_and_names_outside_host_names_are_left_to_botocore() -> None:
    assert direct_endpoint("lake", None, "cn-north-1") is None
    assert direct_endpoint("lake", None, "us-gov-west-1") is None
    assert direct_endpoint("my.lake", None, "eu-west-1") is None
    assert direct_endpoint("lake", None, "eu-west-1") is not None


@pytest.mark.parametrize(
    "change",
    [
        {"AWS_PROFILE": "data-eng"},
        {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"},
        {"AWS_USE_FIPS_ENDPOINT": "true"},
        {"AWS_SECURITY_TOKEN": "token"},
        {"AWS_REGION": "", "AWS_DEFAULT_REGION": ""},
        {"AWS_SECRET_ACCESS_KEY": ""},
        {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_requird"},
        {"AWS_RESPONSE_CHECKSUM_VALIDATION": "always"},
    ],
)
def test_any_other_aws_setting_leaves_the_start_to_botocore(change: dict[str, str], tmp_path: Path) -> None:
    settings = settings_for(tmp_path, RunMode.UPLOAD)
    assert direct_access(settings, ENVIRONMENT) is not None
    assert direct_access(settings, {**ENVIRONMENT, **change}) is None


def test_a_config_file_with_anything_in_it_leaves_the_start_to_botocore(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, RunMode.UPLOAD)
    config = tmp_path / "config"
    config.write_text("")
    assert direct_access(settings, {**ENVIRONMENT, "AWS_CONFIG_FILE": str(config)}) is not None
    config.write_text("[default]\nregion = sa-east-1\n")
    assert direct_access(settings, {**ENVIRONMENT, "AWS_CONFIG_FILE": str(config)}) is None


def test_a_credentials_file_whose_default_profile_holds_settings_leaves_the_start_to_botocore(tmp_path: Path) -> None:
    """botocore reads settings from the shared credentials file's profiles too (an endpoint, FIPS, a region)."""
    settings = settings_for(tmp_path, RunMode.UPLOAD)
    credentials = tmp_path / "credentials"
    environment = {**ENVIRONMENT, "AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_BATCH_JOB_ARRAY_INDEX": "0"}
    credentials.write_text("[default]\naws_access_key_id = AKIA\naws_secret_access_key = s\n[other]\nregion = x\n")
    assert direct_access(settings, environment) is not None
    credentials.write_text("[default]\naws_access_key_id = AKIA\nendpoint_url = http://10.0.0.9:9000\n")
    assert direct_access(settings, environment) is None
    credentials.write_text("[default\n")
    assert direct_access(settings, environment) is None


def test_no_overwrite_leaves_the_start_to_botocore(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, RunMode.UPLOAD)
    settings = dataclasses.replace(settings, writes=dataclasses.replace(settings.writes, no_overwrite=True))
    assert direct_access(settings, ENVIRONMENT) is None


def test_the_environment_gives_the_keys_region_and_checksum_setting(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, RunMode.UPLOAD)
    environment = {
        **ENVIRONMENT,
        "AWS_SESSION_TOKEN": "token",
        "AWS_REGION": "",
        "AWS_DEFAULT_REGION": "sa-east-1",
        "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED",
    }
    found = direct_access(settings, environment)
    assert found is not None
    endpoint, access = found
    assert endpoint.region == "sa-east-1"
    assert access.keys == {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret", "session_token": "token"}
    assert access.checksums is False


def run_and_tell_botocore(env: dict[str, str], *args: str) -> tuple[int, str, bool]:
    completed = subprocess.run(
        [sys.executable, "-c", LOADS_BOTOCORE, *args],
        env={**env, "PYTHONPATH": str(SCRIPT.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    loaded = completed.stdout.strip().splitlines()[-1]
    assert loaded in ("botocore imported: True", "botocore imported: False"), completed.stdout + completed.stderr
    return completed.returncode, completed.stdout + completed.stderr, loaded.endswith("True")


def source_of(tmp_path: Path, *names: str) -> Path:
    """A source folder with a one-row CSV under each name."""
    source = tmp_path / "data"
    source.mkdir()
    for name in names:
        (source / name).write_bytes(b"id|title\n1|Alien\n")
    return source


def test_an_upload_and_its_re_run_never_import_botocore(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    """Credentials and region in the environment: listed, written and proven by obstore alone."""
    source = source_of(tmp_path, "movies.csv", "series.csv")
    env = uploader_env(s3_server, BUCKET_NAME=bucket)
    code, output, loaded = run_and_tell_botocore(env, "--source", str(source), "--date", DATE)
    assert (code, loaded) == (0, False), output
    assert "Resumo: 2 enviados" in output
    assert len(keys_in(admin_s3, bucket)) == 2
    code, output, loaded = run_and_tell_botocore(env, "--source", str(source), "--date", DATE)
    assert (code, loaded) == (0, False), output
    assert "Resumo: 0 enviados, 2 ignorados sem alterações" in output


def test_with_a_profile_botocore_starts_the_run_and_it_lands_the_same(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    source = source_of(tmp_path, "movies.csv")
    access_key, secret_key = s3_server.creds["rw"]
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[lake]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n")
    env = {
        key: value
        for key, value in uploader_env(s3_server, BUCKET_NAME=bucket).items()
        if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    env.update(AWS_PROFILE="lake", AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    code, output, loaded = run_and_tell_botocore(env, "--source", str(source), "--date", DATE)
    assert (code, loaded) == (0, True), output
    assert keys_in(admin_s3, bucket) == {"Raw/Local/CSV/Movies/2022/05/02/movies.csv"}
    assert access_key not in output and secret_key not in output


def test_with_nothing_to_send_the_right_to_write_is_proven_before_the_manifest(
    s3_server: SeaweedServer, bucket: str, tmp_path: Path
) -> None:
    """The manifest would be the run's first write: botocore's probe comes first, and a read-only identity ends the
    run with exit 2, as when every run started with the probe."""
    source = source_of(tmp_path, "movies.csv")
    args = ["--source", str(source), "--date", DATE]
    first = run_uploader(s3_server, args, uploader_env(s3_server, BUCKET_NAME=bucket))
    assert first.code == 0, first.err
    again = run_uploader(s3_server, [*args, "--manifest"], uploader_env(s3_server, "ro", BUCKET_NAME=bucket))
    assert again.code == 2, again.out + again.err
    lines = again.err.splitlines()
    assert len(lines) == 1 and "access denied" in lines[0], lines
    assert "Arquivo sem alterações, ignorado" in again.out


def test_an_empty_folder_contacts_nothing(tmp_path: Path) -> None:
    """The direct start's listing begins when the walk finds a file to send: never, here. The server accepts
    connections and never answers, which the run would wait on for 30 s and more."""
    source = tmp_path / "data"
    source.mkdir()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        env = {**ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint, "BUCKET_NAME": "lake", "AWS_SHARED_CREDENTIALS_FILE": "/x"}
        assert direct_access(settings_for(tmp_path), env) is not None
        completed = subprocess.run(
            [sys.executable, str(SCRIPT), "--source", str(source)],
            env={**env, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        silent.setblocking(False)
        with pytest.raises(BlockingIOError):
            silent.accept()  # a connection the run made would wait here, even after the run closed it
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "Nenhum arquivo CSV para enviar" in completed.stdout
    assert completed.stderr == ""


def test_the_direct_start_begins_while_the_folder_is_walked(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """By the time the walk ends, the direct start has begun (here it gives None, and botocore's start, faked,
    ends the run)."""
    source = source_of(clean_env, "movies.csv")
    begun = threading.Event()
    waited: list[bool] = []
    walk = take_inventory

    def direct_start(settings: Settings) -> None:
        begun.set()

    def walking(*args: Any) -> Inventory:
        inventory = walk(*args)
        waited.append(begun.wait(5))  # begun during the walk: set already, or about to be in its thread
        return inventory

    def botocore_start(settings: Settings, stop: threading.Event) -> Destination:
        raise FatalError("botocore's start, faked")

    monkeypatch.setattr(cli, "direct_start", direct_start)
    monkeypatch.setattr(cli, "take_inventory", walking)
    monkeypatch.setattr(cli, "botocore_start", botocore_start)
    assert cli.main(["--source", str(source), "--bucket", "lake"]) == 2
    assert waited == [True]
