"""kopf's settings the operator starts with (debugcap/operator/startup.kopf_settings).

Cases: cluster scanning is off: the chart grants no list on namespaces or CRDs, and with scanning
on kopf retried those forbidden lists for ~55 s after each start before handling anything (the
chart's helm test right after install took 43 s of its 45); the persistence and watch settings
stay as they were.
"""

from __future__ import annotations

import logging

import kopf

from debugcap.operator import startup


def test_the_operator_does_not_scan_namespaces_or_crds_it_may_not_list() -> None:
    settings = kopf.OperatorSettings()
    assert settings.scanning.disabled is False  # kopf's default, which stalled the start
    startup.kopf_settings(settings)
    assert settings.scanning.disabled is True


def test_persistence_posting_and_watching_are_the_operators() -> None:
    settings = kopf.OperatorSettings()
    startup.kopf_settings(settings)
    assert settings.persistence.finalizer == "debugcap.io/operator"
    assert settings.posting.level == logging.WARNING
    assert (settings.watching.server_timeout, settings.watching.client_timeout) == (300, 330)
