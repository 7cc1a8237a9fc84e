"""speedscope JSON (https://www.speedscope.app) of every sample type of every profile of a bundle.

Callers: the ``report --speedscope`` command. File format notes: shared/research/pprof.md §5.
"""

from __future__ import annotations

from typing import Any

from debugcap.analysis import pprof
from debugcap.formats import pprof as pprof_format

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
_SPEEDSCOPE_UNITS = {"nanoseconds": "nanoseconds", "bytes": "bytes", "microseconds": "microseconds",
                     "milliseconds": "milliseconds", "seconds": "seconds"}


def speedscope(profiles: list[tuple[str, pprof_format.Profile]], name: str, exporter: str) -> dict[str, Any]:
    """speedscope JSON: one ``sampled`` profile per (profile, sample type), positive weights only."""
    frames: list[dict[str, Any]] = []
    frame_ids: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for title, prof in profiles:
        remap = []
        for nid, fname in enumerate(prof.node_names):
            fid = frame_ids.get(fname)
            if fid is None:
                fid = frame_ids[fname] = len(frames)
                frame: dict[str, Any] = {"name": fname}
                if prof.node_files[nid]:
                    frame["file"] = prof.node_files[nid]
                frames.append(frame)
            remap.append(fid)
        for idx, st in enumerate(prof.sample_types):
            samples: list[list[int]] = []
            weights: list[int] = []
            for stack, w in pprof.node_stacks(prof, idx).items():
                # speedscope throws on weights <= 0 (delta and diff profiles have them).
                if w > 0 and stack:
                    samples.append([remap[n] for n in reversed(stack)])
                    weights.append(w)
            if not weights:
                continue
            out.append({"type": "sampled", "name": f"{title} {st.type} ({st.unit})",
                        "unit": _SPEEDSCOPE_UNITS.get(st.unit, "none"), "startValue": 0,
                        "endValue": sum(weights), "samples": samples, "weights": weights})
    return {"$schema": SPEEDSCOPE_SCHEMA, "shared": {"frames": frames}, "profiles": out,
            "name": name, "activeProfileIndex": 0, "exporter": exporter}
