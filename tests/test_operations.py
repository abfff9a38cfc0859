"""Operating at scale: run manifests, shards, JSON logs, progress, quiet/verbose, deployment files."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from datagen import write_many, write_movies, write_series
from faultproxy import FaultProxy
from hypothesis import given
from hypothesis import strategies as st
from seaweed import SeaweedServer
from test_cli import DATE, SCRIPT, keys_in, run_uploader, uploader_env
from test_reliability import big_file, proxied_env

import s3_landing
from s3_landing import config, discovery, options
from s3_landing.errors import ConfigError
from s3_landing.transfer import files

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ROOT = Path(__file__).resolve().parent.parent
JSON_FIELDS = {"time", "level", "event", "file", "key", "bytes", "status", "error"}


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    source = tmp_path / "lake"
    (source / "nested").mkdir(parents=True)
    write_movies(source / "movies.csv", 30_000, seed=11)
    write_series(source / "nested" / "series.csv", 20_000, seed=12, crlf=True)
    (source / "nested" / "empty_movies.csv").write_bytes(b"")
    return source


def load_manifest_from_bucket(s3: S3Client, bucket: str) -> tuple[str, dict[str, Any]]:
    keys = [key for key in keys_in(s3, bucket) if "/_manifests/" in key]
    assert len(keys) == 1, keys
    return keys[0], json.loads(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read())


def expected_stats(path: Path) -> dict[str, Any]:
    content = path.read_bytes()
    lines = content.splitlines()
    return {
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "header": lines[0].decode("utf-8") if lines else None,
        "delimiter": "|" if lines else None,
        "rows": max(len(lines) - 1, 0),
    }


# --- manifest -----------------------------------------------------------------------------------


def test_manifest_in_the_bucket_and_locally_lists_what_landed(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, lake: Path, tmp_path: Path
) -> None:
    local = tmp_path / "run-manifest.json"
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE, MANIFEST="true")
    run = run_uploader(s3_server, ["--source", str(lake), "--manifest-file", str(local)], env)
    assert run.code == 0, run.err
    key, document = load_manifest_from_bucket(admin_s3, bucket)
    assert key.startswith("Raw/Local/CSV/_manifests/2022/05/02/")
    assert key == f"Raw/Local/CSV/_manifests/2022/05/02/{document['run']['id']}.json"
    assert json.loads(local.read_text(encoding="utf-8")) == document
    assert f"Manifesto gravado: s3://{bucket}/{key}" in run.out

    record = document["run"]
    assert (record["bucket"], record["prefix"], record["date"]) == (bucket, "Raw/Local/CSV", DATE)
    assert (record["source"], record["version"], record["shard"]) == (
        str(lake),
        s3_landing.__version__,
        {"index": 0, "count": 1},
    )
    assert record["started_at"] <= record["ended_at"]
    total = sum(path.stat().st_size for path in lake.rglob("*") if path.suffix.lower() == ".csv")
    assert document["summary"] == {"uploaded": 3, "skipped": 0, "failed": 0, "bytes_uploaded": total}
    files = {entry["path"]: entry for entry in document["files"]}
    assert set(files) == {"movies.csv", "nested/series.csv", "nested/empty_movies.csv"}
    for relative, entry in files.items():
        assert entry["status"] == "uploaded"
        assert entry["reason"] is None
        assert entry["key"] == discovery.object_key("Raw/Local/CSV", options.parse_date(DATE), Path(relative).name)
        assert {name: entry[name] for name in ("size", "sha256", "header", "delimiter", "rows")} == expected_stats(
            lake / relative
        )


def test_manifest_of_a_rerun_records_skips_and_failures(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, lake: Path, tmp_path: Path
) -> None:
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE)
    assert run_uploader(s3_server, ["--source", str(lake)], env).code == 0
    (lake / "other").mkdir()
    (lake / "other" / "series.csv").write_text("id|x\n1|2\n", encoding="utf-8")
    local = tmp_path / "second.json"
    run = run_uploader(s3_server, ["--source", str(lake), "--manifest-file", str(local)], env)
    assert run.code == 1
    files = {entry["path"]: entry for entry in json.loads(local.read_text(encoding="utf-8"))["files"]}
    assert files["movies.csv"]["status"] == "skipped"
    assert files["movies.csv"]["sha256"] == expected_stats(lake / "movies.csv")["sha256"]
    assert files["movies.csv"]["rows"] == expected_stats(lake / "movies.csv")["rows"]
    for relative in ("nested/series.csv", "other/series.csv"):
        assert files[relative]["status"] == "failed"
        assert "map to the same key" in files[relative]["reason"]
    assert not any("/_manifests/" in key for key in keys_in(admin_s3, bucket))


def test_a_large_file_skipped_after_a_head_is_recorded_with_its_content_details(
    s3_server: SeaweedServer, bucket: str, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Issue 19, defect 1: when the listing gives no ETag and the bucket holds the same file of 16 MiB or more, the
    skip is decided after a HEAD; the manifest records the file's own SHA-256 and rows (it recorded an empty
    file's SHA-256 and rows 0 when the skip returned before the content was counted)."""
    big = big_file(tmp_path)
    env = proxied_env(s3_server, proxy, bucket)
    assert run_uploader(s3_server, ["--source", str(tmp_path)], env).code == 0
    proxy.rewrite_listings = lambda body: re.sub(rb"<ETag>.*?</ETag>", b"", body)
    manifest = tmp_path.parent / f"{tmp_path.name}.json"
    run = run_uploader(s3_server, ["--source", str(tmp_path), "--manifest-file", str(manifest)], env)
    assert run.code == 0, run.err
    assert run.summary().startswith("Resumo: 0 enviados, 1 ignorados sem alterações")
    assert any(request.method == "HEAD" and big.name in request.target for request in proxy.requests)
    [entry] = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    expected = expected_stats(big)
    assert {name: entry[name] for name in expected} == expected


