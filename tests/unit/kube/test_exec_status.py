"""How exec results are read from the API's v1.Status on channel 3 (bytes as the API sends them)."""

from __future__ import annotations

import json

import pytest

from debugcap.kube import exec as kexec


def status(**fields: object) -> bytes:
    return json.dumps({"metadata": {}, **fields}).encode()


def test_success_is_exit_zero() -> None:
    assert kexec.parse_status(status(status="Success")) == (0, "")


def test_non_zero_exit_code_comes_from_the_exit_code_cause() -> None:
    raw = status(status="Failure", message="command terminated with non-zero exit code: exit status 3",
                 reason="NonZeroExitCode", details={"causes": [{"reason": "ExitCode", "message": "3"}]})
    assert kexec.parse_status(raw) == (3, "command terminated with non-zero exit code: exit status 3")


def test_failed_start_has_no_exit_code_but_keeps_the_message() -> None:
    msg = ('Internal error occurred: error executing command in container: failed to exec in container: '
           'failed to start exec "x": OCI runtime exec failed: exec failed: unable to start container process: '
           'exec: "sh": executable file not found in $PATH: unknown')
    code, message = kexec.parse_status(status(status="Failure", message=msg))
    assert code is None and "executable file not found" in message


@pytest.mark.parametrize("raw", [b"", b"not json at all"])
def test_missing_or_garbled_status_means_unknown_exit(raw: bytes) -> None:
    assert kexec.parse_status(raw)[0] is None


def result(exit_code: int | None, message: str = "", stdout: int = 0) -> kexec.ExecResult:
    return kexec.ExecResult(command=("x",), exit_code=exit_code, stdout_bytes=stdout, stderr_bytes=0,
                            truncated=False, timed_out=False, duration_s=0.1, status_message=message)


@pytest.mark.parametrize(("code", "message", "missing"), [
    (127, "", True),  # sh: lsof: not found
    (126, "", True),  # found but not executable
    (None, 'exec: "ps": executable file not found in $PATH', True),
    (None, "no such file or directory", True),
    (1, "", False),
    (0, "", False),
    (None, "connection reset", False),
])
def test_tool_missing(code: int | None, message: str, missing: bool) -> None:
    assert result(code, message).tool_missing is missing


def test_capped_sink_keeps_exactly_the_limit_and_says_so() -> None:
    import io

    out = io.BytesIO()
    sink = kexec.CappedSink(out, 10)
    sink.write(b"12345")
    sink.write(b"67890abc")
    assert (out.getvalue(), sink.truncated, sink.written) == (b"1234567890", True, 10)
