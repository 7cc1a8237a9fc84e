"""``deleted-files``: files deleted but still held open, found by the collector's shell loop.

Cases: the loop's lines (``/proc/1/fd/N -> path (deleted)``) are stored under
fs/deleted-open.txt; the loop runs through ``sh -c``; a process holding no deleted file gives an
empty file and an ok result.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base, deleted_files
from debugcap.collectors.deleted_files import DeletedFilesCollector

LOOP = ["sh", "-c", deleted_files.SCRIPT]


def test_deleted_but_open_files_are_stored_under_the_fs_path(bundle, shell, data) -> None:
    shell.answer(LOOP, "exec/deleted-open.txt")
    result = DeletedFilesCollector().collect(bundle.context(commands=shell))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.FS_DELETED_OPEN,))
    assert bundle.files == {layout.FS_DELETED_OPEN: data("exec/deleted-open.txt")}
    lines = bundle.text(layout.FS_DELETED_OPEN).splitlines()
    assert lines and all(line.startswith("/proc/1/fd/") and line.endswith("(deleted)") for line in lines)


def test_no_deleted_file_is_an_empty_file_and_ok(bundle, shell) -> None:
    shell.answer(LOOP, "")
    result = DeletedFilesCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.OK
    assert bundle.files == {layout.FS_DELETED_OPEN: b""}
