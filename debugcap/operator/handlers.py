"""Every kopf handler module of the debugcap operator, imported once: the one list of them.

Importing a handler module registers its ``@kopf.*`` functions with kopf. Run the operator with
``debugcap-operator`` (:mod:`debugcap.operator.main`, which imports this module) or
``kopf run --standalone -m debugcap.operator.handlers``. A new handler module is added here.

- :mod:`~debugcap.operator.startup`: start-up (the runtime in ``memo``), login, clean-up;
- :mod:`~debugcap.operator.captures`: DebugCapture;
- :mod:`~debugcap.operator.schedules`: DebugSchedule;
- :mod:`~debugcap.operator.capture_templates`: DebugCaptureTemplate;
- :mod:`~debugcap.operator.triggers`: DebugTrigger;
- :mod:`~debugcap.operator.downloads`: DebugDownload (presigned URLs to a capture's bundles);
- :mod:`~debugcap.operator.alert_webhook`: the Alertmanager webhook receiver (off by default).
"""

from __future__ import annotations

from debugcap.operator import alert_webhook, capture_templates, captures, downloads, schedules, startup, triggers

MODULES = (startup, captures, schedules, capture_templates, triggers, downloads, alert_webhook)
