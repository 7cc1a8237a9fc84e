"""Leader election on a Lease (issue 15 item 3): one replica leads, a standby takes over only once
the lease has stopped changing for its duration, a leader that cannot renew exits before that.

Everything runs on a fake clock that moves only when a loop waits, against an in-memory Lease
store that checks resourceVersions as the API server does: no test depends on how fast the
machine is."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from debugcap import errors
from debugcap.operator import election, leadership, lease_calls
from debugcap.operator.leadership import (
    Action,
    Elector,
    LeaseRecord,
    LeaseSettings,
    Observation,
    claimed,
    decide,
    released,
)

T = TypeVar("T")
EPOCH = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
SETTINGS = LeaseSettings(enabled=True, name="debugcap", namespace="debugcap-system", identity="a",
                         lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)


class FakeClock:
    """Monotonic seconds that move only in :meth:`wait` (or :meth:`advance`); ``on_wait`` runs
    at each wait, before time moves, so a test can act between two tries of a loop."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.on_wait: Callable[[], None] | None = None

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.t)

    def advance(self, seconds: float) -> None:
        self.t += seconds

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        if self.on_wait is not None:
            self.on_wait()
        if stop.is_set():
            return True
        self.t += seconds
        return stop.is_set()

    def within(self, fn: Callable[[], T], seconds: float) -> tuple[bool, T | None]:
        """Runs ``fn`` at once; if it moved the clock past ``seconds`` (a call that "hung",
        :attr:`FakeLeases.hang`), the caller stopped waiting at ``seconds``: the clock says so."""
        start = self.t
        out = fn()
        if self.t - start > seconds:
            self.t = start + seconds
            return False, None
        return True, out


