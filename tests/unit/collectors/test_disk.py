"""``disk``: ``df -h``, ``df -i`` and the largest entries of PID 1's working directory.

Cases: the three outputs are stored under their fs paths; ``inodes: false`` leaves ``df -i`` out;
``du_top`` sets how many entries the du script keeps; an image without ``df`` keeps the du
listing and is partial, naming what was missing.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base, disk
from debugcap.collectors.disk import DiskCollector


def _answer_all(shell, top: int = 20) -> None:
    shell.answer(["df", "-h"], "exec/busybox-df-h.txt")
    shell.answer(["df", "-i"], "exec/busybox-df-i.txt")
    shell.answer(["sh", "-c", disk.du_script(top)], "exec/du-top5.txt")


def test_df_and_du_outputs_are_stored_under_the_fs_paths(bundle, shell, data) -> None:
    _answer_all(shell)
    result = DiskCollector().collect(bundle.context(commands=shell))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.FS_DF, layout.FS_DF_INODES, layout.FS_DU_TOP))
    assert bundle.files == {layout.FS_DF: data("exec/busybox-df-h.txt"),
                            layout.FS_DF_INODES: data("exec/busybox-df-i.txt"),
                            layout.FS_DU_TOP: data("exec/du-top5.txt")}


def test_inodes_false_leaves_df_i_out(bundle, shell) -> None:
    _answer_all(shell)
    result = DiskCollector().collect(bundle.context(commands=shell, params={"inodes": False}))
    assert result.status is base.Status.OK
    assert set(bundle.files) == {layout.FS_DF, layout.FS_DU_TOP}
    assert ("df", "-i") not in shell.ran


def test_du_top_sets_how_many_entries_the_script_keeps(bundle, shell, data) -> None:
    _answer_all(shell, top=5)
    DiskCollector().collect(bundle.context(commands=shell, params={"du_top": 5}))
    script = shell.ran[-1][2]
    assert script.startswith("cd /proc/1/cwd") and "sed -n '2,6p'" in script
    assert len(bundle.text(layout.FS_DU_TOP).splitlines()) == 5


def test_image_without_df_keeps_du_and_is_partial(bundle, shell, data) -> None:
    shell.answer(["df", "-h"], stderr="exec/sh-lsof-not-found.err", exit_code=127)
    shell.answer(["df", "-i"], stderr="exec/sh-lsof-not-found.err", exit_code=127)
    shell.answer(["sh", "-c", disk.du_script(20)], "exec/du-top5.txt")
    result = DiskCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.PARTIAL
    assert result.message == "not available in the container: df"
    assert bundle.files == {layout.FS_DU_TOP: data("exec/du-top5.txt")}
