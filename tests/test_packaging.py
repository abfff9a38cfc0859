"""`pip install .` (and so `pipx install .`) gives the same program as the `upload-s3` command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import s3_landing

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("pyproject.toml", "README.md", "upload_s3.py")


def test_pip_install_gives_the_upload_s3_command(tmp_path: Path) -> None:
    project = tmp_path / "project"  # a copy, so the build leaves nothing in the working tree
    project.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "s3_landing", project / "s3_landing", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "installed"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    installed = subprocess.run([*pip, "--target", str(target), str(project)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    command = target / "bin" / "upload-s3"
    data = tmp_path / "data"
    data.mkdir()
    (data / "movies.csv").write_text("id|title\n1|x\n", encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    args = ["--source", str(data), "--bucket", "lake", "--date", "2024-01-31", "--dry-run"]
    run = subprocess.run([str(command), *args], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "[dry-run] Iniciando upload de" in run.stdout
    assert "s3://lake/Raw/Local/CSV/Movies/2024/01/31/movies.csv" in run.stdout
    version = subprocess.run([str(command), "--version"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert version.stdout.split()[-1] == s3_landing.__version__
    assert (target / "s3_landing" / "transfer" / "engine.py").is_file()
