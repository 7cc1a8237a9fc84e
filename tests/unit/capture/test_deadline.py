"""The whole-capture deadline (``CaptureSettings.capture_timeout_seconds``), on a fake clock.

Cases:
- at the deadline a step still running is abandoned: Partial with the files it added before,
  Failed when it added none; the message names the deadline and the setting that raises it;
  the steps that finished, and every file collected, are in the bundle and its manifest;
- a step queued behind the others is Failed as not started;
- a step that ends after the deadline adds nothing and reports nothing, and the outcome says
  when no step runs any more (``steps_ended``: callers close the pod's connections, then wait);
- a window that never opened is announced at the deadline, and the mid-window step still
  waiting for its turn is woken and Failed as not started;
- without a deadline (None, and no slack) the capture waits for its steps however long they take;
- the automatic deadline is the template's longest step (a profile's seconds, go-leak's snapshots
  times their interval) plus the slack, and an explicit one wins over it;
- :class:`~debugcap.capture.deadline.Deadline` alone; a deadline that is not positive is a
  ``ConfigError`` naming the setting.
"""

from __future__ import annotations

import threading

import pytest

from debugcap import errors, templates
from debugcap.bundle import manifest
from debugcap.capture import Phase
from debugcap.capture.deadline import Deadline, deadline_seconds
from debugcap.collectors import COLLECTORS, base
from debugcap.settings import CaptureSettings

from .conftest import HANG, FakeClock, Rig, manifest_of, members, stand_in, step, template, writes

S = manifest.CollectorStatus
Registry = dict[str, type[base.Collector]]
SETTING = "spec.parameters.deadlineSeconds"


class Hangs:
    """A collector that adds ``files`` and then hangs until :meth:`end` (after the test)."""

    def __init__(self, *files: str) -> None:
        self.files = files
        self.entered, self.go, self.ended = threading.Event(), threading.Event(), threading.Event()
        self.late: list[BaseException] = []  # what adding a file after the deadline raised

    def __call__(self, ctx: base.CollectContext) -> base.CollectorResult:
        for path in self.files:
            ctx.add_bytes(path, b"before the deadline\n")
        self.entered.set()
        assert self.go.wait(HANG)
        try:
            ctx.add_bytes("proc/late.txt", b"too late\n")
        except errors.DebugcapError as exc:
            self.late.append(exc)
            raise
        finally:
            self.ended.set()
        return base.CollectorResult(base.Status.OK)

    def end(self) -> None:
        self.go.set()


def test_deadline_abandons_running_steps_and_keeps_everything_collected(rig: Rig, clock: FakeClock,
                                                                        registry: Registry) -> None:
    partial, stuck = Hangs("proc/partial-1.txt", "proc/partial-2.txt"), Hangs()
    stand_in(registry, "done", writes("proc/done.txt"))
    stand_in(registry, "partial", partial)
    stand_in(registry, "stuck", stuck)
    running = rig.start(template(step("done"), step("partial"), step("stuck")), deadline=60,
                        deadline_setting=SETTING)
    assert partial.entered.wait(HANG) and stuck.entered.wait(HANG)
    rig.until_reported("done")
    clock.until_waiting(1)  # the capture, on its deadline
    clock.advance(60)
    outcome = running.result(HANG)
    done, part, stk = outcome.records
    assert (done.name, done.status, done.files) == ("done", S.OK, ("proc/done.txt",))
    assert (part.name, part.status, part.files, part.bytes, part.duration_ms) == (
        "partial", S.PARTIAL, ("proc/partial-1.txt", "proc/partial-2.txt"), 40, 60_000)
    assert (stk.name, stk.status, stk.files, stk.duration_ms) == ("stuck", S.FAILED, (), 60_000)
    assert part.message == ("abandoned: still running at the capture deadline of 60 s "
                            "(spec.parameters.deadlineSeconds); the files it wrote before are in the bundle; "
                            "raise spec.parameters.deadlineSeconds or shorten the template")
    assert stk.message == ("abandoned: still running at the capture deadline of 60 s "
                           "(spec.parameters.deadlineSeconds); raise spec.parameters.deadlineSeconds or shorten "
                           "the template")
    assert outcome.phase is Phase.PARTIALLY_FAILED
    assert set(members(outcome.bundle.path)) >= {"proc/done.txt", "proc/partial-1.txt", "proc/partial-2.txt"}
    assert [(c["name"], c["status"]) for c in manifest_of(outcome.bundle.path)["collectors"]] == [
        ("done", "ok"), ("partial", "partial"), ("stuck", "failed")]
    assert [m for m, _r in rig.reported] == ["done", "partial", "stuck"]
    partial.end()
    stuck.end()


