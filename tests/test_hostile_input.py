"""Odd and hostile things in the source folder: each gets one clear line naming it, the run never hangs or
crashes, the exit code says what happened, and the good files beside it are still uploaded intact."""

from __future__ import annotations

import ctypes
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from datagen import write_movies
from seaweed import SeaweedServer
from test_cli import DATE, MOVIES, SERIES, Run, keys_in, run_uploader, uploader_env
from test_reliability import assert_holds_exactly, finish, start_uploader

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PR_CAPBSET_DROP = 24  # from <linux/prctl.h>
CAP_DAC_OVERRIDE = 1  # from <linux/capability.h>
CAP_DAC_READ_SEARCH = 2


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A source folder holding one good CSV file, movies_good.csv."""
    folder = tmp_path / "data.base"
    folder.mkdir()
    write_movies(folder / "movies_good.csv", 20_000, seed=11)
    return folder


def quiet_env(server: SeaweedServer, bucket: str) -> dict[str, str]:
    """The uploader's settings, without progress lines (they would come between the lines checked here)."""
    return uploader_env(server, BUCKET_NAME=bucket, UPLOAD_DATE=DATE, PROGRESS_INTERVAL="0")


def upload(server: SeaweedServer, bucket: str, source: Path, *extra: str) -> Run:
    env = quiet_env(server, bucket)
    return run_uploader(server, ["--source", str(source), *extra], env, timeout=60)


def assert_only_error(run: Run, line: str) -> None:
    assert run.code == 1, run.out + run.err
    assert run.err.splitlines() == [line]


def assert_good_file_landed(s3: S3Client, bucket: str, source: Path) -> None:
    assert_holds_exactly(s3, bucket, [source / "movies_good.csv"])


# --- things that are not regular files ----------------------------------------------------------


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))


def make_device(path: Path) -> None:
    path.symlink_to("/dev/null")  # outside the source folder: the run follows it only with --follow-links-outside


@pytest.mark.parametrize("make", [make_fifo, make_socket, make_device], ids=["fifo", "socket", "device"])
def test_a_fifo_socket_or_device_named_csv_is_reported_without_being_opened(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, make: Callable[[Path], None]
) -> None:
    special = source / "series_special.csv"
    make(special)
    run = upload(s3_server, bucket, source, "--follow-links-outside")  # an opened FIFO would block until the timeout
    reason = "not a regular file (FIFO, socket or device): only regular files are uploaded"
    assert_only_error(run, f"Erro ao enviar {special}: {reason}")
    assert_good_file_landed(admin_s3, bucket, source)


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("missing.csv", "broken symbolic link: its target does not exist"),
        ("series_link.csv", "cannot read file information (Too many levels of symbolic links)"),
    ],
    ids=["broken", "loop"],
)
def test_a_broken_or_looping_symlink_is_reported(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, target: str, reason: str
) -> None:
    link = source / "series_link.csv"
    link.symlink_to(target)
    run = upload(s3_server, bucket, source)
    assert_only_error(run, f"Erro ao enviar {link}: {reason}")
    assert_good_file_landed(admin_s3, bucket, source)


def test_a_symlink_loop_between_folders_is_walked_once(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path
) -> None:
    (source / "a").mkdir()
    (source / "b").mkdir()
    write_movies(source / "a" / "movies_a.csv", 2_000, seed=12)
    write_movies(source / "b" / "series_b.csv", 2_000, seed=13)
    (source / "a" / "to_b").symlink_to("../b")
    (source / "b" / "to_a").symlink_to("../a")
    run = upload(s3_server, bucket, source)
    assert run.code == 0, run.err
    warnings = run.err.splitlines()
    assert warnings and all(line.startswith("Aviso: ") for line in warnings)
    assert all(line.endswith(": folder already visited through a symbolic link: skipped") for line in warnings)
    assert run.summary().startswith("Resumo: 3 enviados, 0 ignorados sem alterações, 0 com falha")
    files = [source / "movies_good.csv", source / "a" / "movies_a.csv", source / "b" / "series_b.csv"]
    assert_holds_exactly(admin_s3, bucket, files)


# --- symbolic links out of the source folder ----------------------------------------------------

