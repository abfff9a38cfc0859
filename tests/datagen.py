"""Synthetic IMDb-style test data in the challenge's real CSV format.

The files mimic ``movies.csv`` and ``series.csv`` as handed out by the
challenge: ``|``-separated, UTF-8 without BOM, ``\\N`` for null, no quoting,
one row per (title x credited actor/actress) so the title columns repeat.
All titles, names and ids are invented; nothing is copied from IMDb.

Speed: a pool of a few thousand "title blocks" (all rows of one title, with a
placeholder for the title id) is generated once per (kind, seed, line ending)
and then combined cheaply, with a fresh, increasing ``tt`` id substituted into
every block: about 250 MB in 1-1.5 s on a 2-core machine, pure Python.

Usage::

    python tests/datagen.py movies OUT.csv --bytes N [--seed S] [--crlf]
    python tests/datagen.py series OUT.csv --bytes N [--seed S] [--crlf]
    python tests/datagen.py many DIR --count N --size N [--seed S]
"""

from __future__ import annotations

import argparse
import bisect
import functools
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "MOVIES_HEADER",
    "SERIES_HEADER",
    "main",
    "write_many",
    "write_movies",
    "write_series",
]

MOVIES_HEADER: list[str] = [
    "id",
    "tituloPincipal",
    "tituloOriginal",
    "anoLancamento",
    "tempoMinutos",
    "genero",
    "notaMedia",
    "numeroVotos",
    "generoArtista",
    "personagem",
    "nomeArtista",
    "anoNascimento",
    "anoFalecimento",
    "profissao",
    "titulosMaisConhecidos",
]

SERIES_HEADER: list[str] = [*MOVIES_HEADER[:4], "anoTermino", *MOVIES_HEADER[4:]]

NULL = "\\N"
SEP = "|"
# Placeholder for the title id inside a pooled block; replaced per block.
_ID_MARK = "\x00"
_ID_MARK_B = _ID_MARK.encode("ascii")

# --------------------------------------------------------------------------
# Word lists (invented combinations; accents on purpose: é ã ø ü ç ...)
# --------------------------------------------------------------------------

GENRES: tuple[str, ...] = (
    "Action",
    "Adult",
    "Adventure",
    "Animation",
    "Biography",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "Film-Noir",
    "Game-Show",
    "History",
    "Horror",
    "Music",
    "Musical",
    "Mystery",
    "News",
    "Reality-TV",
    "Romance",
    "Sci-Fi",
    "Short",
    "Sport",
    "Talk-Show",
    "Thriller",
    "War",
    "Western",
)
# Comedy and Drama dominate, as in the real data.
_GENRE_WEIGHTS: tuple[int, ...] = tuple(
    {"Comedy": 12, "Drama": 14, "Romance": 5, "Action": 5, "Crime": 4}.get(g, 2) for g in GENRES
)

_FIRST_M: tuple[str, ...] = (
    "Aage", "Søren", "José", "João", "Gonçalo", "Jürgen", "Günther", "François",
    "André", "Sebastião", "Mathéo", "Björn", "Øyvind", "Ramón", "Raúl", "Émile",
    "Tomás", "Hugo", "Lars", "Pietro", "Kenji", "Otávio", "Caetano", "Jérôme",
    "Anders", "Nicolás", "Zoltán", "Mikkel", "Felipe", "Walter", "Henrique",
)  # fmt: skip
_FIRST_F: tuple[str, ...] = (
    "Renée", "Zoë", "Inês", "Conceição", "Ingrid", "Hélène", "Björk", "Márcia",
    "Solène", "Joana", "Ana", "Maëlle", "Sígrid", "Lúcia", "Françoise", "Astrid",
    "Chloé", "Małgorzata", "Noémie", "Beatriz", "Dagný", "Mette", "Yasmin",
    "Carmen", "Léa", "Jéssica", "Ottilie", "Greta", "Açucena", "Élodie",
)  # fmt: skip
_SURNAMES: tuple[str, ...] = (
    "Bjørnvik", "Lindqvist", "Müller", "Gonçalves", "Magalhães", "Brandão",
    "Østergaard", "Ibáñez", "Núñez", "Çelik", "Dubois", "Lefèvre", "Schäfer",
    "Conceição", "Araújo", "Løvland", "Håkansson", "Fernández", "Peña",
    "Moreau", "Krüger", "Falcão", "Ribeiro", "Sørensen", "Jönsson", "Rossi",
    "Nakamura", "Delacroix", "Vázquez", "Guimarães", "Holm", "Mendonça",
    "Weiß", "Štěpánek", "Castelo", "Bernardes", "Dahl", "Öztürk", "Valença",
)  # fmt: skip

