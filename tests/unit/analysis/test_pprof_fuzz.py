"""Whatever the profile reader accepts, ``top`` can summarise: fuzzing with mutated real profiles.

The reader's own rejections are tested byte by byte in tests/unit/formats/test_pprof.py.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debugcap.analysis import pprof
from debugcap.errors import AnalysisError
from debugcap.formats import pprof as pprof_format


def _check_only_analysis_error(data: bytes) -> None:
    try:
        prof = pprof_format.parse(data, "fuzz")
    except AnalysisError:
        return
    # Whatever parses must also be analysable without errors.
    if prof.sample_types:
        pprof.top(prof)


FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def real_raw(profdir: Path) -> list[bytes]:
    return [gzip.decompress((profdir / n).read_bytes()) for n in ("cpu.pb.gz", "mutex.pb.gz")]


@FUZZ
@given(data=st.data())
def test_fuzz_mutated_real_profiles_raise_only_analysis_error(real_raw: list[bytes],
                                                              data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from(real_raw)))
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del raw[pos:pos + data.draw(st.integers(1, 64))]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
    _check_only_analysis_error(bytes(raw))
    _check_only_analysis_error(gzip.compress(bytes(raw)))