@pytest.mark.parametrize("mode", [[], ["--check"]], ids=["upload", "check"])
def test_a_manifest_file_whose_folder_is_missing_stops_the_run_before_anything_is_sent(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, lake: Path, tmp_path: Path, mode: list[str]
) -> None:
    target = tmp_path / "no-such-folder" / "manifest.json"
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE)
    run = run_uploader(s3_server, ["--source", str(lake), "--manifest-file", str(target), *mode], env)
    assert run.code == 2
    assert run.err.splitlines() == [
        f"upload_s3: error: the folder of the manifest file {target} does not exist: create it or fix "
        "--manifest-file / MANIFEST_FILE"
    ]
    assert keys_in(admin_s3, bucket) == set()  # not a byte sent: the run's lineage is never lost to a typo


def test_content_stats_count_rows_headers_and_delimiters() -> None:
    def stats_of(*chunks: bytes) -> dict[str, Any]:
        stats = files.ContentStats()
        for chunk in chunks:
            stats.feed(chunk)
        return stats.summary()

    assert stats_of(b"a|b\r\n1|2\r\n3|4") | {"sha256": ""} == {
        "sha256": "",
        "header": "a|b",
        "delimiter": "|",
        "rows": 2,
    }
    assert stats_of(b"a,b", b",c\n1,2,3\n")["header"] == "a,b,c"
    assert stats_of(b"a,b", b",c\n1,2,3\n")["delimiter"] == ","
    assert stats_of(b"\xef\xbb\xbfid;x\n")["header"] == "id;x"
    assert stats_of(b"")["rows"] == 0
    assert stats_of(b"")["header"] is None
    assert stats_of(b"single\n")["delimiter"] is None
    assert stats_of(b"x" * 100, b"y\n")["sha256"] == hashlib.sha256(b"x" * 100 + b"y\n").hexdigest()


# --- shards -------------------------------------------------------------------------------------


@given(name=st.text(min_size=1), count=st.integers(min_value=1, max_value=64))
def test_every_file_name_belongs_to_exactly_one_shard(name: str, count: int) -> None:
    owners = [index for index in range(count) if config.Shard(index, count).owns(name)]
    assert len(owners) == 1


def test_shard_settings_from_flag_and_orchestrator_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("SHARD_INDEX", "SHARD_COUNT", "JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"):
        monkeypatch.delenv(name, raising=False)
    assert config.load_settings(["--bucket", "b", "--shard", "2/5"]).source.shard == config.Shard(2, 5)
    monkeypatch.setenv("SHARD_COUNT", "4")
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "3")
    assert config.load_settings(["--bucket", "b"]).source.shard == config.Shard(3, 4)
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    monkeypatch.setenv("AWS_BATCH_JOB_ARRAY_INDEX", "1")
    assert config.load_settings(["--bucket", "b"]).source.shard == config.Shard(1, 4)
    with pytest.raises(ConfigError, match="shard index"):
        config.load_settings(["--bucket", "b", "--shard", "4/4"])
    monkeypatch.delenv("SHARD_COUNT")
    with pytest.raises(ConfigError, match="SHARD_COUNT"):
        config.load_settings(["--bucket", "b"])


