"""``data.fetch`` against a local fake GroupLens archive served as a file:// URL: no network, tmp folders only."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from test_real_data import movielens_tables, write_grouplens

from data import fetch

TABLES = movielens_tables()
COUNTS = {"ratings": len(TABLES[0]), "users": len(TABLES[1]), "movies": len(TABLES[2])}


@pytest.fixture
def fake_source(tmp_path, monkeypatch):
    """A GroupLens-shaped zip under tmp_path as the source, the cache under tmp_path, and the fake's counts."""
    raw = write_grouplens(tmp_path / "src", TABLES)
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in fetch.GROUPLENS_FILES.values():
            z.write(raw / name, f"ml-100k/{name}")
    monkeypatch.setenv("CTRBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fetch, "GROUPLENS_URL", archive.as_uri())
    monkeypatch.setattr(fetch, "ML100K_COUNTS", COUNTS)
    monkeypatch.setattr(fetch, "_from_widedeep_wheel", _no_fallback)
    return archive


def _no_fallback(target: Path) -> None:
    raise AssertionError("the fallback ran although the archive was reachable")


def test_fetch_unpacks_the_archive_into_the_cache(fake_source, tmp_path, capsys):
    target = fetch.fetch_ml100k()
    assert target == tmp_path / "cache" / "raw" / "ml-100k"
    for name in fetch.GROUPLENS_FILES.values():
        assert (target / name).read_bytes() == (tmp_path / "src" / name).read_bytes()
    assert not list(target.glob(".*"))  # no temporary file left behind
    assert f"{COUNTS['ratings']} ratings, {COUNTS['users']} users, {COUNTS['movies']} movies" in capsys.readouterr().out


def test_files_present_are_not_fetched_again_unless_forced(fake_source, tmp_path):
    target = fetch.fetch_ml100k()
    stamp = (target / "u.data").stat().st_mtime_ns
    fake_source.unlink()  # a second fetch that tried the source would now fail
    assert fetch.fetch_ml100k() == target and (target / "u.data").stat().st_mtime_ns == stamp
    with pytest.raises(AssertionError, match="the fallback ran"):
        fetch.fetch_ml100k(force=True)


def test_unreachable_archive_falls_back_to_the_wheel(fake_source, tmp_path, monkeypatch):
    fake_source.unlink()
    used = []
    monkeypatch.setattr(fetch, "_from_widedeep_wheel", lambda target: used.append(target) or write_grouplens(
        target, TABLES))
    target = fetch.fetch_ml100k()
    assert used == [target] and (target / "u.item").is_file()


def test_wrong_counts_are_an_error_naming_them(fake_source, monkeypatch):
    monkeypatch.setattr(fetch, "ML100K_COUNTS", {**COUNTS, "users": 943})
    with pytest.raises(RuntimeError, match=r"does not hold MovieLens-100K: counts \{.*'users': 30.*expected"):
        fetch.fetch_ml100k()


def test_command_line_rejects_unknown_data_sets(capsys):
    with pytest.raises(SystemExit):
        fetch.main(["criteo"])
    assert "invalid choice: 'criteo'" in capsys.readouterr().err