OPT_IN = "set --follow-links-outside or FOLLOW_LINKS_OUTSIDE=true to follow such links"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the source folder holding what must not leak: a credentials file and a folder of CSVs."""
    folder = tmp_path / "outside"
    (folder / "exports").mkdir(parents=True)
    (folder / "credentials").write_text("[default]\naws_secret_access_key = not-for-the-lake\n", encoding="utf-8")
    write_movies(folder / "exports" / "movies_elsewhere.csv", 2_000, seed=14)
    return folder


def assert_file_link_refused(run: Run, link: Path, target: Path) -> None:
    assert_only_error(
        run, f"Erro ao enviar {link}: symbolic link to {target}, outside the source folder: not opened; {OPT_IN}"
    )


def test_a_link_to_a_file_outside_is_not_opened_and_fails_the_run(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, outside: Path
) -> None:
    link = source / "creds.csv"
    link.symlink_to(outside / "credentials")
    run = upload(s3_server, bucket, source)
    assert_file_link_refused(run, link, outside / "credentials")
    assert_good_file_landed(admin_s3, bucket, source)


def test_a_link_to_the_process_environment_is_not_opened(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path
) -> None:
    link = source / "environ.csv"
    link.symlink_to("/proc/self/environ")
    run = upload(s3_server, bucket, source)
    assert run.code == 1, run.out + run.err
    [line] = run.err.splitlines()
    assert line.startswith(f"Erro ao enviar {link}: symbolic link to /proc/"), line
    assert line.endswith(f"/environ, outside the source folder: not opened; {OPT_IN}"), line
    assert_good_file_landed(admin_s3, bucket, source)


def test_a_link_to_a_folder_outside_is_not_walked(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, outside: Path
) -> None:
    link = source / "shared"
    link.symlink_to(outside / "exports")
    run = upload(s3_server, bucket, source)
    reason = (
        f"symbolic link to the folder {outside / 'exports'}, outside the source folder: its files were not uploaded"
    )
    assert_only_error(run, f"Erro ao enviar {link}: {reason}; {OPT_IN}")
    assert_good_file_landed(admin_s3, bucket, source)


def test_a_chain_of_links_that_ends_outside_is_not_followed(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, outside: Path
) -> None:
    (source / "hop").symlink_to(outside / "credentials")  # not a CSV name itself: ignored
    (source / "sub").mkdir()
    link = source / "sub" / "series_chain.csv"
    link.symlink_to("../hop")
    run = upload(s3_server, bucket, source)
    assert_file_link_refused(run, link, outside / "credentials")
    assert_good_file_landed(admin_s3, bucket, source)


def test_links_inside_the_tree_are_followed_and_a_linked_source_folder_is_resolved_first(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, tmp_path: Path
) -> None:
    store = source / ".store"  # hidden, so only reached through the links below
    (store / "daily").mkdir(parents=True)
    write_movies(store / "movies_real.txt", 2_000, seed=15)
    write_movies(store / "daily" / "series_daily.csv", 2_000, seed=16)
    (source / "movies_alias.csv").symlink_to(".store/movies_real.txt")
    (source / "today").symlink_to(store / "daily")
    landing = tmp_path / "landing"
    landing.symlink_to(source)
    run = upload(s3_server, bucket, landing)
    assert run.code == 0, run.out + run.err
    files = [source / "movies_good.csv", source / "movies_alias.csv", store / "daily" / "series_daily.csv"]
    assert_holds_exactly(admin_s3, bucket, files)


@pytest.mark.parametrize("opt_in", ["flag", "variable"])
def test_following_links_outside_is_an_opt_in(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, outside: Path, opt_in: str
) -> None:
    (source / "shared").symlink_to(outside / "exports")
    (source / "series_mounted.csv").symlink_to(outside / "exports" / "movies_elsewhere.csv")
    env = quiet_env(s3_server, bucket)
    args = ["--source", str(source)]
    if opt_in == "flag":
        args.append("--follow-links-outside")
    else:
        env["FOLLOW_LINKS_OUTSIDE"] = "true"
    run = run_uploader(s3_server, args, env, timeout=60)
    assert run.code == 0, run.out + run.err
    files = [source / "movies_good.csv", source / "series_mounted.csv", source / "shared" / "movies_elsewhere.csv"]
    assert_holds_exactly(admin_s3, bucket, files)


# --- permissions --------------------------------------------------------------------------------


def without_permission_override() -> None:
    """In the child before exec: drop root's power to ignore file permissions (CI runs as root), so the
    uploader meets them as any user would. An ordinary user meets them anyway: nothing to drop."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def upload_without_override(server: SeaweedServer, bucket: str, source: Path) -> Run:
    process = start_uploader(
        ["--source", str(source)], quiet_env(server, bucket), preexec_fn=without_permission_override
    )
    return finish(server, process, timeout=60)