# (first part, second part) lists per language; titles are first + " " + second.
_TITLE_PARTS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("The Silent", "The Last", "A Crooked", "The Hollow", "The Winter",
         "A Borrowed", "The Paper", "The Midnight", "The Little", "The Lost"),
        ("Harbor", "Promise", "Lighthouse", "Garden", "Orchard", "Parade",
         "Detective", "Summer", "Kingdom", "Wedding", "Carousel"),
    ),
    (
        ("A Canção", "O Silêncio", "A Promessa", "O Caçador", "A Ilha",
         "O Coração", "A Última Viagem", "O Segredo", "A Lição", "O Irmão"),
        ("do Sertão", "das Águas", "de Inverno", "sem Fim", "da Montanha",
         "de São João", "do Capitão", "da Estação", "de Março"),
    ),
    (
        ("Les Ombres", "La Nuit", "Le Voyage", "L'Été", "La Misère",
         "Le Château", "Les Enfants", "La Rivière", "Le Goût"),
        ("des Étoiles", "de Noël", "d'Automne", "du Café", "de Montréal",
         "des Misérables", "sans Fin", "à Genève"),
    ),
    (
        ("Der Garten", "Die Brücke", "Das Märchen", "Der Fährmann",
         "Die Schwester", "Das Spiel", "Die Überfahrt"),
        ("im Schnee", "über dem Fluss", "am Meer", "der Nacht", "ohne Namen",
         "von Grünau"),
    ),
    (
        ("Den Blå", "Det Sidste", "Fjordens", "Søstrene", "Havets"),
        ("Vinter", "Lys", "Sang", "Hjørne", "Bølge"),
    ),
)  # fmt: skip

_CHAR_TITLES: tuple[str, ...] = (
    "Dr.", "Capitão", "Inspector", "Professor", "Sergeant", "Agent",
)  # fmt: skip
_CHAR_TITLES_M: tuple[str, ...] = ("Sir", "Herr", "Père", "Tío", "Monsieur")
_CHAR_TITLES_F: tuple[str, ...] = ("Madame", "Frau", "Tía", "Dona", "Lady")
_CHAR_FIXED: tuple[str, ...] = (
    "Self", "Narrator", "Self - Host", "The Stranger", "Dancer", "Singer - Self",
    "Guest", "Neighbour", "Voice", "Passenger",
)  # fmt: skip
_CHAR_FIXED_M: tuple[str, ...] = ("Himself", "Waiter", "Policeman", "Old Man", "Boy")
_CHAR_FIXED_F: tuple[str, ...] = ("Herself", "Young Girl", "Nurse", "Old Woman", "Maid")

_EXTRA_PROFESSIONS: tuple[str, ...] = (
    "producer", "director", "writer", "soundtrack", "miscellaneous",
    "composer", "stunts", "editor", "music_department", "casting_director",
    "camera_department", "self",
)  # fmt: skip

_ROWS_PER_TITLE: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
_ROWS_WEIGHTS: tuple[int, ...] = (10, 16, 24, 24, 16, 10)

_POOL_BLOCKS = 3000
_POOL_ARTISTS = 2500
_BATCH = 2048
_MAX_ID = 9_999_999


