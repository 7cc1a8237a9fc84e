"""``disk``: ``df -h``, ``df -i`` and the largest entries of PID 1's working directory.

Cases: the three outputs are stored under their fs paths; ``inodes: false`` leaves ``df -i`` out;
``du_top`` sets how many entries the du script keeps; an image without ``df`` keeps the du
listing and is partial, naming what was missing.
"""

from __future__ import annotations

import subprocess

from debugcap.bundle import layout
from debugcap.collectors import base, disk
from debugcap.collectors.disk import DiskCollector
from debugcap.formats.df import parse_df


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


def test_from_a_debug_container_df_measures_the_targets_mounts_not_its_own(bundle, shell, data) -> None:
    shell.via = "ephemeral"  # commands run beside the target: plain `df` would show the debug container
    shell.answer(["sh", "-c", disk.target_df_script(inodes=False)], "exec/debug-container-df-h.txt")
    shell.answer(["sh", "-c", disk.target_df_script(inodes=True)], "exec/debug-container-df-i.txt")
    shell.answer(["sh", "-c", disk.du_script(20)], "exec/du-top5.txt")
    result = DiskCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.OK
    assert ("df", "-h") not in shell.ran and ("df", "-i") not in shell.ran
    assert bundle.files[layout.FS_DF] == data("exec/debug-container-df-h.txt")
    rows = parse_df(bundle.files[layout.FS_DF].decode())
    assert rows[0].mount == "/" and rows[0].size.endswith("G")


def test_the_target_df_script_agrees_with_busybox_df_on_this_machine() -> None:
    # The script reads PID 1's mounts through /proc/1/root; pointed at this process's own, it must
    # print what busybox `df -h` prints for the same file systems.
    script = disk.target_df_script(inodes=False).replace("/proc/1/root", "").replace("/proc/1/mounts",
                                                                                   "/proc/self/mounts")
    ours = subprocess.run(["busybox", "sh", "-c", script], capture_output=True, text=True, check=True).stdout
    theirs = subprocess.run(["busybox", "df", "-h"], capture_output=True, text=True, check=True).stdout
    ours_rows = {r.mount: r.size for r in parse_df(ours)}
    their_rows = {r.mount: r.size for r in parse_df(theirs)}
    assert ours_rows["/"] == their_rows["/"]
    shared = set(ours_rows) & set(their_rows)
    assert len(shared) >= 2 and all(ours_rows[m] == their_rows[m] for m in shared), (ours, theirs)