class FakeLeases:
    """One Lease as the API server keeps it: 409 on a create of an existing one, or a replace
    from a stale resourceVersion. ``down``: every call fails as an unreachable server's would;
    ``hang``: every call takes that many seconds of ``clock``; ``refuse``: raised by every call."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0
        self.down = False
        self.clock = clock
        self.hang = 0.0
        self.refuse: errors.KubeError | None = None
        self.timeouts: list[float] = []

    def _check(self, timeout: float) -> None:
        self.timeouts.append(timeout)
        if self.hang and self.clock is not None:
            self.clock.advance(self.hang)
        if self.refuse is not None:
            raise self.refuse
        if self.down:
            raise errors.KubeError("cannot reach the API server at https://10.0.0.1:6443: connection refused")

    def _store(self, record: LeaseRecord) -> LeaseRecord:
        self.version += 1
        self.record = replace(record, resource_version=str(self.version))
        return self.record

    def read(self, timeout: float) -> LeaseRecord | None:
        self._check(timeout)
        return self.record

    def create(self, record: LeaseRecord, timeout: float) -> LeaseRecord:
        self._check(timeout)
        if self.record is not None:
            raise errors.ConflictError("lease debugcap-system/debugcap exists")
        return self._store(record)

    def replace(self, record: LeaseRecord, timeout: float) -> LeaseRecord:
        self._check(timeout)
        if self.record is None or record.resource_version != self.record.resource_version:
            raise errors.ConflictError("lease debugcap-system/debugcap was changed since it was read")
        return self._store(record)


def elector(identity: str, api: FakeLeases, clock: FakeClock, lost: list[str] | None = None) -> Elector:
    return Elector(settings=replace(SETTINGS, identity=identity), api=api, clock=clock,
                   on_lost=(lost if lost is not None else []).append)


# ---------------------------------------------------------------- decide, pure


def test_decide_creates_renews_waits_and_takes() -> None:
    mine = LeaseRecord(holder="a", lease_duration=15)
    theirs = LeaseRecord(holder="b", lease_duration=15)
    assert decide(Observation(), "a", 0) is Action.CREATE
    assert decide(Observation(mine, 0), "a", 100) is Action.RENEW
    assert decide(Observation(theirs, 0), "a", 14.9) is Action.WAIT
    assert decide(Observation(theirs, 0), "a", 15) is Action.TAKE
    assert decide(Observation(replace(theirs, holder=""), 0), "a", 0) is Action.TAKE  # released


def test_expiry_runs_from_when_this_process_saw_the_record_change_not_from_renew_time() -> None:
    # A renewTime an hour old (another node's clock, far behind) is no reason to take the lease:
    # what counts is that the record keeps changing as this process watches it.
    old = LeaseRecord(holder="b", lease_duration=15, renew_time="2026-12-05T06:00:00.000000Z", resource_version="7")
    seen = Observation().seen(old, 100.0)
    assert not seen.expired(114.0)
    again = seen.seen(old, 110.0)  # read again, unchanged: the clock keeps running from 100
    assert again.changed_at == 100.0 and again.expired(115.0)
    renewed = again.seen(replace(old, renew_time="2026-12-05T06:00:02.000000Z", resource_version="8"), 112.0)
    assert renewed.changed_at == 112.0 and not renewed.expired(126.9) and renewed.expired(127.0)


def test_claimed_keeps_acquire_time_on_renewal_and_counts_transitions_on_take_over() -> None:
    first = claimed(None, "a", EPOCH, 15)
    assert (first.holder, first.transitions, first.acquire_time) == ("a", 0, "2026-12-05T07:00:00.000000Z")
    renewed = claimed(first, "a", EPOCH + timedelta(seconds=2), 15)
    assert renewed.acquire_time == first.acquire_time and renewed.renew_time.endswith("07:00:02.000000Z")
    assert renewed.transitions == 0
    taken = claimed(renewed, "b", EPOCH + timedelta(seconds=30), 15)
    assert (taken.holder, taken.transitions, taken.acquire_time) == ("b", 1, "2026-12-05T07:00:30.000000Z")
    after_release = claimed(released(taken, EPOCH), "a", EPOCH, 15)
    assert after_release.transitions == 2  # a take-over of a released lease counts too (client-go's)
    assert released(taken, EPOCH).spec()["holderIdentity"] is None
    assert released(taken, EPOCH).spec()["leaseDurationSeconds"] == 1


# ---------------------------------------------------------------- two replicas


def test_one_leads_the_other_waits_while_the_lease_is_renewed() -> None:
    api, clock = FakeLeases(), FakeClock()
    a, b = elector("a", api, clock), elector("b", api, clock)
    assert a.try_once() and not b.try_once()
    for _ in range(30):  # a minute of renewals every 2 s: b never takes over
        clock.advance(2)
        assert a.try_once()
        assert not b.try_once()
    assert api.record is not None and api.record.holder == "a" and api.record.transitions == 0


def test_the_standby_takes_over_exactly_one_lease_duration_after_the_last_renewal_it_saw() -> None:
    api, clock = FakeLeases(), FakeClock()
    a, b = elector("a", api, clock), elector("b", api, clock)
    assert a.try_once() and not b.try_once()
    died = clock.t  # a's last renewal; b saw it at once
    clock.advance(14.9)
    assert not b.try_once()
    clock.advance(0.1)
    assert b.try_once()
    assert clock.t - died == SETTINGS.lease_duration
    assert api.record is not None and (api.record.holder, api.record.transitions) == ("b", 1)


def test_two_standbys_racing_for_a_free_lease_one_wins() -> None:
    api, clock = FakeLeases(), FakeClock()
    a, b = elector("a", api, clock), elector("b", api, clock)
    api.record = LeaseRecord(holder="", lease_duration=1, resource_version="0")
    # Both read the free lease before either writes: the second write is from a stale version.
    a.observed = a.observed.seen(api.read(1), clock.t)
    b.observed = b.observed.seen(api.read(1), clock.t)
    won_a = a.try_once()
    won_b = b.try_once()
    assert (won_a, won_b) == (True, False)
    assert api.record.holder == "a"


def test_acquire_blocks_until_the_holder_stops_renewing() -> None:
    api, clock = FakeLeases(), FakeClock()
    a, b = elector("a", api, clock), elector("b", api, clock)
    assert a.try_once()
    renewals = iter(range(5))  # a renews five times more, then dies

    def a_renews() -> None:
        if next(renewals, None) is not None:
            assert a.try_once()

    clock.on_wait = a_renews
    start = clock.t
    assert b.acquire()
    assert api.record is not None and api.record.holder == "b"
    # five renewals 2 s apart (the last at +8 s), then a full lease duration of silence
    assert clock.t - start >= 8 + SETTINGS.lease_duration


def test_acquire_returns_false_when_stopped() -> None:
    api, clock = FakeLeases(), FakeClock()
    a, b = elector("a", api, clock), elector("b", api, clock)
    assert a.try_once()
    clock.on_wait = b.stop.set  # SIGTERM while waiting
    assert b.acquire() is False


# ---------------------------------------------------------------- the leader's side


def test_a_leader_that_cannot_renew_gives_up_before_a_standby_may_take_over() -> None:
    api, clock = FakeLeases(), FakeClock()
    lost: list[str] = []
    a, b = elector("a", api, clock, lost), elector("b", api, clock)
    assert a.try_once() and not b.try_once()
    last = clock.t
    api.down = True  # the API server is unreachable from a (and for now from b)
    a.keep()
    assert len(lost) == 1 and "could not renew lease debugcap-system/debugcap" in lost[0]
    gave_up = clock.t - last
    assert SETTINGS.renew_deadline <= gave_up < SETTINGS.lease_duration
    # No call was allowed to run past the deadline: each got at most half of what was left.
    assert max(api.timeouts[2:]) <= SETTINGS.renew_deadline / 2


def test_a_slow_read_does_not_count_against_the_renewal() -> None:
    """An API server coming back answers the read seconds late: the lease is renewed as of the
    write, which a standby sees after it lands, not as of the read."""
    api, clock = FakeLeases(), FakeClock()
    read = api.read

    def slow_read(timeout: float) -> LeaseRecord | None:
        clock.advance(3)
        return read(timeout)

    a = elector("a", api, clock)
    api.read = slow_read  # type: ignore[method-assign]
    assert a.try_once()
    assert a.renewed_at == clock.t and a.observed.changed_at == clock.t


def test_a_leader_that_sees_another_holder_gives_up_at_once() -> None:
    api, clock = FakeLeases(), FakeClock()
    lost: list[str] = []
    a = elector("a", api, clock, lost)
    assert a.try_once()

    def stolen() -> None:  # someone overwrote the lease (by hand, or a standby after a long pause)
        if api.record is not None and api.record.holder == "a" and clock.t > 1005:
            api._store(replace(api.record, holder="b"))

    clock.on_wait = stolen
    a.keep()
    assert lost == ["lease debugcap-system/debugcap is now held by b"]


def test_a_renewal_that_fails_unexpectedly_is_a_loss_not_a_silent_thread_death() -> None:
    api, clock = FakeLeases(), FakeClock()
    lost: list[str] = []
    a = elector("a", api, clock, lost)
    assert a.try_once()

    def broken(timeout: float) -> LeaseRecord | None:
        raise ValueError("leaseDurationSeconds: 'fifteen' is not a number")

    api.read = broken  # type: ignore[method-assign]
    thread = a.start_keeping()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert lost == ["the renewal of lease debugcap-system/debugcap failed: ValueError: leaseDurationSeconds: "
                    "'fifteen' is not a number"]


def test_keep_renews_until_stopped_and_never_reports_a_loss() -> None:
    api, clock = FakeLeases(), FakeClock()
    lost: list[str] = []
    a = elector("a", api, clock, lost)
    assert a.try_once()
    ticks = iter(range(100))
    clock.on_wait = lambda: None if next(ticks, None) is not None else a.stop.set()
    a.keep()
    assert lost == []
    # one renewal per tick, the last just before the stop
    assert api.record is not None and api.record.resource_version == "101"
    assert api.record.renew_time == leadership.micro_time(clock.now())


def test_release_lets_the_standby_take_over_at_its_next_try() -> None:
    api, clock = FakeLeases(), FakeClock()
    a, b = elector("a", api, clock), elector("b", api, clock)
    assert a.try_once() and not b.try_once()
    a.release()
    assert a.stop.is_set()
    assert api.record is not None and api.record.holder == ""
    assert b.try_once()
    assert api.record.holder == "b" and api.record.transitions == 1


def test_release_leaves_a_lease_another_holds_alone() -> None:
    api, clock = FakeLeases(), FakeClock()
    a, b = elector("a", api, clock), elector("b", api, clock)
    assert a.try_once() and not b.try_once()
    clock.advance(20)
    assert b.try_once()
    a.release()
    assert api.record is not None and api.record.holder == "b"


# ---------------------------------------------------------------- settings


def test_settings_are_on_in_a_pod_and_off_on_a_host() -> None:
    assert LeaseSettings.from_env({}).enabled is False
    pod = LeaseSettings.from_env({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "POD_NAMESPACE": "debugcap-system",
                                  "POD_NAME": "debugcap-7d9f-abcde"})
    assert pod.enabled and pod.namespace == "debugcap-system" and pod.name == "debugcap-operator"
    assert pod.identity.startswith("debugcap-7d9f-abcde_")
    assert (pod.lease_duration, pod.renew_deadline, pod.retry_period) == (15.0, 10.0, 2.0)
    # two processes of one pod (a restarted container) never share an identity
    assert LeaseSettings.from_env({"POD_NAME": "p"}).identity != LeaseSettings.from_env({"POD_NAME": "p"}).identity


def test_settings_read_durations_and_refuse_unsafe_orderings() -> None:
    env = {"DEBUGCAP_OPERATOR_LEADER_ELECTION": "true", "DEBUGCAP_OPERATOR_LEASE_NAMESPACE": "ops",
           "DEBUGCAP_OPERATOR_LEASE_NAME": "mine", "DEBUGCAP_OPERATOR_LEASE_DURATION": "30s",
           "DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE": "20s", "DEBUGCAP_OPERATOR_LEASE_RETRY_PERIOD": "5s"}
    got = LeaseSettings.from_env(env)
    assert (got.name, got.namespace, got.lease_duration, got.renew_deadline, got.retry_period) == \
        ("mine", "ops", 30.0, 20.0, 5.0)
    with pytest.raises(errors.ConfigError, match="RENEW_DEADLINE .* must be shorter than"):
        LeaseSettings.from_env({**env, "DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE": "30s"})
    with pytest.raises(errors.ConfigError, match="RETRY_PERIOD .* at most half"):
        LeaseSettings.from_env({**env, "DEBUGCAP_OPERATOR_LEASE_RETRY_PERIOD": "11s"})
    with pytest.raises(errors.ConfigError, match="DEBUGCAP_OPERATOR_LEASE_DURATION.*not a duration"):
        LeaseSettings.from_env({**env, "DEBUGCAP_OPERATOR_LEASE_DURATION": "fifteen"})


def test_settings_without_a_namespace_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leadership, "SA_NAMESPACE_FILE", Path("/nonexistent/namespace"))
    with pytest.raises(errors.ConfigError, match="DEBUGCAP_OPERATOR_LEASE_NAMESPACE"):
        LeaseSettings.from_env({"DEBUGCAP_OPERATOR_LEADER_ELECTION": "true"})


# ---------------------------------------------------------------- the standby's /healthz


def test_the_standby_answers_healthz_naming_the_leader() -> None:
    api, clock = FakeLeases(), FakeClock()
    a, b = elector("a", api, clock), elector("b", api, clock)
    assert a.try_once() and not b.try_once()
    server = election.StandbyServer(b, 0, host="127.0.0.1")
    server.start()
    try:
        port = server.server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            assert resp.status == 200
            assert resp.read() == b"standby: lease debugcap-system/debugcap held by a\n"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert missing.value.code == 404
        missing.value.close()
        clock.advance(61)  # the election loop stopped turning: not alive
        with pytest.raises(urllib.error.HTTPError) as stuck:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert stuck.value.code == 503
        stuck.value.close()
    finally:
        server.stop()


# ---------------------------------------------------------------- the leader's pod label


class PatchRecorder:
    """Stands for Kube.merge_patch; ``fail``: the API server refuses (no RBAC, say), or with
    ``transient`` cannot be reached for now."""

    def __init__(self, fail: bool = False, transient: bool = False) -> None:
        self.calls: list[tuple[str, object]] = []
        self.fail, self.transient = fail, transient

    def merge_patch(self, path: str, body: object, *, timeout: float | None = None) -> object:
        self.calls.append((path, body))
        if self.fail and self.transient:
            raise errors.KubeError("cannot reach the API server at https://10.0.0.1:6443: connection refused")
        if self.fail:
            raise errors.ForbiddenError('pods "op-1" is forbidden: cannot patch resource "pods"')
        return {}


def test_the_leader_labels_its_pod_and_a_starting_replica_removes_the_label() -> None:
    kube = PatchRecorder()
    env = {"POD_NAME": "dc-debugcap-abc", "POD_NAMESPACE": "ops"}
    assert election.mark_pod(kube, leading=True, environ=env)  # type: ignore[arg-type]
    assert election.mark_pod(kube, leading=False, environ=env)  # type: ignore[arg-type]
    assert kube.calls == [("/api/v1/namespaces/ops/pods/dc-debugcap-abc",
                           {"metadata": {"labels": {"debugcap.io/leader": "true"}}}),
                          ("/api/v1/namespaces/ops/pods/dc-debugcap-abc",
                           {"metadata": {"labels": {"debugcap.io/leader": None}}})]


def test_no_pod_label_outside_a_pod_and_a_refused_patch_is_not_fatal() -> None:
    kube = PatchRecorder(fail=True)
    assert not election.mark_pod(kube, leading=True, environ={})  # type: ignore[arg-type]
    assert kube.calls == []
    assert not election.mark_pod(kube, leading=True,  # type: ignore[arg-type]
                                 environ={"POD_NAME": "p", "POD_NAMESPACE": "ops"})
    assert len(kube.calls) == 1


# ---------------------------------------------------------------- review findings (issue 15 item 3)


def test_a_leader_whose_renewal_call_hangs_gives_up_at_the_renew_deadline() -> None:
    """A call blocked on a silent API server (or urllib3 retrying it) does not carry the leader
    past its deadline: it stops waiting for the call there, before a standby may take over."""
    clock = FakeClock()
    api = FakeLeases(clock)
    lost: list[str] = []
    a = elector("a", api, clock, lost)
    assert a.try_once()
    last = clock.t
    api.hang = 60.0  # every call now takes a minute
    a.keep()
    assert len(lost) == 1 and "still blocked at the deadline" in lost[0], lost
    assert clock.t - last == SETTINGS.renew_deadline


def test_the_leader_never_sleeps_past_its_renew_deadline() -> None:
    # retry 3 s, deadline 7 s: tries at +3 and +6 fail; the next wait is the 1 s left, not 3 s.
    api, clock = FakeLeases(), FakeClock()
    lost: list[str] = []
    a = Elector(settings=replace(SETTINGS, renew_deadline=7.0, retry_period=3.0), api=api, clock=clock,
                on_lost=lost.append)
    assert a.try_once()
    last = clock.t
    api.down = True
    a.keep()
    assert lost == ["could not renew lease debugcap-system/debugcap for 7.0s (renew deadline 7s)"]
    assert clock.t - last == 7.0


def test_the_system_clock_stops_waiting_for_a_blocked_call_and_hands_back_errors() -> None:
    gate = threading.Event()
    try:
        assert leadership.SystemClock().within(gate.wait, 0.01) == (False, None)  # still blocked: given up on
    finally:
        gate.set()
    assert leadership.SystemClock().within(lambda: 42, 30) == (True, 42)
    with pytest.raises(ZeroDivisionError):
        leadership.SystemClock().within(lambda: 1 // 0, 30)


def test_the_election_client_makes_one_attempt_per_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib3's default three retries made one Lease read against a silent server last 4x its timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:  # accepts, never answers
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    port = server.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u", "namespace": "ops"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kube = election.kube_from_env()
    try:
        assert kube.configuration.retries is False
        with pytest.raises(errors.KubeError):
            lease_calls.KubeLeases(kube, "ops", "lease").read(0.2)
        # The read has returned, so every connection it made is queued or accepted: one more, of
        # the test's own, is accepted after all of them (the backlog is FIFO). Then count.
        sentinel = socket.create_connection(("127.0.0.1", port), timeout=30)
        deadline = time.monotonic() + 30
        while not any(conn.getpeername() == sentinel.getsockname() for conn in list(accepted)):
            assert time.monotonic() < deadline, "the test's own connection was never accepted"
            time.sleep(0.01)
        sentinel.close()
        assert len(accepted) == 2  # the read's one and the sentinel; the default would have connected four times
    finally:
        kube.close()
        server.close()
        for conn in accepted:
            conn.close()


def test_a_slow_standby_read_dates_what_it_saw_from_when_the_read_returned() -> None:
    """The leader renews while the standby's read waits 12 s on an overloaded API server: that
    renewal is 0.1 s old when the read returns, not 12 s, and the standby waits a full lease
    duration from it (dated from the send, it took over 3.2 s after the renewal)."""
    api, clock = FakeLeases(), FakeClock()
    a = elector("a", api, clock)

    class SlowView:  # b's own connection to the same API server
        slow = 0.0

        def read(self, timeout: float) -> LeaseRecord | None:
            if self.slow:
                clock.advance(self.slow - 0.1)
                assert a.try_once()  # a renews while b's read waits
                clock.advance(0.1)
            return api.read(timeout)

        def create(self, record: LeaseRecord, timeout: float) -> LeaseRecord:
            return api.create(record, timeout)

        def replace(self, record: LeaseRecord, timeout: float) -> LeaseRecord:
            return api.replace(record, timeout)

    view = SlowView()
    b = Elector(settings=replace(SETTINGS, identity="b"), api=view, clock=clock)
    assert a.try_once() and not b.try_once()
    view.slow = 12.0
    assert not b.try_once()
    view.slow = 0.0
    renewed = a.renewed_at
    assert renewed is not None and b.observed.changed_at == renewed + 0.1
    clock.advance(3.1)
    assert not b.try_once()
    clock.t = renewed + SETTINGS.lease_duration  # a is long gone: its deadline was at +10 s
    assert not b.try_once()
    clock.advance(0.1)
    assert b.try_once() and api.record is not None and api.record.holder == "b"


def test_a_lease_the_api_server_refuses_is_fatal_naming_the_rbac_needed() -> None:
    """A 403 retried forever left an operator that never led, captured nothing and said 200."""
    api, clock = FakeLeases(), FakeClock()
    b = elector("b", api, clock)
    waits = iter(range(5))
    clock.on_wait = lambda: None if next(waits, None) is not None else b.stop.set()  # retried: stop, no raise
    api.refuse = errors.ForbiddenError('leases.coordination.k8s.io "debugcap" is forbidden: User '
                                       '"system:serviceaccount:ops:dc" cannot get resource "leases"')
    with pytest.raises(errors.ConfigError, match=r"needs get, create and update on leases\.coordination\.k8s\.io "
                                                 r"\(the chart's Role <release>-leader-election"):
        b.acquire()


def test_a_lease_in_a_namespace_that_does_not_exist_is_fatal() -> None:
    api, clock = FakeLeases(), FakeClock()

    def no_namespace(record: LeaseRecord, timeout: float) -> LeaseRecord:
        raise errors.NotFoundError('namespaces "debugcap-system" not found')

    api.create = no_namespace  # type: ignore[method-assign]
    a = elector("a", api, clock)
    waits = iter(range(5))
    clock.on_wait = lambda: None if next(waits, None) is not None else a.stop.set()
    with pytest.raises(errors.ConfigError, match="create the namespace or set DEBUGCAP_OPERATOR_LEASE_NAMESPACE"):
        a.acquire()


def test_a_leader_refused_its_lease_loses_it() -> None:
    api, clock = FakeLeases(), FakeClock()
    lost: list[str] = []
    a = elector("a", api, clock, lost)
    assert a.try_once()
    api.refuse = errors.ForbiddenError("forbidden")
    a.start_keeping().join(timeout=30)
    assert len(lost) == 1 and "ConfigError" in lost[0] and "leases.coordination.k8s.io" in lost[0]


def test_a_renewal_in_flight_during_release_never_takes_the_lease_back() -> None:
    """/tmp/rev/release_race.py: release() lands while the renewal's read is on its way."""
    api, clock = FakeLeases(), FakeClock()
    lost: list[str] = []
    a = elector("a", api, clock, lost)
    assert a.try_once()
    read = api.read
    hooks = [a.release]

    def read_racing_release(timeout: float) -> LeaseRecord | None:
        if hooks:
            hooks.pop()()  # the main thread's release() runs while this read is in flight
        return read(timeout)

    api.read = read_racing_release  # type: ignore[method-assign]
    a.keep()
    assert api.record is not None and api.record.holder == "" and lost == []


