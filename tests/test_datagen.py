"""Quick checks of the synthetic data generator (tests/datagen.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import datagen
import pytest

Writer = Callable[..., int]

MOVIES_HEADER_LINE = (
    "id|tituloPincipal|tituloOriginal|anoLancamento|tempoMinutos|genero|notaMedia|"
    "numeroVotos|generoArtista|personagem|nomeArtista|anoNascimento|anoFalecimento|"
    "profissao|titulosMaisConhecidos"
)
SERIES_HEADER_LINE = (
    "id|tituloPincipal|tituloOriginal|anoLancamento|anoTermino|tempoMinutos|genero|"
    "notaMedia|numeroVotos|generoArtista|personagem|nomeArtista|anoNascimento|"
    "anoFalecimento|profissao|titulosMaisConhecidos"
)
KINDS = [
    pytest.param(datagen.write_movies, 15, MOVIES_HEADER_LINE, id="movies"),
    pytest.param(datagen.write_series, 16, SERIES_HEADER_LINE, id="series"),
]
SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "data.base"
TT = re.compile(r"tt\d{7}")


def test_headers_exact() -> None:
    assert "|".join(datagen.MOVIES_HEADER) == MOVIES_HEADER_LINE
    assert "|".join(datagen.SERIES_HEADER) == SERIES_HEADER_LINE


@pytest.mark.parametrize(("writer", "nfields", "header"), KINDS)
def test_format(tmp_path: Path, writer: Writer, nfields: int, header: str) -> None:
    out = tmp_path / "data.csv"
    size = writer(out, 300_000, seed=3)
    raw = out.read_bytes()
    assert size == len(raw)
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in raw
    text = raw.decode("utf-8")
    assert text.endswith("\n")
    lines = text.split("\n")[:-1]
    assert lines[0] == header
    assert len(lines) > 1000
    for line in lines:
        assert line.count("|") == nfields - 1, line
    rows = [line.split("|") for line in lines[1:]]
    assert all(TT.fullmatch(r[0]) for r in rows)
    assert all(r[header.split("|").index("generoArtista")] in {"actor", "actress"} for r in rows)
    known = [r[-1].split(",") for r in rows]
    assert all(1 <= len(k) <= 4 and all(TT.fullmatch(i) for i in k) for k in known)
    assert "\\N" in text
    assert any(ch in text for ch in "éãøüç")
    assert len({r[0] for r in rows}) < len(rows)  # title columns repeat
    assert 150 <= len(raw) / len(lines) <= 185


@pytest.mark.parametrize(("writer", "nfields", "header"), KINDS)
def test_size_close_to_target(tmp_path: Path, writer: Writer, nfields: int, header: str) -> None:
    for target in (0, 10, 1_000, 123_457, 2_000_000):
        out = tmp_path / f"f{target}.csv"
        size = writer(out, target)
        assert size == out.stat().st_size
        assert size >= target
        header_size = len(header) + 1
        assert size - max(target, header_size) < 400  # stops at first line boundary


def test_crlf(tmp_path: Path) -> None:
    out = tmp_path / "crlf.csv"
    datagen.write_series(out, 50_000, crlf=True)
    raw = out.read_bytes()
    assert raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert all(line.count(b"|") == 15 for line in raw.split(b"\r\n")[:-1])


@pytest.mark.parametrize(("writer", "nfields", "header"), KINDS)
def test_deterministic(tmp_path: Path, writer: Writer, nfields: int, header: str) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    writer(a, 200_000, seed=11)
    writer(b, 200_000, seed=11)
    writer(c, 200_000, seed=12)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_write_many(tmp_path: Path) -> None:
    paths = datagen.write_many(tmp_path, 120, 5_000, seed=1)
    assert len(paths) == 120
    assert all(p.is_file() for p in paths)
    assert len({p.name for p in paths}) == 120
    assert len({p.parent for p in paths}) >= 3
    assert all(2 <= len(p.relative_to(tmp_path).parts) - 1 <= 3 for p in paths)
    movies = [p for p in paths if "movies" in p.name.lower()]
    series = [p for p in paths if "series" in p.name.lower()]
    assert len(movies) == len(series) == 60
    assert any("movies" not in p.name for p in movies)  # mixed case names
    for p in paths:
        raw = p.read_bytes()
        assert 5_000 <= len(raw) < 5_400
        header = MOVIES_HEADER_LINE if p in movies else SERIES_HEADER_LINE
        assert raw.decode("utf-8").split("\n", 1)[0] == header
    assert len({p.read_bytes() for p in paths}) == 120


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "m.csv"
    assert datagen.main(["movies", str(out), "--bytes", "5000", "--seed", "4"]) == 0
    assert out.stat().st_size >= 5000
    assert datagen.main(["many", str(tmp_path / "many"), "--count", "4", "--size", "2000"]) == 0
    assert len(list((tmp_path / "many").rglob("*.*"))) == 4


def test_bundled_sample_matches_generator(tmp_path: Path) -> None:
    movies, series = SAMPLE / "movies.csv", SAMPLE / "series.csv"
    datagen.write_movies(tmp_path / "m.csv", 6600, seed=42)
    datagen.write_series(tmp_path / "s.csv", 5000, seed=42)
    assert movies.read_bytes() == (tmp_path / "m.csv").read_bytes()
    assert series.read_bytes() == (tmp_path / "s.csv").read_bytes()
