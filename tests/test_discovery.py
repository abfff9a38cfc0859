"""Discovery and plan without a server: classification, keys, the walk, links and what is opened."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from unit_support import DAY, settings_for, write

from s3_landing import discovery, options
from s3_landing.config import Shard
from s3_landing.discovery import APPEARED, Job, Problem, SourceFile, plan_jobs, take_inventory
from s3_landing.errors import FileChanged
from s3_landing.transfer import files

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
    assert options.normalize_prefix(raw) == expected


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
    with pytest.raises(FileChanged, match="replaced by a symbolic link"):
        files.open_regular_file(found)


def test_a_folder_swapped_for_a_link_after_discovery_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "day" / "movies.csv")
    found = discovered(root)
    write(tmp_path / "outside" / "movies.csv")  # same name, same size: only the inode tells them apart
    (root / "day").rename(tmp_path / "old-day")
    (root / "day").symlink_to(tmp_path / "outside")
    with pytest.raises(FileChanged, match="replaced by another file"):
        files.open_regular_file(found)
    with pytest.raises(FileChanged):
        files.ensure_unchanged(found)


def test_a_file_that_discovery_saw_through_a_folder_swapped_for_a_link_is_not_read(tmp_path: Path) -> None:
    """The race the inode check alone misses: a folder on the path swapped for a link to the outside while
    discovery ran, so that discovery recorded the outside file's own identity."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    secret = write(outside / "movies.csv")
    root.mkdir()
    (root / "day").symlink_to(outside)  # the swap, already done
    info = secret.stat()
    seen = SourceFile(
        root / "day" / "movies.csv",
        str(root / "day" / "movies.csv"),
        info.st_size,
        info.st_mtime_ns,
        info.st_dev,
        info.st_ino,
        inside=os.path.realpath(root),
    )
    with pytest.raises(FileChanged, match="now leads outside the source folder"):
        files.open_regular_file(seen)
    with files.open_regular_file(replace(seen, inside=None)) as handle:  # --follow-links-outside: allowed
        assert handle.read() == secret.read_bytes()


def test_a_queued_folder_swapped_for_a_link_outside_is_not_walked(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    write(root / "a" / "movies.csv")
    write(root / "top.csv")
    write(outside / "series.csv")
    walk = discovery.walk_csv_files(root)
    assert isinstance(next(walk), SourceFile)  # the root is listed, "a" waits its turn
    (root / "a").rename(tmp_path / "old-a")
    (root / "a").symlink_to(outside)
    [problem] = list(walk)
    assert isinstance(problem, Problem) and problem.fails_run
    assert problem.reason.startswith(f"now leads outside the source folder, to {outside}: not walked")


def test_walk_follows_a_symlinked_file(tmp_path: Path) -> None:
    target = write(tmp_path / "store" / "real.txt")
    (tmp_path / "linked_series.csv").symlink_to(target)
    assert found_paths(tmp_path) == ["linked_series.csv"]


def test_one_walk_decides_the_jobs_a_same_named_file_that_appears_later_is_left_for_the_next_run(
    tmp_path: Path,
) -> None:
    first = write(tmp_path / "a" / "x.csv")
    inventory = take_inventory(tmp_path, Shard())
    later = write(tmp_path / "b" / "x.csv")  # appears between the count and the plan: same name, same key
    items = list(plan_jobs(settings_for(tmp_path), inventory, {}))
    jobs = [item for item in items if isinstance(item, Job)]
    assert [job.source.path for job in jobs] == [first]
    [problem] = [item for item in items if isinstance(item, Problem)]
    assert (problem.path, problem.fails_run, problem.reason) == (later, False, APPEARED)