def test_the_leader_never_takes_back_a_lease_someone_else_released() -> None:
    api, clock = FakeLeases(), FakeClock()
    lost: list[str] = []
    a = elector("a", api, clock, lost)
    assert a.try_once()
    assert api.record is not None
    api._store(released(api.record, EPOCH))  # by hand, or a stale process of ours
    ticks = iter(range(10))
    clock.on_wait = lambda: None if next(ticks, None) is not None else a.stop.set()
    a.keep()
    assert lost == ["lease debugcap-system/debugcap is now held by nobody"]
    assert api.record.holder == ""


def test_release_waits_for_the_renewal_thread_before_it_writes() -> None:
    api, clock = FakeLeases(), FakeClock()
    a = elector("a", api, clock)
    assert a.try_once()
    calls: list[str] = []
    in_read, gate = threading.Event(), threading.Event()
    read, replace_ = api.read, api.replace

    def logged_read(timeout: float) -> LeaseRecord | None:
        name = threading.current_thread().name
        calls.append(f"{name} read")
        if name == "lease-renewal" and not gate.is_set():
            in_read.set()
            gate.wait(30)
        got = read(timeout)
        calls.append(f"{name} read returned")
        return got

    def logged_replace(record: LeaseRecord, timeout: float) -> LeaseRecord:
        calls.append(f"{threading.current_thread().name} replace")
        return replace_(record, timeout)

    api.read, api.replace = logged_read, logged_replace  # type: ignore[method-assign]
    a.start_keeping()
    assert in_read.wait(30)
    stopping = threading.Thread(target=a.release, name="main")
    stopping.start()
    assert a.stop.wait(30)
    # Without the join, release() reads and writes now; give it the chance before the renewal returns.
    for _ in range(50):
        if "main read" in calls:
            break
        time.sleep(0.01)
    gate.set()
    stopping.join(30)
    assert calls.index("main read") > calls.index("lease-renewal read returned"), calls
    assert api.record is not None and api.record.holder == ""