def test_shards_side_by_side_upload_exactly_the_keys_of_one_run(
    s3_server: SeaweedServer, admin_s3: S3Client, tmp_path: Path
) -> None:
    source = tmp_path / "many"
    write_many(source, 60, 2_000, seed=21)
    (source / "dup_a").mkdir()
    (source / "dup_b").mkdir()
    for folder in ("dup_a", "dup_b"):
        (source / folder / "twice_movies.csv").write_text("id|x\n", encoding="utf-8")
    whole, sharded = "whole-" + os.urandom(4).hex(), "sharded-" + os.urandom(4).hex()
    for name in (whole, sharded):
        admin_s3.create_bucket(Bucket=name)
    single = run_uploader(
        s3_server, ["--source", str(source)], uploader_env(s3_server, BUCKET_NAME=whole, UPLOAD_DATE=DATE)
    )
    assert single.code == 1  # the collision

    processes = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), "--source", str(source), "--shard", f"{index}/3"],
            env=uploader_env(s3_server, BUCKET_NAME=sharded, UPLOAD_DATE=DATE),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(3)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    uploaded = [out.count("Arquivo enviado:") for out, _ in outputs]
    collisions = [err.count("map to the same key") for _, err in outputs]
    assert keys_in(admin_s3, sharded) == keys_in(admin_s3, whole)
    assert len(keys_in(admin_s3, whole)) == 60
    assert sum(uploaded) == 60  # no file uploaded twice
    assert sorted(collisions) == [0, 0, 2]  # both same-named files landed in one shard, which saw the collision
    assert sorted(process.returncode for process in processes) == [0, 0, 1]


# --- logs and progress --------------------------------------------------------------------------


def test_json_logs_have_a_stable_set_of_fields(s3_server: SeaweedServer, bucket: str, lake: Path) -> None:
    os.mkfifo(lake / "pipe_movies.csv")
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE, LOG_FORMAT="json")
    run = run_uploader(s3_server, ["--source", str(lake)], env)
    assert run.code == 1
    records = [json.loads(line) for line in (run.out + run.err).splitlines()]
    assert all(set(record) >= JSON_FIELDS for record in records)
    events = [record["event"] for record in records]
    assert events.count("start") == 3
    assert events.count("uploaded") == 3
    assert events.count("failed") == 1
    assert [json.loads(line)["event"] for line in run.out.splitlines()][-2:] == ["done", "summary"]
    uploaded = next(
        record for record in records if record["event"] == "uploaded" and record["file"].endswith("/movies.csv")
    )
    assert uploaded["key"] == "Raw/Local/CSV/Movies/2022/05/02/movies.csv"
    assert uploaded["bytes"] == (lake / "movies.csv").stat().st_size
    assert uploaded["status"] == "uploaded"
    assert uploaded["level"] == "info"
    failed = next(record for record in records if record["event"] == "failed")
    assert failed["level"] == "error"
    assert "not a regular file" in failed["error"]
    assert json.loads(run.out.splitlines()[-1])["uploaded"] == 3


def test_progress_lines_report_files_bytes_rate_and_time_left(
    s3_server: SeaweedServer, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "progress"
    write_many(source, 120, 5_000, seed=31)
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE, LOG_FORMAT="json")
    run = run_uploader(s3_server, ["--source", str(source), "--concurrency", "1", "--progress-interval", "0.05"], env)
    assert run.code == 0
    progress = [record for record in map(json.loads, run.out.splitlines()) if record["event"] == "progress"]
    assert progress, "the run was too quick for a single progress line"
    totals = {(record["files_total"], record["bytes_total"]) for record in progress}
    size = sum(path.stat().st_size for path in source.rglob("*") if path.suffix.lower() == ".csv")
    assert totals == {(120, size)}
    done = [record["files_done"] for record in progress]
    assert done == sorted(done)