# --------------------------------------------------------------------------
# Pool generation (per-field random calls happen only here)
# --------------------------------------------------------------------------


def _tt(rng: random.Random) -> str:
    return f"tt{rng.randint(1, _MAX_ID):07d}"


def _title(rng: random.Random, lang: int | None = None) -> str:
    first, second = _TITLE_PARTS[rng.randrange(len(_TITLE_PARTS)) if lang is None else lang]
    title = f"{rng.choice(first)} {rng.choice(second)}"
    r = rng.random()
    if r < 0.08:
        title += f" {rng.choice(('II', 'III', '2', 'Returns', 'Reloaded'))}"
    elif r < 0.14:
        title += f": {rng.choice(_SURNAMES)}"
    return title


def _genres(rng: random.Random) -> str:
    if rng.random() < 0.04:
        return NULL
    picked = rng.choices(GENRES, weights=_GENRE_WEIGHTS, k=rng.choice((1, 1, 2, 2, 3)))
    return ",".join(sorted(set(picked)))


def _votes(rng: random.Random) -> str:
    # Log-uniform-ish: most titles have few votes, some have very many.
    return str(int(5 * 10 ** (rng.random() ** 1.6 * 5.5)))


class _Artist:
    __slots__ = ("born", "died", "gender", "known", "name", "prof", "year")

    def __init__(self, rng: random.Random) -> None:
        actress = rng.random() < 0.42
        self.gender = "actress" if actress else "actor"
        first = rng.choice(_FIRST_F if actress else _FIRST_M)
        middle = f" {rng.choice(_SURNAMES)}" if rng.random() < 0.2 else ""
        self.name = f"{first}{middle} {rng.choice(_SURNAMES)}"
        born: int | None = rng.randint(1860, 2008) if rng.random() < 0.7 else None
        self.year = born
        self.born = NULL if born is None else str(born)
        if born is not None and rng.random() < min(0.95, max(0.05, (2000 - born) / 90)):
            died = born + rng.randint(18, 101)
            self.died = str(died) if died <= 2024 else NULL
        elif born is None and rng.random() < 0.08:
            self.died = str(rng.randint(1920, 2023))
        else:
            self.died = NULL
        extras = rng.sample(_EXTRA_PROFESSIONS, k=rng.choice((0, 0, 0, 1, 1, 2)))
        self.prof = ",".join([self.gender, *extras])
        self.known = [_tt(rng) for _ in range(rng.randint(1, 4))]

    def known_for(self, rng: random.Random) -> str:
        """1-4 comma-joined ids, often including the current title (placeholder)."""
        ids = list(self.known)
        if rng.random() < 0.6:
            ids[rng.randrange(len(ids))] = _ID_MARK
        return ",".join(ids)


def _character(rng: random.Random, artist: _Artist) -> str:
    r = rng.random()
    if r < 0.28:
        return NULL
    if r < 0.34:
        return rng.choice(_CHAR_FIXED)
    if r < 0.40:
        return rng.choice(_CHAR_FIXED_F if artist.gender == "actress" else _CHAR_FIXED_M)
    first = rng.choice(_FIRST_F if artist.gender == "actress" else _FIRST_M)
    if r < 0.65:
        return first
    if r < 0.85:
        return f"{first} {rng.choice(_SURNAMES)}"
    if r < 0.93:
        return f"{rng.choice(_CHAR_TITLES)} {rng.choice(_SURNAMES)}"
    gendered = _CHAR_TITLES_F if artist.gender == "actress" else _CHAR_TITLES_M
    return f"{rng.choice(gendered)} {rng.choice(_SURNAMES)}"