def test_a_stop_during_the_winning_try_releases_the_lease_again() -> None:
    """SIGTERM while the write that wins the lease is in flight: nothing would renew it, and a
    standby would wait out its whole duration."""
    api, clock = FakeLeases(), FakeClock()
    b = elector("b", api, clock)
    create = api.create

    def create_then_sigterm(record: LeaseRecord, timeout: float) -> LeaseRecord:
        got = create(record, timeout)
        b.stop.set()
        return got

    api.create = create_then_sigterm  # type: ignore[method-assign]
    assert b.acquire() is False
    assert api.record is not None and api.record.holder == ""


def test_a_stopping_leader_releases_only_once_its_capture_threads_finished() -> None:
    api, clock = FakeLeases(), FakeClock()
    a = elector("a", api, clock)
    assert a.try_once()
    exits: list[int] = []
    waited: list[float] = []

    def busy(timeout: float) -> bool:  # a capture thread still uploading at the end of the wait
        waited.append(timeout)
        return False

    assert election.step_down(a, busy, exit_now=exits.append) is False
    assert exits == [leadership.LOST_EXIT] and waited == [election.DRAIN_TIMEOUT]
    assert api.record is not None and api.record.holder == "a"  # left to expire, not handed over
    # kopf's stop, the drain and the release fit the pod's default grace period, the release with
    # time for its read and write.
    assert election.GRACE_PERIOD == 30.0
    assert election.KOPF_EXIT_ALLOWANCE + election.DRAIN_TIMEOUT + election.RELEASE_MINIMUM <= election.GRACE_PERIOD
    assert election.RELEASE_MINIMUM >= 2 * 2.0  # two Lease calls of a couple of seconds on a loaded API server
    assert election.step_down(a, lambda timeout: True, exit_now=exits.append) is True
    assert api.record.holder == "" and exits == [leadership.LOST_EXIT]


