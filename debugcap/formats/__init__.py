"""Parsers for the file formats evidence arrives in: pprof protobufs, ``/proc`` tables, ``df``.

Neutral ground between :mod:`debugcap.collectors` (which checks what it fetched, and
counts socket states while collecting) and :mod:`debugcap.analysis` (which reads
finished bundles): both import this package, neither imports the other. Modules here
turn bytes or text into values and know nothing about bundles, pods or reports.
"""
