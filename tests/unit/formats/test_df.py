"""``df`` output in its flavours: plain 1K blocks, ``-h`` sizes, a mount point with a space, junk."""

from __future__ import annotations

from debugcap.formats import df


def test_plain_and_human_readable_rows_are_found_by_their_percent_column() -> None:
    text = ("Filesystem     1K-blocks    Used Available Use% Mounted on\n"
            "overlay         10000000 9500000    500000  95% /\n"
            "tmpfs                64M       0       64M   0% /dev\n")
    assert df.parse_df(text) == [
        df.DfRow(filesystem="overlay", size="10000000", used="9500000", available="500000", use_pct=95, mount="/"),
        df.DfRow(filesystem="tmpfs", size="64M", used="0", available="64M", use_pct=0, mount="/dev"),
    ]


def test_mount_point_with_a_space_is_kept_whole() -> None:
    text = "Filesystem Size Used Avail Use% Mounted on\n/dev/sdb1 1G 1G 0 100% /mnt/my data\n"
    assert df.parse_df(text)[0].mount == "/mnt/my data"


def test_lines_without_a_usable_percent_column_are_skipped() -> None:
    text = "Filesystem Size Used Avail Use% Mounted on\nbroken 5% /x\nnothing here\n"
    assert df.parse_df(text) == []


def test_row_as_dict_is_the_report_json_shape() -> None:
    row = df.DfRow(filesystem="overlay", size="1", used="1", available="0", use_pct=99, mount="/")
    assert row.as_dict() == {"filesystem": "overlay", "size": "1", "used": "1", "available": "0",
                             "use_pct": 99, "mount": "/"}