@pytest.fixture
def locked(source: Path) -> Iterator[list[Path]]:
    """Paths whose mode a test changes; their modes are restored afterwards so that tmp_path can be removed."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        path.chmod(0o755)


def test_an_unreadable_file_is_reported(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path, locked: list[Path]
) -> None:
    secret = source / "series_secret.csv"
    secret.write_text("id|x\n1|2\n", encoding="utf-8")
    secret.chmod(0)
    locked.append(secret)
    run = upload_without_override(s3_server, bucket, source)
    assert_only_error(
        run, f"Erro ao enviar {secret}: cannot read the file (Permission denied): fix its permissions or remove it"
    )
    assert_good_file_landed(admin_s3, bucket, source)


@pytest.mark.parametrize(
    ("mode", "problems"),
    [
        (0o000, ["{folder}: cannot read folder (Permission denied): its CSV files were not uploaded"]),
        (
            0o400,  # the names can be listed, but nothing in the folder can be looked at
            [
                "{folder}/series_hidden.csv: cannot read file information (Permission denied)",
                "{folder}/series_link.csv: cannot read file information (Permission denied)",
            ],
        ),
    ],
    ids=["no-read-no-execute", "read-no-execute"],
)
def test_an_unreadable_folder_is_reported(
    s3_server: SeaweedServer,
    admin_s3: S3Client,
    bucket: str,
    source: Path,
    locked: list[Path],
    mode: int,
    problems: list[str],
) -> None:
    folder = source / "private"
    folder.mkdir()
    (folder / "series_hidden.csv").write_text("id|x\n1|2\n", encoding="utf-8")
    (folder / "series_link.csv").symlink_to("series_hidden.csv")
    folder.chmod(mode)
    locked.append(folder)
    run = upload_without_override(s3_server, bucket, source)
    assert run.code == 1, run.out + run.err
    assert run.err.splitlines() == ["Erro ao enviar " + problem.format(folder=folder) for problem in problems]
    assert_good_file_landed(admin_s3, bucket, source)


def test_an_unreadable_source_folder_stops_the_run_up_front(
    s3_server: SeaweedServer, bucket: str, source: Path, locked: list[Path]
) -> None:
    source.chmod(0)
    locked.append(source)
    run = upload_without_override(s3_server, bucket, source)
    assert run.code == 2
    assert run.out == ""
    assert run.err.splitlines() == [
        f"upload_s3: error: cannot read source folder {source} (Permission denied): fix its permissions"
    ]


# --- names --------------------------------------------------------------------------------------


def test_names_that_are_not_utf8_are_reported_and_shown_escaped(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path
) -> None:
    raw_source = os.fsencode(source)
    bad_name = os.path.join(raw_source, b"movies_\xff.csv")
    bad_folder = os.path.join(raw_source, b"lote_\xfe")
    os.mkdir(bad_folder)
    for path in (bad_name, os.path.join(bad_folder, b"series_ok.csv")):
        with open(path, "wb") as handle:
            handle.write(b"id|x\n1|2\n")
    run = upload(s3_server, bucket, source)
    reason = "file name is not valid UTF-8, which S3 keys require: rename the file"
    assert_only_error(run, f"Erro ao enviar {source}/movies_\\xff.csv: {reason}")
    assert f"Arquivo enviado: {source}/lote_\\xfe/series_ok.csv -> " in run.out
    assert keys_in(admin_s3, bucket) == {f"{MOVIES}/movies_good.csv", f"{SERIES}/series_ok.csv"}


def test_control_characters_in_a_name_are_uploaded_and_logged_on_one_line(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path
) -> None:
    odd = [source / "movies\nsecond line.csv", source / "series \x1b[31mred\r.csv"]
    for number, path in enumerate(odd):
        write_movies(path, 1_000, seed=20 + number)
    run = upload(s3_server, bucket, source)
    assert run.code == 0, run.err
    assert_holds_exactly(admin_s3, bucket, [source / "movies_good.csv", *odd])
    starts = ("Iniciando upload de ", "Arquivo enviado: ", "Processo concluído!", "Resumo: ")
    lines = run.out.splitlines()
    assert len(lines) == 2 * 3 + 2
    assert all(line.startswith(starts) for line in lines), lines
    assert "\x1b" not in run.out
    assert f"Arquivo enviado: {source}/movies\\nsecond line.csv -> " in run.out
    assert f"Arquivo enviado: {source}/series \\x1b[31mred\\r.csv -> " in run.out


@pytest.mark.parametrize(
    "names",
    [["movies\nsecond line.csv", "series \x1b[31mred\r.csv"], ["movies\x01.csv"]],
    ids=["refused-by-object-store", "altered-by-object-store"],
)
def test_a_re_run_after_names_with_control_characters_finds_them_landed(
    s3_server: SeaweedServer, bucket: str, source: Path, names: list[str]
) -> None:
    """object_store refuses a listing with some such keys and lists others altered (U+FFFD in place of the
    character): botocore lists those folders."""
    for number, name in enumerate(names):
        write_movies(source / name, 1_000, seed=20 + number)
    assert upload(s3_server, bucket, source).code == 0
    again = upload(s3_server, bucket, source)
    assert again.code == 0, again.err
    skipped = len(names) + 1
    assert again.summary().startswith(f"Resumo: 0 enviados, {skipped} ignorados sem alterações, 0 com falha")


def test_a_key_over_1024_bytes_is_reported(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path
) -> None:
    prefix = "/".join(["p" * 99] * 8)  # 799 bytes, segments short enough for any store
    long_name = "movies_" + "x" * 200 + ".csv"
    (source / long_name).write_text("id|x\n1|2\n", encoding="utf-8")
    run = upload(s3_server, bucket, source, "--prefix", prefix)
    size = len(f"{prefix}/Movies/2022/05/02/{long_name}".encode())
    assert size > 1024
    reason = f"key would be {size} bytes, S3 allows 1024: shorten the file name or the prefix"
    assert_only_error(run, f"Erro ao enviar {source / long_name}: {reason}")
    assert keys_in(admin_s3, bucket) == {f"{prefix}/Movies/2022/05/02/movies_good.csv"}


def test_a_re_run_under_a_prefix_of_any_characters_finds_what_the_first_run_landed(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path
) -> None:
    """obstore 0.8 (Python 3.9) lists nothing under a prefix holding such characters: botocore lists those folders."""
    prefix = "Zona crua/ç%~?"
    assert upload(s3_server, bucket, source, "--prefix", prefix).code == 0
    again = upload(s3_server, bucket, source, "--prefix", prefix)
    assert again.code == 0, again.err
    assert again.summary().startswith("Resumo: 0 enviados, 1 ignorados sem alterações, 0 com falha")
    assert keys_in(admin_s3, bucket) == {f"{prefix}/Movies/2022/05/02/movies_good.csv"}


# --- empty ----------------------------------------------------------------------------------------


def test_an_empty_csv_is_uploaded_and_counted(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, source: Path
) -> None:
    empty = source / "series_empty.csv"
    empty.write_bytes(b"")
    run = upload(s3_server, bucket, source)
    assert run.code == 0, run.err
    size = (source / "movies_good.csv").stat().st_size
    assert run.summary().startswith(f"Resumo: 2 enviados, 0 ignorados sem alterações, 0 com falha; {size} bytes")
    assert_holds_exactly(admin_s3, bucket, [source / "movies_good.csv", empty])
    again = upload(s3_server, bucket, source)
    assert again.summary().startswith("Resumo: 0 enviados, 2 ignorados sem alterações, 0 com falha")


def test_a_folder_without_csv_files_exits_0_with_a_clear_message(
    s3_server: SeaweedServer, admin_s3: S3Client, bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("not a csv\n", encoding="utf-8")
    (tmp_path / ".hidden.csv").write_text("id\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "movies.csv.bak").write_text("id\n", encoding="utf-8")
    run = upload(s3_server, bucket, tmp_path)
    assert run.code == 0, run.err
    assert run.err == ""
    lines = run.out.splitlines()
    assert lines[0].startswith(f"Nenhum arquivo CSV para enviar em {tmp_path}: the folder has no *.csv file")
    assert lines[1] == "Processo concluído!"
    assert run.summary().startswith("Resumo: 0 enviados, 0 ignorados sem alterações, 0 com falha; 0 bytes")
    assert len(lines) == 3
    assert keys_in(admin_s3, bucket) == set()
