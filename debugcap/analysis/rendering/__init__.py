"""Renderers: turn computed analysis values into text, HTML or speedscope JSON; compute nothing.

Callers: :mod:`debugcap.kubectl_plugin.commands.analyze`. The values come from
:mod:`debugcap.analysis.report` (bundle reports and diffs), :mod:`debugcap.analysis.pprof`
(tops), :mod:`debugcap.analysis.goroutines` (dump summaries) and
:mod:`debugcap.analysis.flames` (flame graphs).
"""
