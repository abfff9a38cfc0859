"""The dry run as the test oracle: every key printed, nothing touched, no credentials needed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from unit_support import write

from s3_landing import cli

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