def _title_columns(rng: random.Random, series: bool) -> tuple[list[str], int | None]:
    lang = rng.randrange(len(_TITLE_PARTS))
    original = _title(rng, lang)
    principal = original if lang == 0 or rng.random() < 0.7 else _title(rng, 0)
    start = rng.randint(1894, 2023) if rng.random() < 0.98 else None
    cols = [principal, original, NULL if start is None else str(start)]
    if series:
        if start is None or rng.random() < 0.6:
            cols.append(NULL)
        else:
            cols.append(str(min(2024, start + rng.randint(0, 12))))
        minutes = rng.randint(11, 70)
    else:
        minutes = rng.randint(45, 200) if rng.random() < 0.9 else rng.randint(4, 44)
    cols.append(NULL if rng.random() < 0.07 else str(minutes))
    cols.append(_genres(rng))
    cols.append(f"{rng.triangular(1.0, 10.0, 6.6):.1f}")
    cols.append(_votes(rng))
    return cols, start


class _Cast:
    """Artist pool; picks a cast plausible for a release year."""

    def __init__(self, rng: random.Random) -> None:
        artists = [_Artist(rng) for _ in range(_POOL_ARTISTS)]
        self.undated = [a for a in artists if a.year is None]
        self.dated = sorted((a for a in artists if a.year is not None), key=_birth_year)
        self.years = [_birth_year(a) for a in self.dated]

    def pick(self, rng: random.Random, year: int | None, n: int) -> list[_Artist]:
        candidates = self.dated
        if year is not None:
            lo = bisect.bisect_left(self.years, year - 75)
            hi = bisect.bisect_right(self.years, year - 8)
            if hi - lo >= n:
                candidates = self.dated[lo:hi]
        cast: list[_Artist] = []
        while len(cast) < n:
            pool = self.undated if rng.random() < 0.3 else candidates
            artist = pool[rng.randrange(len(pool))]
            if artist not in cast:
                cast.append(artist)
        return cast


def _birth_year(artist: _Artist) -> int:
    return artist.year if artist.year is not None else 0


@functools.lru_cache(maxsize=16)
def _pool(series: bool, seed: int, eol: str) -> tuple[bytes, ...]:
    """Title blocks: every row of one title, id replaced by ``_ID_MARK``."""
    rng = random.Random(f"datagen-pool-{'series' if series else 'movies'}-{seed}")
    cast = _Cast(rng)
    blocks: list[bytes] = []
    for _ in range(_POOL_BLOCKS):
        cols, year = _title_columns(rng, series)
        head = SEP.join([_ID_MARK, *cols])
        n_rows = rng.choices(_ROWS_PER_TITLE, weights=_ROWS_WEIGHTS)[0]
        lines = []
        for artist in cast.pick(rng, year, n_rows):
            tail = SEP.join(
                [
                    artist.gender,
                    _character(rng, artist),
                    artist.name,
                    artist.born,
                    artist.died,
                    artist.prof,
                    artist.known_for(rng),
                ]
            )
            lines.append(f"{head}{SEP}{tail}{eol}")
        blocks.append("".join(lines).encode("utf-8"))
    return tuple(blocks)


# --------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------


def _header_bytes(series: bool, eol: str) -> bytes:
    return (SEP.join(SERIES_HEADER if series else MOVIES_HEADER) + eol).encode("utf-8")


def _write(
    path: str | os.PathLike[str],
    target_bytes: int,
    seed: int,
    crlf: bool,
    series: bool,
    pool_seed: int | None = None,
) -> int:
    eol = "\r\n" if crlf else "\n"
    eol_b = eol.encode("ascii")
    pool = _pool(series, seed if pool_seed is None else pool_seed, eol)
    rng = random.Random(f"datagen-stream-{'series' if series else 'movies'}-{seed}")
    current = rng.randint(1, 900_000)
    steps = range(1, 8)

    header = _header_bytes(series, eol)
    written = len(header)
    with open(path, "wb") as fh:
        fh.write(header)
        while written < target_bytes:
            chosen = rng.choices(pool, k=_BATCH)
            jumps = rng.choices(steps, k=_BATCH)
            out: list[bytes] = []
            for block, jump in zip(chosen, jumps):
                current += jump
                out.append(block.replace(_ID_MARK_B, b"tt%07d" % (current % _MAX_ID + 1)))
            chunk = b"".join(out)
            if written + len(chunk) >= target_bytes:
                chunk = _trim(out, target_bytes - written, eol_b)
            fh.write(chunk)
            written += len(chunk)
    return written