def test_the_runtime_drains_its_capture_threads_within_a_bound() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from debugcap.operator.runtime import Runtime

    gate = threading.Event()
    executor = ThreadPoolExecutor(max_workers=2)
    rt = Runtime(config=None, kube=None, store=None, executor=executor, pods=None)  # type: ignore[arg-type]
    executor.submit(gate.wait, 30)
    executor.shutdown(wait=False, cancel_futures=True)
    try:
        assert rt.drain(0.01) is False
    finally:
        gate.set()
    assert rt.drain(30) is True


def test_the_operator_exits_non_zero_when_its_lease_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from debugcap.operator import main as operator_main

    def refused(settings: LeaseSettings, port: int) -> None:
        raise errors.ConfigError("leader election: lease ops/dc: the API server refused access to it")

    monkeypatch.setenv("DEBUGCAP_OPERATOR_LEADER_ELECTION", "true")
    monkeypatch.setenv("DEBUGCAP_OPERATOR_LEASE_NAMESPACE", "ops")
    monkeypatch.setattr(operator_main.metrics, "serve", lambda port: None)
    monkeypatch.setattr(operator_main.election, "elect", refused)
    monkeypatch.setattr(operator_main.kopf, "run", lambda **_: pytest.fail("kopf must not start"))
    with pytest.raises(SystemExit) as exited:
        operator_main.main()
    assert exited.value.code == 2
    assert "the API server refused access" in capsys.readouterr().err
    assert operator_main.drain(operator_main.kopf.Memo(), 1.0) is True  # kopf never built a runtime


