"""deblur_cli.files.fsutil: the one final-write step (issue 21, items 1 and 9).

Without ``overwrite`` publishing a finished file never replaces what stands at its name by
then, whichever of the three mechanisms the file system allows (rename without replacing,
a hard link, an exclusive claim); temporary files of dead processes are removed the first
time a process writes into a folder, those of live ones are kept.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deblur_cli.errors import OutputError
from deblur_cli.files import fsutil
from deblur_cli.files.fsutil import TMP_PREFIX, atomic_path, atomic_write, remove_stale_temps


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(TMP_PREFIX))


@pytest.fixture(params=["rename-noreplace", "hard-link", "exclusive-claim"])
def mechanism(request, monkeypatch):
    """Each way of publishing without replacing, the ones before it made unavailable."""
    if request.param != "rename-noreplace":
        monkeypatch.setattr(fsutil, "_RENAMEAT2", None)
        monkeypatch.setattr(fsutil, "_RENAMEX_NP", None)
    if request.param == "exclusive-claim":
        def no_links(*args, **kwargs):
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(fsutil.os, "link", no_links)
    return request.param


def test_a_file_that_appears_while_writing_is_never_replaced(tmp_path, mechanism):
    final = tmp_path / "t.jpg"
    with pytest.raises(OutputError, match="appeared while deblur was working"), atomic_path(final) as tmp:
        tmp.write_bytes(b"JPEG data")
        final.write_text("precious\n")  # the user's file, written while we work
    assert final.read_text() == "precious\n"
    assert _temps(tmp_path) == []


def test_a_new_file_is_published_by_each_mechanism(tmp_path, mechanism):
    final = tmp_path / "t.jpg"
    atomic_write(final, lambda f: f.write(b"result"))
    assert final.read_bytes() == b"result"
    assert _temps(tmp_path) == []
    assert final.stat().st_nlink == 1  # the hard-link route removed its temporary name


def test_a_dangling_symlink_at_the_name_is_kept(tmp_path, mechanism):
    final = tmp_path / "t.png"
    final.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="appeared"):
        atomic_write(final, lambda f: f.write(b"result"))
    assert final.is_symlink() and os.readlink(final) == str(tmp_path / "nowhere")


def test_overwrite_replaces(tmp_path):
    final = tmp_path / "t.jpg"
    final.write_text("old")
    atomic_write(final, lambda f: f.write(b"new"), overwrite=True)
    assert final.read_bytes() == b"new" and _temps(tmp_path) == []


def test_two_writers_of_one_name_one_wins(tmp_path):
    """Two runs finishing the same output: the second fails, the first's file stays."""
    final = tmp_path / "out.png"
    with pytest.raises(OutputError, match="appeared"), atomic_path(final) as slow:
        slow.write_bytes(b"second")
        with atomic_path(final) as fast:
            fast.write_bytes(b"first")
    assert final.read_bytes() == b"first" and _temps(tmp_path) == []


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def test_stale_temps_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    host = fsutil._host_tag()
    dead = tmp_path / f"{TMP_PREFIX}{host}-{_dead_pid()}-abc.jpg"
    live = tmp_path / f"{TMP_PREFIX}{host}-{os.getppid()}-def.jpg"  # our parent: alive
    mine = tmp_path / f"{fsutil.temp_prefix()}ghi.jpg"
    foreign = tmp_path / f"{TMP_PREFIX}0123abcd-{_dead_pid()}-jkl.jpg"  # another host's, fresh
    user = tmp_path / "photo.jpg"
    for p in (dead, live, mine, foreign, user):
        p.write_bytes(b"x")
    remove_stale_temps([tmp_path])
    assert not dead.exists()
    assert live.exists() and mine.exists() and foreign.exists() and user.exists()
    old = os.path.getmtime(foreign) - fsutil.FOREIGN_TEMP_AGE_S - 10
    os.utime(foreign, (old, old))
    remove_stale_temps([tmp_path])
    assert not foreign.exists()


def test_stale_work_folders_of_dead_processes_are_removed_live_ones_kept(tmp_path):
    """deblur serve's uploads folders (issue 27 item 5): a dead process's folder goes, with what
    is inside; a live one's, ours, a fresh one of another host, a file and a link stay."""
    host = fsutil._host_tag()
    dead = tmp_path / f"uploads-{host}-{_dead_pid()}-abc"
    live = tmp_path / f"uploads-{host}-{os.getppid()}-def"
    mine = tmp_path / f"uploads-{fsutil.owner_tag()}ghi"
    foreign = tmp_path / f"uploads-0123abcd-{_dead_pid()}-jkl"
    outside = tmp_path.parent / f"{tmp_path.name}-keep"
    for folder in (dead, live, mine, foreign, outside):
        (folder / "upload-x").mkdir(parents=True)
        (folder / "upload-x" / "upload").write_bytes(b"photo")
    (dead / "link-out").symlink_to(outside)  # a link inside is removed, never followed
    not_folder = tmp_path / f"uploads-{host}-{_dead_pid()}-file"
    not_folder.write_bytes(b"not a folder")
    (tmp_path / f"uploads-{host}-{_dead_pid()}-link").symlink_to(outside)
    removed = fsutil.remove_stale_folders(tmp_path, "uploads-")
    assert removed == [dead.name] and not dead.exists()
    assert live.exists() and mine.exists() and foreign.exists()
    assert (outside / "upload-x" / "upload").read_bytes() == b"photo"
    assert not_folder.exists()
    old = os.path.getmtime(foreign) - fsutil.FOREIGN_TEMP_AGE_S - 10
    os.utime(foreign, (old, old))
    assert fsutil.remove_stale_folders(tmp_path, "uploads-") == [foreign.name]


def test_the_first_write_into_a_folder_sweeps_it(tmp_path):
    dead = tmp_path / f"{TMP_PREFIX}{fsutil._host_tag()}-{_dead_pid()}-abc.mp4"
    dead.write_bytes(b"half a video")
    atomic_write(tmp_path / "out.json", lambda f: f.write(b"{}"))
    assert not dead.exists()


def test_temp_names_carry_host_and_process(tmp_path):
    seen = []
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.png") as tmp:
        seen.append(tmp.name)
        raise RuntimeError("stop")
    assert seen[0].startswith(fsutil.temp_prefix()) and seen[0].endswith(".png")
    assert _temps(tmp_path) == []
