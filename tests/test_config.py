"""Configuration without a server: flags over environment over .env, defaults, checks, --help."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from unit_support import DAY, write

from s3_landing import cli, config, options
from s3_landing.config import Output, Run, RunMode, Settings, Source, Target

# --- configuration ------------------------------------------------------------------------------


def test_bucket_comes_from_flag_over_environment_over_env_file(clean_env: Path) -> None:
    write(clean_env / ".env", "BUCKET_NAME=from-file\nRAW_ZONE_PATH=File/Prefix\n")
    assert config.load_settings([]).target.bucket == "from-file"
    os.environ["BUCKET_NAME"] = "from-env"
    settings = config.load_settings([])
    assert settings.target.bucket == "from-env"
    assert settings.target.prefix == "File/Prefix"
    assert config.load_settings(["--bucket", "from-flag"]).target.bucket == "from-flag"


def test_env_file_flag_reads_another_file(clean_env: Path) -> None:
    write(clean_env / "conf" / "prod.env", "BUCKET_NAME=prod-bucket\nUPLOAD_DATE=2021-12-31\n")
    settings = config.load_settings(["--env-file", str(clean_env / "conf" / "prod.env")])
    assert (settings.target.bucket, settings.target.date) == ("prod-bucket", dt.date(2021, 12, 31))


def test_defaults(clean_env: Path) -> None:
    settings = config.load_settings(["--bucket", "b"])
    assert settings.source == Source(Path("/app/data.base"))
    assert settings.target == Target("b", "Raw/Local/CSV", dt.date.today())
    assert settings.run == Run(RunMode.UPLOAD, options.default_concurrency(), "standard", 5)
    assert settings.output == Output()


def test_flags_override_every_setting(clean_env: Path) -> None:
    os.environ.update({"LOCAL_DIR": "/env", "RAW_ZONE_PATH": "env", "UPLOAD_DATE": "2020-01-01"})
    os.environ.update({"AWS_ENDPOINT_URL": "http://env", "UPLOAD_CONCURRENCY": "3"})
    argv = ["--bucket", "b", "--source", "/flag", "--prefix", "flag", "--date", "2021-02-03"]
    argv += ["--endpoint-url", "http://flag", "--concurrency", "7", "--dry-run"]
    settings = config.load_settings(argv)
    assert settings == Settings(
        Source(Path("/flag")), Target("b", "flag", dt.date(2021, 2, 3), "http://flag"), run=Run(RunMode.DRY_RUN, 7)
    )


def test_environment_settings_are_read(clean_env: Path) -> None:
    os.environ.update({"BUCKET_NAME": "b", "LOCAL_DIR": "/env", "UPLOAD_DATE": "2020-01-01", "DRY_RUN": "true"})
    os.environ.update({"AWS_ENDPOINT_URL": "http://env", "UPLOAD_CONCURRENCY": "3", "AWS_MAX_ATTEMPTS": "9"})
    settings = config.load_settings([])
    assert (settings.source.folder, settings.target.date, settings.target.endpoint_url) == (
        Path("/env"),
        DAY.replace(2020, 1, 1),
        "http://env",
    )
    assert settings.run == Run(RunMode.DRY_RUN, 3, "standard", 9)


def test_time_zone_decides_the_date_near_midnight(clean_env: Path) -> None:
    os.environ["TZ"] = "Pacific/Kiritimati"  # UTC+14
    ahead = config.today_in_local_zone()
    os.environ["TZ"] = "Pacific/Pago_Pago"  # UTC-11
    behind = config.today_in_local_zone()
    assert 1 <= (ahead - behind).days <= 2  # 25 hours apart: two dates apart from 10:00 to 11:00 UTC, else one


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        ([], {}, "no bucket name"),
        (["--bucket", "b", "--date", "02/05/2022"], {}, "is not YYYY-MM-DD"),
        (["--bucket", "b", "--concurrency", "0"], {}, "from 1 to 256"),
        (["--bucket", "b"], {"UPLOAD_CONCURRENCY": "many"}, "from 1 to 256"),
        (["--bucket", "b"], {"UPLOAD_CONCURRENCY": "\u00b2"}, "concurrency='\u00b2' must be a whole number"),  # a digit
        (["--bucket", "b", "--shard", "0/\u00b2"], {}, "shard count='\u00b2' must be a whole number"),  # to isdigit()
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