def test_a_standby_retries_removing_a_stale_leader_label_until_it_is_gone() -> None:
    """An ex-leader's restarted container whose first removal failed kept debugcap.io/leader=true,
    and the Alertmanager Service kept sending alerts to a standby."""
    api, clock = FakeLeases(), FakeClock()
    a, b = elector("a", api, clock), elector("b", api, clock)
    assert a.try_once()
    kube = PatchRecorder(fail=True, transient=True)
    unmark = election.Unmark(kube, {"POD_NAME": "dc-debugcap-abc", "POD_NAMESPACE": "ops"})  # type: ignore[arg-type]
    turns = [0]

    def chores() -> None:
        unmark()
        turns[0] += 1
        if turns[0] == 2:
            kube.fail = False  # the patch goes through from the third try on
        elif turns[0] == 5:
            b.stop.set()

    assert b.acquire(between=chores) is False
    assert len(kube.calls) == 3 and not unmark.pending  # failed, failed, removed; then no more calls
    assert kube.calls[-1][1] == {"metadata": {"labels": {"debugcap.io/leader": None}}}
    outside = election.Unmark(kube, {})  # type: ignore[arg-type]
    outside()
    assert len(kube.calls) == 3 and not outside.pending


def test_a_refused_label_removal_is_given_up_on_after_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A 403 cannot succeed on a retry: it warned every retry period, for as long as the standby waited."""
    api, clock = FakeLeases(), FakeClock()
    a, b = elector("a", api, clock), elector("b", api, clock)
    assert a.try_once()
    kube = PatchRecorder(fail=True)
    unmark = election.Unmark(kube, {"POD_NAME": "dc-debugcap-abc", "POD_NAMESPACE": "ops"})  # type: ignore[arg-type]
    turns = [0]

    def chores() -> None:
        unmark()
        turns[0] += 1
        if turns[0] == 5:
            b.stop.set()

    with caplog.at_level("WARNING", logger="debugcap.operator.election"):
        assert b.acquire(between=chores) is False
    assert len(kube.calls) == 1 and not unmark.pending
    warnings = [r.getMessage() for r in caplog.records if r.name == "debugcap.operator.election"]
    assert len(warnings) == 1 and "not tried again" in warnings[0] and "dc-debugcap-abc" in warnings[0]


def test_a_transient_label_removal_failure_warns_once() -> None:
    kube = PatchRecorder(fail=True, transient=True)
    unmark = election.Unmark(kube, {"POD_NAME": "p", "POD_NAMESPACE": "ops"})  # type: ignore[arg-type]
    unmark()
    unmark()
    assert len(kube.calls) == 2 and unmark.pending and unmark.warned


def test_the_standby_chores_run_after_a_try_never_before_one() -> None:
    """A label patch waiting its CALL_TIMEOUT before each try delayed the take-over by as much."""
    api, clock = FakeLeases(), FakeClock()
    b = elector("b", api, clock)
    events: list[str] = []
    read = api.read

    def reading(timeout: float) -> LeaseRecord | None:
        events.append("try")
        return read(timeout)

    api.read = reading  # type: ignore[method-assign]
    a = elector("a", api, clock)
    assert a.try_once()
    events.clear()

    def chores() -> None:
        events.append("chores")
        if len(events) >= 4:
            b.stop.set()

    assert b.acquire(between=chores) is False
    assert events == ["try", "chores", "try", "chores"]
    free = elector("c", FakeLeases(), clock)
    assert free.acquire(between=lambda: pytest.fail("no chore before a winning first try")) is True


def test_the_release_gets_only_what_the_drain_left_of_the_grace_period() -> None:
    """kopf's stop, a 20 s drain and a release of up to 11 s + 2 x 5 s could run past the kill."""
    clock = FakeClock()
    api = FakeLeases(clock)
    a = elector("a", api, clock)
    assert a.try_once()
    api.timeouts.clear()

    def slow_drain(timeout: float) -> bool:  # the last upload ended just before the drain's deadline
        clock.advance(timeout - 1.0)
        return True

    started = clock.t
    assert election.step_down(a, slow_drain, exit_now=lambda code: pytest.fail("released, no exit")) is True
    assert api.record is not None and api.record.holder == ""
    budget = election.GRACE_PERIOD - election.KOPF_EXIT_ALLOWANCE - (election.DRAIN_TIMEOUT - 1.0)
    read, write = api.timeouts
    assert read + write <= budget and write <= budget - read
    assert clock.t - started <= election.GRACE_PERIOD - election.KOPF_EXIT_ALLOWANCE


def test_a_release_with_no_time_left_leaves_the_lease_to_expire() -> None:
    clock = FakeClock()
    api = FakeLeases(clock)
    a = elector("a", api, clock)
    assert a.try_once()
    api.timeouts.clear()
    a.release(within=0.0)
    assert api.timeouts == [] and api.record is not None and api.record.holder == "a"
    a2 = elector("b", api, clock)
    api.hang = 3.0  # a read that takes 3 s of a 4 s budget: the write gets the 1 s left
    api.record = replace(api.record, holder="b")
    a2.observed = Observation(api.record, clock.t)
    a2.release(within=4.0)
    assert api.timeouts == [2.0, 1.0] and api.record.holder == ""
