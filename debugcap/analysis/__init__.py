"""Read finished bundles and profiles locally; never collects (the ``top|goroutines|diff|report`` verbs).

Reading a bundle, in the order the work happens:

- :mod:`~debugcap.analysis.bundle_reading`: files out of a packed or unpacked bundle; a broken
  file becomes a problem line, a known empty or failed capture a hint (:mod:`~debugcap.analysis.hints`).
- :mod:`~debugcap.analysis.sections`: one report section each (snapshots, sockets, resources...),
  every path from :mod:`debugcap.bundle.layout`, the manifest through :mod:`debugcap.bundle.manifest`.
- :mod:`~debugcap.analysis.pprof` (``go tool pprof -top``/``-diff_base``),
  :mod:`~debugcap.analysis.goroutines` (debug=2 dumps) and :mod:`~debugcap.analysis.flames`
  compute; file formats are parsed by :mod:`debugcap.formats`.
- :mod:`~debugcap.analysis.report` assembles the typed :mod:`~debugcap.analysis.model`, then
  :mod:`~debugcap.analysis.findings` (one module per rule, listed in ``RULES``) adds findings.
- :mod:`~debugcap.analysis.rendering` turns the values into text, HTML (with ``assets/``) or
  speedscope JSON; ``as_dict()`` on the model is the ``-o json`` form.
"""
