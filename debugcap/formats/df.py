"""Parse ``df`` output (plain, ``-P`` or ``-h``) into rows.

Callers: :mod:`debugcap.analysis.sections`, on the ``fs/df.txt`` the disk collector writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PERCENT = re.compile(r"\d+%")


@dataclass(frozen=True)
class DfRow:
    filesystem: str
    size: str  # as df printed it: blocks or a human size such as "9.5G"
    used: str
    available: str
    use_pct: int
    mount: str

    def as_dict(self) -> dict[str, str | int]:
        return {"filesystem": self.filesystem, "size": self.size, "used": self.used,
                "available": self.available, "use_pct": self.use_pct, "mount": self.mount}


def parse_df(text: str) -> list[DfRow]:
    """Rows found by their ``NN%`` column, so every df flavour and mount names with spaces work."""
    out = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        pos = next((i for i, f in enumerate(fields) if _PERCENT.fullmatch(f)), None)
        if pos is None or pos < 4:
            continue
        out.append(DfRow(filesystem=fields[0], size=fields[pos - 3], used=fields[pos - 2],
                         available=fields[pos - 1], use_pct=int(fields[pos][:-1]),
                         mount=" ".join(fields[pos + 1:])))
    return out