def test_step_queued_behind_the_deadline_is_failed_as_not_started(rig: Rig, clock: FakeClock,
                                                                  registry: Registry) -> None:
    stuck = Hangs()
    started_later = threading.Event()
    stand_in(registry, "stuck", stuck)
    stand_in(registry, "later", lambda _ctx: (started_later.set(), base.CollectorResult(base.Status.OK))[1])
    running = rig.start(template(step("stuck"), step("later")), deadline=30, parallelism=1)
    assert stuck.entered.wait(HANG)
    clock.until_waiting(1)
    clock.advance(30)
    later = running.result(HANG).records[1]
    assert (later.status, later.duration_ms) == (S.FAILED, 0)
    assert later.message.startswith("abandoned: not started before the capture deadline of 30 s "
                                    "(capture_timeout_seconds)")
    stuck.end()
    assert not started_later.is_set()


def test_step_ending_after_the_deadline_adds_and_reports_nothing(rig: Rig, clock: FakeClock,
                                                                 registry: Registry) -> None:
    stuck = Hangs()
    stand_in(registry, "stuck", stuck)
    running = rig.start(template(step("stuck")), deadline=10)
    assert stuck.entered.wait(HANG)
    clock.until_waiting(1)
    clock.advance(10)
    outcome = running.result(HANG)
    reported = list(rig.reported)
    assert not outcome.steps_ended.is_set()  # the abandoned step still runs
    stuck.end()
    assert stuck.ended.wait(HANG)  # the step ran on after its capture
    assert outcome.steps_ended.wait(HANG)
    for worker in threading.enumerate():  # and tried to record itself
        if worker.name.startswith("debugcap-step-"):
            worker.join(HANG)
    assert "the capture is over" in str(stuck.late[0])
    assert rig.reported == reported == [("stuck", outcome.records[0])]
    assert outcome.phase is Phase.FAILED
    assert "proc/late.txt" not in members(outcome.bundle.path)


def test_deadline_opens_a_window_that_never_opened(rig: Rig, clock: FakeClock, registry: Registry) -> None:
    cpu = Hangs()  # never sends its request
    goroutine_ran = threading.Event()
    stand_in(registry, "cpu", cpu)
    stand_in(registry, "goroutine", lambda _ctx: (goroutine_ran.set(), base.CollectorResult(base.Status.OK))[1])
    running = rig.start(template(step("cpu", seconds=120, window="profile"), step("goroutine", window="profile")),
                        deadline=45)
    assert cpu.entered.wait(HANG)
    clock.until_waiting(2)  # the capture on its deadline, the goroutine dump on its turn (60 s)
    assert not rig.window_opened.is_set()
    clock.advance(45)
    outcome = running.result(HANG)
    assert rig.window_calls == 1
    assert [(r.name, r.status) for r in outcome.records] == [("cpu", S.FAILED), ("goroutine", S.FAILED)]
    assert "not started before" in outcome.records[1].message
    cpu.end()
    assert not goroutine_ran.is_set()


def test_without_a_deadline_the_capture_waits_for_its_steps(rig: Rig, clock: FakeClock, registry: Registry) -> None:
    slow = Hangs()
    stand_in(registry, "slow", slow)
    running = rig.start(template(step("slow")), deadline=None)
    assert slow.entered.wait(HANG)
    clock.until_waiting(1)
    clock.advance(10**6)
    assert not running.done()
    slow.end()
    outcome = running.result(HANG)
    assert (outcome.records[0].status, outcome.records[0].files) == (S.OK, ("proc/late.txt",))
    assert "proc/late.txt" in members(outcome.bundle.path)