def _trim(blocks: list[bytes], need: int, eol: bytes) -> bytes:
    """Shortest prefix (whole lines) of ``blocks`` holding at least ``need`` bytes."""
    parts: list[bytes] = []
    size = 0
    for block in blocks:
        if size + len(block) < need:
            parts.append(block)
            size += len(block)
            continue
        for line in block.split(eol)[:-1]:
            parts.append(line + eol)
            size += len(line) + len(eol)
            if size >= need:
                return b"".join(parts)
    return b"".join(parts)  # pragma: no cover - callers pass enough blocks


def write_movies(path: str | os.PathLike[str], target_bytes: int, seed: int = 0, crlf: bool = False) -> int:
    """Write a movies.csv-format file of about ``target_bytes``; return its size.

    Stops at the first line boundary at or past ``target_bytes`` (the header,
    always written, counts). Output is deterministic for a given ``seed``.
    """
    return _write(path, target_bytes, seed, crlf, series=False)


def write_series(path: str | os.PathLike[str], target_bytes: int, seed: int = 0, crlf: bool = False) -> int:
    """Write a series.csv-format file of about ``target_bytes``; return its size."""
    return _write(path, target_bytes, seed, crlf, series=True)


_MOVIE_NAMES: tuple[str, ...] = (
    "movies_{i:04d}.csv",
    "Movies_{i:04d}.csv",
    "part-{i:04d}-movies.CSV",
    "MOVIES-{i:04d}.csv",
    "imdb_movies_{i:04d}.csv",
)
_SERIES_NAMES: tuple[str, ...] = (
    "series_{i:04d}.csv",
    "Series_{i:04d}.csv",
    "part-{i:04d}-series.csv",
    "tv_series_{i:04d}.CSV",
)
_FILES_PER_FOLDER = 50


def write_many(folder: str | os.PathLike[str], count: int, size_bytes: int, seed: int = 0) -> list[Path]:
    """Write ``count`` CSVs of about ``size_bytes`` each under ``folder``.

    Files sit in nested subfolders (2-3 levels, 50 files per folder); names are
    unique across the tree; even indexes are movies files (name contains
    "movies", case varies), odd indexes series files. Returns the paths in
    creation order.
    """
    root = Path(folder)
    paths: list[Path] = []
    for i in range(count):
        group = i // _FILES_PER_FOLDER
        sub = root / f"lote_{group // 10:03d}" / f"grupo_{group % 10:02d}"
        if group % 2:
            sub = sub / "extra"
        sub.mkdir(parents=True, exist_ok=True)
        series = i % 2 == 1
        names = _SERIES_NAMES if series else _MOVIE_NAMES
        path = sub / names[(i // 2) % len(names)].format(i=i)
        # Shared pool (cached), distinct id/block stream per file.
        _write(path, size_bytes, seed * 1_000_003 + i, False, series, pool_seed=seed)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datagen.py",
        description="Synthetic IMDb-style CSVs in the challenge format.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for kind in ("movies", "series"):
        p = sub.add_parser(kind, help=f"write one {kind}.csv-format file")
        p.add_argument("out", type=Path, help="output CSV path")
        p.add_argument("--bytes", type=int, required=True, dest="size", help="target size")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--crlf", action="store_true", help="CRLF line endings")
    p = sub.add_parser("many", help="write many CSVs in nested subfolders")
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--size", type=int, required=True, help="target size of each file")
    p.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "many":
        paths = write_many(args.out, args.count, args.size, args.seed)
        print(f"wrote {len(paths)} files under {args.out}")
        return 0
    writer = write_series if args.command == "series" else write_movies
    args.out.parent.mkdir(parents=True, exist_ok=True)
    size = writer(args.out, args.size, seed=args.seed, crlf=args.crlf)
    print(f"wrote {args.out} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
