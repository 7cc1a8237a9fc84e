"""``resolv-conf``: the container's DNS configuration, stored verbatim.

Cases: /etc/resolv.conf is stored under net/resolv.conf; an image without ``cat`` is a skip.
"""

from __future__ import annotations

from debugcap.bundle import layout
from debugcap.collectors import base
from debugcap.collectors.resolv_conf import ResolvConfCollector


def test_resolv_conf_is_stored_verbatim_under_the_net_path(bundle, shell, data) -> None:
    shell.answer(["cat", "/etc/resolv.conf"], "exec/resolv.conf")
    result = ResolvConfCollector().collect(bundle.context(commands=shell))
    assert result == base.CollectorResult(base.Status.OK, "", (layout.NET_RESOLV_CONF,))
    assert bundle.files == {layout.NET_RESOLV_CONF: data("exec/resolv.conf")}
    assert bundle.text(layout.NET_RESOLV_CONF).startswith("nameserver ")


def test_image_without_cat_is_skipped_and_stores_nothing(bundle, shell) -> None:
    shell.answer(["cat", "/etc/resolv.conf"], stderr="exec/sh-lsof-not-found.err", exit_code=127)
    result = ResolvConfCollector().collect(bundle.context(commands=shell))
    assert result == base.CollectorResult(base.Status.SKIPPED, "not available in the container: cat")
    assert bundle.files == {}


def test_from_a_debug_container_the_targets_file_is_read_through_its_root(bundle, shell, data) -> None:
    shell.via = "ephemeral"
    shell.answer(["cat", "/proc/1/root/etc/resolv.conf"], "exec/resolv.conf")
    result = ResolvConfCollector().collect(bundle.context(commands=shell))
    assert result.status is base.Status.OK and shell.ran == [("cat", "/proc/1/root/etc/resolv.conf")]
    assert bundle.files == {layout.NET_RESOLV_CONF: data("exec/resolv.conf")}