def test_deadline_wait_returns_false_once_the_deadline_passed(clock: FakeClock) -> None:
    deadline = Deadline(5, clock=clock, setting="--deadline")
    never = threading.Event()
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(deadline.wait(never)), daemon=True)
    waiter.start()
    clock.until_waiting(1)
    clock.advance(5)
    waiter.join(HANG)
    assert result == [False]
    done = threading.Event()
    done.set()
    assert Deadline(5, clock=clock, setting="--deadline").wait(done) is True
    assert deadline.abandoned(started=False, kept=False) == (
        "abandoned: not started before the capture deadline of 5 s (--deadline); raise --deadline or shorten "
        "the template")
    assert "deadline of 1000000 s" in Deadline(10**6, clock=clock, setting="x").abandoned(started=True, kept=False)


@pytest.mark.parametrize("seconds", [0, -1.5], ids=["zero", "negative"])
def test_a_deadline_that_is_not_positive_is_a_config_error(seconds: float) -> None:
    with pytest.raises(errors.ConfigError, match="capture_timeout_seconds=.*positive.*None for the automatic one"):
        CaptureSettings(capture_timeout_seconds=seconds)


def test_a_capture_that_ends_in_time_has_no_step_left_running(rig: Rig, registry: Registry) -> None:
    stand_in(registry, "done", writes("proc/done.txt"))
    outcome = rig.start(template(step("done")), deadline=60).result(HANG)
    assert outcome.steps_ended.is_set()


def _expanded(*steps: tuple[str, dict[str, object]]) -> templates.ExpandedTemplate:
    return templates.ExpandedTemplate(name="t", description="", parameters={}, steps=tuple(
        templates.Step(collector=c, params=p) for c, p in steps))


def test_the_automatic_deadline_is_the_templates_own_length_plus_the_slack() -> None:
    leak = _expanded(("pprof-cpu", {"seconds": 30}), ("go-leak-snapshots", {"snapshots": 20, "interval_seconds": 60}))
    automatic = CaptureSettings()
    assert deadline_seconds(automatic, leak, COLLECTORS) == 19 * 60 + 900  # not cut at 15 min
    assert deadline_seconds(automatic, _expanded(("pprof-cpu", {"seconds": 30}), ("ps", {})), COLLECTORS) == 930
    assert deadline_seconds(CaptureSettings(capture_timeout_seconds=60), leak, COLLECTORS) == 60
    assert deadline_seconds(CaptureSettings(capture_slack_seconds=None), leak, COLLECTORS) is None


def test_the_automatic_deadline_counts_profile_defaults_and_survives_bad_parameters() -> None:
    defaulted = _expanded(("pprof-cpu", {}), ("trace", {}))
    assert deadline_seconds(CaptureSettings(), defaulted, COLLECTORS) == 30 + 900  # pprof-cpu's default window
    bad = _expanded(("go-leak-snapshots", {"snapshots": "many", "interval_seconds": "1m"}), ("ps", {}))
    assert deadline_seconds(CaptureSettings(), bad, COLLECTORS) == 2 * 60 + 900  # its step reports the value


def test_a_skipped_step_does_not_size_the_automatic_deadline() -> None:
    """A step the caller skipped (a memory firing's CPU profile, a stopped container's leak
    snapshots) runs for no time, whatever parameters it still carries."""
    skipped = templates.Step(collector="go-leak-snapshots", params={"snapshots": 20, "interval_seconds": 60},
                             skipped="not now")
    heap = templates.Step(collector="pprof-heap", params={})
    cut = templates.ExpandedTemplate(name="t", description="", parameters={}, steps=(heap, skipped))
    assert deadline_seconds(CaptureSettings(), cut, COLLECTORS) == 900  # the slack alone


def test_a_slack_that_is_not_positive_is_a_config_error() -> None:
    with pytest.raises(errors.ConfigError, match="capture_slack_seconds=0"):
        CaptureSettings(capture_slack_seconds=0)
