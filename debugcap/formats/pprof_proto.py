"""Message classes for ``perftools.profiles.Profile``, built at runtime.

The schema below is transcribed from ``proto/profile.proto`` of google/pprof
(https://github.com/google/pprof), which carries this notice:

    Copyright 2016 Google Inc. All Rights Reserved.

    Licensed under the Apache License, Version 2.0 (the "License");
    you may not use this file except in compliance with the License.
    You may obtain a copy of the License at

        http://www.apache.org/licenses/LICENSE-2.0

    Unless required by applicable law or agreed to in writing, software
    distributed under the License is distributed on an "AS IS" BASIS,
    WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
    See the License for the specific language governing permissions and
    limitations under the License.

Why a runtime descriptor and not a protoc-generated ``profile_pb2.py``: no
codegen step, no gencode/runtime version coupling, and the upb backend parses
these classes exactly as fast (measured in shared/research/pprof.md §2).

Used only by :mod:`debugcap.formats.pprof`.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "perftools.profiles"

_T = descriptor_pb2.FieldDescriptorProto
_REPEATED = _T.LABEL_REPEATED
_OPTIONAL = _T.LABEL_OPTIONAL

# (message, [(field name, number, type, label, message type name or "")])
_SCHEMA: list[tuple[str, list[tuple[str, int, int, int, str]]]] = [
    ("Profile", [
        ("sample_type", 1, _T.TYPE_MESSAGE, _REPEATED, "ValueType"),
        ("sample", 2, _T.TYPE_MESSAGE, _REPEATED, "Sample"),
        ("mapping", 3, _T.TYPE_MESSAGE, _REPEATED, "Mapping"),
        ("location", 4, _T.TYPE_MESSAGE, _REPEATED, "Location"),
        ("function", 5, _T.TYPE_MESSAGE, _REPEATED, "Function"),
        ("string_table", 6, _T.TYPE_STRING, _REPEATED, ""),
        ("drop_frames", 7, _T.TYPE_INT64, _OPTIONAL, ""),
        ("keep_frames", 8, _T.TYPE_INT64, _OPTIONAL, ""),
        ("time_nanos", 9, _T.TYPE_INT64, _OPTIONAL, ""),
        ("duration_nanos", 10, _T.TYPE_INT64, _OPTIONAL, ""),
        ("period_type", 11, _T.TYPE_MESSAGE, _OPTIONAL, "ValueType"),
        ("period", 12, _T.TYPE_INT64, _OPTIONAL, ""),
        ("comment", 13, _T.TYPE_INT64, _REPEATED, ""),
        ("default_sample_type", 14, _T.TYPE_INT64, _OPTIONAL, ""),
        ("doc_url", 15, _T.TYPE_INT64, _OPTIONAL, ""),
    ]),
    ("ValueType", [
        ("type", 1, _T.TYPE_INT64, _OPTIONAL, ""),
        ("unit", 2, _T.TYPE_INT64, _OPTIONAL, ""),
    ]),
    ("Sample", [
        ("location_id", 1, _T.TYPE_UINT64, _REPEATED, ""),
        ("value", 2, _T.TYPE_INT64, _REPEATED, ""),
        ("label", 3, _T.TYPE_MESSAGE, _REPEATED, "Label"),
    ]),
    ("Label", [
        ("key", 1, _T.TYPE_INT64, _OPTIONAL, ""),
        ("str", 2, _T.TYPE_INT64, _OPTIONAL, ""),
        ("num", 3, _T.TYPE_INT64, _OPTIONAL, ""),
        ("num_unit", 4, _T.TYPE_INT64, _OPTIONAL, ""),
    ]),
    ("Mapping", [
        ("id", 1, _T.TYPE_UINT64, _OPTIONAL, ""),
        ("memory_start", 2, _T.TYPE_UINT64, _OPTIONAL, ""),
        ("memory_limit", 3, _T.TYPE_UINT64, _OPTIONAL, ""),
        ("file_offset", 4, _T.TYPE_UINT64, _OPTIONAL, ""),
        ("filename", 5, _T.TYPE_INT64, _OPTIONAL, ""),
        ("build_id", 6, _T.TYPE_INT64, _OPTIONAL, ""),
        ("has_functions", 7, _T.TYPE_BOOL, _OPTIONAL, ""),
        ("has_filenames", 8, _T.TYPE_BOOL, _OPTIONAL, ""),
        ("has_line_numbers", 9, _T.TYPE_BOOL, _OPTIONAL, ""),
        ("has_inline_frames", 10, _T.TYPE_BOOL, _OPTIONAL, ""),
    ]),
    ("Location", [
        ("id", 1, _T.TYPE_UINT64, _OPTIONAL, ""),
        ("mapping_id", 2, _T.TYPE_UINT64, _OPTIONAL, ""),
        ("address", 3, _T.TYPE_UINT64, _OPTIONAL, ""),
        ("line", 4, _T.TYPE_MESSAGE, _REPEATED, "Line"),
        ("is_folded", 5, _T.TYPE_BOOL, _OPTIONAL, ""),
    ]),
    ("Line", [
        ("function_id", 1, _T.TYPE_UINT64, _OPTIONAL, ""),
        ("line", 2, _T.TYPE_INT64, _OPTIONAL, ""),
        ("column", 3, _T.TYPE_INT64, _OPTIONAL, ""),
    ]),
    ("Function", [
        ("id", 1, _T.TYPE_UINT64, _OPTIONAL, ""),
        ("name", 2, _T.TYPE_INT64, _OPTIONAL, ""),
        ("system_name", 3, _T.TYPE_INT64, _OPTIONAL, ""),
        ("filename", 4, _T.TYPE_INT64, _OPTIONAL, ""),
        ("start_line", 5, _T.TYPE_INT64, _OPTIONAL, ""),
    ]),
]


def _build() -> Any:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="profile.proto", package=_PACKAGE, syntax="proto3")
    for msg_name, fields in _SCHEMA:
        msg = fdp.message_type.add(name=msg_name)
        for name, number, ftype, label, type_name in fields:
            field = msg.field.add(name=name, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    # A private pool: the default pool may already hold another copy of this
    # file (e.g. a vendored profile_pb2 from some other library).
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.Profile"))


Profile: Any = _build()
