"""The settings are documented in three places that must not drift apart: `--help`, the README's configuration
table and `.env.example`. Every flag and variable one names, the others name too."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from s3_landing import options

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import bench  # noqa: E402 - the benchmark's own figures for the README's Performance table

FLAG = re.compile(r"--[a-z][a-z-]+")
NAME = re.compile(r"\b[A-Z][A-Z0-9_]+\b")
BRACKETS = re.compile(r"\[([^\]]*)\]")
# Set by the platform that runs the shards, never by the user: --help names them, the README explains them below.
PLATFORM_VARIABLES = {"JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"}


def help_text() -> str:
    """--help without its usage lines (whose [brackets] hold flags, not variables)."""
    return options.build_parser().format_help().split("\n\n", 1)[1]


def variables_in_help(text: str) -> set[str]:
    """The variables a help text names: between [brackets] after each flag, and with an underscore (or TZ) in the
    closing text, where words such as AWS and CSV are not variables."""
    settings = [part.split("; default")[0] for part in BRACKETS.findall(text)]  # not the default values
    in_brackets = {name for part in settings for name in NAME.findall(part)} - {"AWS"}
    elsewhere = {name for name in NAME.findall(text) if "_" in name or name == "TZ"}
    return (in_brackets | elsewhere) - PLATFORM_VARIABLES


def readme_table() -> list[tuple[str, str]]:
    """(flag column, variable column) of each row of the README's configuration table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| flag | variable | default | meaning |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|") for line in table.strip().splitlines()[1:]]
    return [(cells[1], cells[2]) for cells in rows]


def env_example_variables() -> set[str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def test_the_readme_table_lists_exactly_the_flags_of_help() -> None:
    in_help = set(FLAG.findall(help_text())) - {"--help"}
    in_readme = {flag for flags, _ in readme_table() for flag in FLAG.findall(flags)}
    assert in_readme == in_help


def test_help_the_readme_table_and_env_example_name_the_same_variables() -> None:
    in_help = variables_in_help(help_text())
    in_readme = {name for _, names in readme_table() for name in NAME.findall(names)}
    assert in_readme == in_help
    assert env_example_variables() == in_help


def test_the_variable_beside_a_flag_in_the_readme_is_the_one_its_help_names() -> None:
    help_lines = help_text()
    for flags, names in readme_table():
        entries = [help_lines.split(f"  {flag}", 1)[1].split("\n  --", 1)[0] for flag in FLAG.findall(flags)]
        if entries:
            assert set(NAME.findall(names)) <= {name for entry in entries for name in variables_in_help(entry)}, flags


def test_the_quick_start_runs_as_written_with_the_env_example(tmp_path: Path) -> None:
    """The README's first dry-run command, verbatim from the repository root, with .env.example as the .env."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if line.startswith("python upload_s3.py --source"))
    args = shlex.split(command.split("#", 1)[0])[2:]
    assert "--dry-run" in args
    env_file = tmp_path / ".env"
    env_file.write_text(
        (ROOT / ".env.example").read_text(encoding="utf-8").replace("BUCKET_NAME=\n", "BUCKET_NAME=lake\n")
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "upload_s3.py", *args, "--env-file", str(env_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "[dry-run] Iniciando upload de sample/data.base/" in run.stdout


def test_each_setting_declared_in_config_has_its_readme_row_and_env_example_line() -> None:
    """options.SETTINGS declares each setting once; the README's row and .env.example follow it."""
    rows = readme_table()
    env_example = env_example_variables()
    for item in options.SETTINGS.values():
        if item.flag is not None:
            [names] = [names for flags, names in rows if item.flag in FLAG.findall(flags)]
        else:
            [names] = [names for flags, names in rows if not flags.strip() and item.variable in names]
        if item.variable:
            assert item.variable in NAME.findall(names), item.flag
            assert item.variable in env_example, item.variable


# The README's Performance table, row by row: the bench scenario, then upload_s3.py's, s5cmd's, rclone's and the
# AWS CLI's tool in it ("" where the table leaves the cell empty).
PERFORMANCE_ROWS = {
    "BIG": ("BIG", "upload_s3.py", "s5cmd cp", "rclone copy", "aws s3 cp --recursive"),
    "MANY": ("MANY", "upload_s3.py", "s5cmd cp", "rclone copy", "aws s3 cp --recursive"),
    "MANY no-op re-run": (
        "MANY no-op re-run",
        "upload_s3.py (again)",
        "s5cmd sync",
        "rclone copy (again)",
        "aws s3 sync",
    ),
    "WIDE no-op re-run": ("WIDE no-op re-run", "upload_s3.py (again)", "s5cmd sync", "", ""),
    "HUNDRED upload (100,000 files, one run)": ("HUNDRED upload (one run)", "upload_s3.py", "s5cmd cp", "", ""),
    "HUNDRED no-op re-run": ("HUNDRED no-op re-run", "upload_s3.py (again)", "s5cmd sync", "", ""),
    "MANY over WAN": ("MANY over WAN", "upload_s3.py", "s5cmd cp", "", ""),
    "ONE file": ("ONE file (start-up)", "upload_s3.py", "s5cmd cp", "", ""),
}


def test_the_readme_performance_table_is_the_latest_bench_run() -> None:
    """Each figure of the table, recomputed from bench/results/latest.json by bench.py's own functions."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| scenario (latest run) |", 1)[1].split("\n\n", 1)[0]
    header, _rule, *rows = table.splitlines()
    current, baseline = (cell.strip() for cell in header.split("|")[:2])
    latest = json.loads((ROOT / "bench" / "results" / "latest.json").read_text(encoding="utf-8"))
    assert f"commit {current} " in latest["facts"]["upload_s3.py"]
    runs = [bench.Run(**run) for run in latest["runs"]]
    many_files = int(re.findall(r"MANY: (\d+) files", (ROOT / "bench" / "results" / "latest.md").read_text())[0])
    names = [row.strip("|").split("|")[0].strip() for row in rows]
    assert names == [*PERFORMANCE_ROWS, "client CPU per small file"]

    def median(scenario: str, tool: str) -> float:
        found = bench.median_of(runs, scenario, tool)
        assert found is not None, (scenario, tool)
        return found

    for row in rows:
        name, *cells = (cell.strip() for cell in row.strip("|").split("|"))
        if name == "client CPU per small file":
            per_file = bench.cpu_per_small_file(runs, many_files)
            tools = ("upload_s3.py", f"upload_s3.py @{baseline}", "s5cmd cp")
            mine, before, s5cmd = (per_file[tool][2] for tool in tools)
            expected = [f"{mine:.2f} ms", f"{before:.2f} ms", f"{s5cmd:.2f} ms", "", ""]
            assert cells == [*expected, f"{mine / s5cmd:.2f}x", f"{before / s5cmd:.2f}x"], name
            continue
        scenario, tool, s5cmd_tool, rclone, aws = PERFORMANCE_ROWS[name]
        again = " (again)" if tool.endswith(" (again)") else ""
        walls = [median(scenario, each) for each in (tool, f"upload_s3.py @{baseline}{again}", s5cmd_tool)]
        others = [f"{median(scenario, each):.2f} s" if each else "" for each in (rclone, aws)]
        ratios = ["", ""] if scenario.startswith("ONE") else [f"{wall / walls[2]:.2f}x" for wall in walls[:2]]
        assert cells == [*(f"{wall:.2f} s" for wall in walls), *others, *ratios], name
