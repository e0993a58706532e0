"""The one atomic writer: complete files and folders, or nothing."""

import pytest

from data.atomic import write_atomically


def test_a_file_and_a_folder_appear_complete(tmp_path):
    write_atomically(tmp_path / "a" / "f.txt", lambda staged: staged.write_text("new"))
    assert (tmp_path / "a" / "f.txt").read_text() == "new"
    write_atomically(tmp_path / "a" / "f.txt", lambda staged: staged.write_text("newer"))
    assert (tmp_path / "a" / "f.txt").read_text() == "newer"

    def folder(staged):
        staged.mkdir()
        (staged / "x").write_text("1")

    write_atomically(tmp_path / "d", folder)
    assert (tmp_path / "d" / "x").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "d"]


def test_a_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def crash(staged):
        staged.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, crash)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(tmp_path / "d", lambda staged: (staged.mkdir(), crash(staged / "x")))
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_a_folder_written_first_by_another_process_is_kept(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("first")

    def folder(staged):
        staged.mkdir()
        (staged / "x").write_text("second")

    write_atomically(tmp_path / "d", folder)
    assert (tmp_path / "d" / "x").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