def test_progress_on_a_terminal_updates_one_line_in_place(
    s3_server: SeaweedServer, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "tty"
    write_many(source, 80, 5_000, seed=41)
    env = uploader_env(s3_server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE)
    argv = [sys.executable, str(SCRIPT), "--source", str(source), "--concurrency", "1", "--progress-interval", "0.05"]
    controller, terminal = pty.openpty()
    with subprocess.Popen(argv, env=env, stdin=terminal, stdout=terminal, stderr=terminal) as process:
        os.close(terminal)
        screen = read_all(controller)
        assert process.wait(timeout=60) == 0
    os.close(controller)
    assert "\rProgresso: " in screen
    assert "\x1b[K" in screen
    assert "\nProgresso: " not in screen  # never a line of its own on a terminal


def read_all(descriptor: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 65536)
        except OSError:  # the terminal closes when the child exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_quiet_prints_only_errors_and_the_summary(s3_server: SeaweedServer, bucket: str, lake: Path) -> None:
    os.mkfifo(lake / "pipe.csv")
    run = run_uploader(s3_server, ["--source", str(lake), "--quiet"], uploader_env(s3_server, BUCKET_NAME=bucket))
    assert run.code == 1
    assert run.out.splitlines()[:-1] == ["Processo concluído!"]
    assert run.summary().startswith("Resumo: 3 enviados")
    assert [line.split(":")[0] for line in run.err.splitlines()] == [f"Erro ao enviar {lake / 'pipe.csv'}"]


def test_verbose_says_why_a_file_was_skipped(s3_server: SeaweedServer, bucket: str, lake: Path) -> None:
    env = uploader_env(s3_server, BUCKET_NAME=bucket)
    assert run_uploader(s3_server, ["--source", str(lake)], env).code == 0
    plain = run_uploader(s3_server, ["--source", str(lake)], env)
    verbose = run_uploader(s3_server, ["--source", str(lake), "--verbose"], env)
    assert "(same size and ETag as the object in the bucket)" not in plain.out
    assert verbose.out.count("(same size and ETag as the object in the bucket)") == 3


# --- deployment files ---------------------------------------------------------------------------


def test_kubernetes_indexed_job_is_consistent() -> None:
    job = yaml.safe_load((ROOT / "deploy" / "kubernetes-indexed-job.yaml").read_text(encoding="utf-8"))
    assert (job["apiVersion"], job["kind"], job["spec"]["completionMode"]) == ("batch/v1", "Job", "Indexed")
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert int(env["SHARD_COUNT"]) == job["spec"]["completions"] == job["spec"]["parallelism"]
    assert container["envFrom"][0]["secretRef"]["name"]
    mount = container["volumeMounts"][0]
    assert (mount["mountPath"], mount["readOnly"]) == ("/app/data.base", True)
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert options.build_parser().parse_args(container["args"]).manifest is True
    assert env["BUCKET_NAME"] == env["BUCKET_NAME"].upper()  # placeholders in capitals, as the README says
    recipe = (ROOT / "deploy" / "kubernetes-indexed-job.yaml").read_text(encoding="utf-8")
    assert "--from-env-file" not in recipe  # the Secret holds the credentials, not the whole .env


def test_aws_batch_array_job_is_consistent() -> None:
    definition = json.loads((ROOT / "deploy" / "aws-batch-job-definition.json").read_text(encoding="utf-8"))
    submit = json.loads((ROOT / "deploy" / "aws-batch-submit-array-job.json").read_text(encoding="utf-8"))
    properties = definition["containerProperties"]
    env = {item["name"]: item["value"] for item in properties["environment"]}
    assert int(env["SHARD_COUNT"]) == submit["arrayProperties"]["size"]
    assert submit["jobDefinition"] == definition["jobDefinitionName"]
    assert properties["mountPoints"][0] == {"sourceVolume": "data", "containerPath": "/app/data.base", "readOnly": True}
    assert "AWS_ACCESS_KEY_ID" not in env  # credentials come from the job role
    assert all(env[name] == env[name].upper() for name in ("BUCKET_NAME", "AWS_REGION"))  # placeholders
    assert options.build_parser().parse_args(properties["command"]).log_format == "json"


def test_kubernetes_cronjob_lands_safely_with_the_images_version(clean_env: Path) -> None:
    cron = yaml.safe_load((ROOT / "deploy" / "kubernetes-cronjob.yaml").read_text(encoding="utf-8"))
    assert (cron["apiVersion"], cron["kind"]) == ("batch/v1", "CronJob")
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert container["image"].endswith(f"/upload-s3:{s3_landing.__version__}")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (container["volumeMounts"][0]["mountPath"], container["volumeMounts"][0]["readOnly"]) == (
        "/app/data.base",
        True,
    )
    os.environ.update(env)
    settings = config.load_settings(container["args"])
    assert (settings.source.min_age, settings.writes.no_overwrite) == (300, True)
    assert settings.output.manifest_to_bucket


def test_every_deployment_file_names_the_images_version() -> None:
    tagged = re.compile(r"upload-s3:([0-9.]+)")
    tags = {path.name: tagged.findall(path.read_text(encoding="utf-8")) for path in (ROOT / "deploy").iterdir()}
    assert {name: found for name, found in tags.items() if found} == {
        "aws-batch-job-definition.json": [s3_landing.__version__],
        "kubernetes-cronjob.yaml": [s3_landing.__version__],
        "kubernetes-indexed-job.yaml": [s3_landing.__version__],
    }
