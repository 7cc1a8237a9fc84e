"""Leader election on a ``coordination.k8s.io/v1`` Lease: of several operator replicas, one captures.

:func:`debugcap.operator.main.main` calls :meth:`Elector.acquire` (through
:func:`debugcap.operator.election.elect`) before ``kopf.run``: a standby
blocks there, never starting kopf, until it holds the Lease; the leader renews it from a thread
(:meth:`Elector.keep`) and, when it cannot renew within ``renew_deadline``, ends the process at
once (:func:`lose`) so it never captures, writes a status or uploads after another replica may
have taken over. client-go's ``leaderelection`` pattern, with its defaults (15 s / 10 s / 2 s).

Why a Lease and not kopf's peering: peering pauses an operator only after it has started and seen
a peer (both run start-up handlers, and for a moment both may handle the same object), needs the
``KopfPeering`` CRDs, and pauses *every* operator of equal priority; and a paused kopf still runs
nothing for objects it finds, so recovery of orphaned captures would wait for the unpause. With a
Lease the standby has run nothing at all: when it takes over it starts kopf like a fresh operator
and closes the captures the dead leader left ``Running`` (:mod:`~debugcap.operator.recovery`),
exactly as after a restart; none is run twice, because a ``Running`` capture is never re-run.

Expiry is judged on this process's monotonic clock, never on the ``renewTime`` another host wrote
(clocks differ between nodes): a lease is expired when its record has not changed for
``leaseDurationSeconds`` since this process saw it change (client-go's ``observedTime``). The
leader gives up ``renew_deadline`` after its last successful renewal, which is before any other
replica can see the lease expired (``renew_deadline < lease_duration``, checked). A leader that
stops cleanly (SIGTERM, a rolling update) releases the lease, so the next one takes over at once.

:func:`decide` is pure and unit-tested on a fake clock; :class:`Elector` does the reads and writes
through :mod:`~debugcap.operator.lease_calls` (its clock and the Lease calls, on
:class:`debugcap.kube.client.Kube` like the rest of the operator); the process around
it (the standby's /healthz, the leader's pod label) is :mod:`~debugcap.operator.election`. Settings:
:class:`LeaseSettings` (``DEBUGCAP_OPERATOR_LEADER_ELECTION``, ``_LEASE_*``; docs/operator.md).
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from debugcap import errors
from debugcap.operator.config import _switch, parse_duration
from debugcap.operator.lease_calls import ElectionClock, LeaseApi, LeaseRecord, SystemClock

logger = logging.getLogger(__name__)

DEFAULT_NAME: Final = "debugcap-operator"
SA_NAMESPACE_FILE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# The exit status of a leader that lost its lease: the kubelet restarts the container, which then
# waits as a standby. Not 0: a lost lease is worth a restart count and a log line, not silence.
LOST_EXIT: Final = 3
CALL_TIMEOUT: Final = 5.0  # seconds for one Lease call: a dead socket must not hold the loops
# Of what is left before the renew deadline, kept for the write when the read is given its time.
WRITE_MINIMUM: Final = 0.5
# The shortest time between two renewal tries after a failure: one that failed at once (connection
# refused) must not spin; one that took at least this long (a timeout) is retried at once.
RETRY_PAUSE: Final = 0.1
LEASE_RBAC: Final = ("get, create and update on leases.coordination.k8s.io (the chart's Role "
                     "<release>-leader-election grants them)")


@dataclass(frozen=True)
class LeaseSettings:
    """How the replicas elect their leader (``DEBUGCAP_OPERATOR_LEADER_ELECTION`` and
    ``DEBUGCAP_OPERATOR_LEASE_*``): client-go's defaults, which Kubernetes' own controllers use."""

    enabled: bool = False
    name: str = DEFAULT_NAME
    namespace: str = ""
    identity: str = ""
    lease_duration: float = 15.0  # how long a standby waits on a lease that stopped changing
    renew_deadline: float = 10.0  # how long the leader keeps trying to renew before it exits
    retry_period: float = 2.0  # between two tries, to acquire as to renew

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LeaseSettings:
        """From the environment. On by default in a pod (``KUBERNETES_SERVICE_HOST``), where the
        chart may run two replicas; off elsewhere unless ``DEBUGCAP_OPERATOR_LEADER_ELECTION=true``."""
        env = os.environ if environ is None else environ
        enabled = _switch(env, "DEBUGCAP_OPERATOR_LEADER_ELECTION", bool(env.get("KUBERNETES_SERVICE_HOST")))

        def seconds(name: str, default: float) -> float:
            raw = env.get(name, "").strip()
            return parse_duration(raw, field=name).total_seconds() if raw else default

        settings = cls(enabled=enabled, name=env.get("DEBUGCAP_OPERATOR_LEASE_NAME", "").strip() or DEFAULT_NAME,
                       namespace=env.get("DEBUGCAP_OPERATOR_LEASE_NAMESPACE", "").strip() or _own_namespace(env),
                       identity=_identity(env),
                       lease_duration=seconds("DEBUGCAP_OPERATOR_LEASE_DURATION", cls.lease_duration),
                       renew_deadline=seconds("DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE", cls.renew_deadline),
                       retry_period=seconds("DEBUGCAP_OPERATOR_LEASE_RETRY_PERIOD", cls.retry_period))
        if enabled:
            settings.check()
        return settings

    def check(self) -> None:
        """The orderings the election's safety rests on, naming the variables to change."""
        if not self.namespace:
            raise errors.ConfigError(
                "leader election is on but no namespace holds its Lease: set DEBUGCAP_OPERATOR_LEASE_NAMESPACE "
                "(the chart sets it to the release's namespace), or DEBUGCAP_OPERATOR_LEADER_ELECTION=false "
                "to run a single replica without one")
        if not self.renew_deadline < self.lease_duration:
            raise errors.ConfigError(
                f"DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE ({self.renew_deadline:g}s) must be shorter than "
                f"DEBUGCAP_OPERATOR_LEASE_DURATION ({self.lease_duration:g}s): a leader must give up before a "
                "standby may take over, or both capture")
        if not self.retry_period * 2 <= self.renew_deadline:
            raise errors.ConfigError(
                f"DEBUGCAP_OPERATOR_LEASE_RETRY_PERIOD ({self.retry_period:g}s) must be at most half of "
                f"DEBUGCAP_OPERATOR_LEASE_RENEW_DEADLINE ({self.renew_deadline:g}s): one slow renewal must not "
                "cost the leader its lease")


def _own_namespace(env: Mapping[str, str]) -> str:
    """The pod's namespace: the chart's downward-API ``POD_NAMESPACE``, else the service account's."""
    if env.get("POD_NAMESPACE", "").strip():
        return env["POD_NAMESPACE"].strip()
    try:
        return SA_NAMESPACE_FILE.read_text().strip()
    except OSError:
        return ""


def _identity(env: Mapping[str, str]) -> str:
    """Who holds the lease, as people read it: the pod's name (``POD_NAME``) or the host's, plus a
    token unique to this process, so a restarted container never takes its predecessor's lease for
    its own (client-go's ``hostname_uuid``)."""
    base = env.get("POD_NAME", "").strip() or socket.gethostname()
    return f"{base}_{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- the pure part


@dataclass(frozen=True)
class Observation:
    """A lease as this process last saw it, and when it last saw it change (monotonic seconds)."""

    record: LeaseRecord | None = None
    changed_at: float = 0.0

    def seen(self, record: LeaseRecord | None, now: float) -> Observation:
        if record is not None and record.same_as(self.record):
            return replace(self, record=record)
        return Observation(record=record, changed_at=now)

    def expired(self, now: float) -> bool:
        """Free to take: nobody holds it, or it has not changed for its own duration."""
        rec = self.record
        return rec is None or not rec.holder or now >= self.changed_at + rec.lease_duration


class Action(enum.Enum):
    CREATE = "create"  # no Lease yet
    RENEW = "renew"  # ours: write a new renewTime
    TAKE = "take"  # another's, expired or released
    WAIT = "wait"  # another's, alive


def decide(observed: Observation, me: str, now: float) -> Action:
    if observed.record is None:
        return Action.CREATE
    if observed.record.holder == me:
        return Action.RENEW
    return Action.TAKE if observed.expired(now) else Action.WAIT


def micro_time(at: datetime) -> str:
    """A Lease's ``MicroTime``: RFC 3339 with microseconds, in UTC."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claimed(current: LeaseRecord | None, me: str, at: datetime, duration: float) -> LeaseRecord:
    """The record that says ``me`` holds the lease from ``at``: a renewal keeps ``acquireTime``
    and the transition count; a take-over sets them (client-go's ``leaseTransitions``)."""
    stamp = micro_time(at)
    if current is not None and current.holder == me:
        return replace(current, lease_duration=duration, renew_time=stamp)
    transitions = 0 if current is None else current.transitions + 1  # from a released one too, as client-go
    return LeaseRecord(holder=me, lease_duration=duration, acquire_time=stamp, renew_time=stamp,
                       transitions=transitions, resource_version="" if current is None else current.resource_version)


def released(current: LeaseRecord, at: datetime) -> LeaseRecord:
    """client-go's release: no holder, a one-second lease, so a standby takes it at its next try."""
    return replace(current, holder="", lease_duration=1.0, renew_time=micro_time(at))


# ---------------------------------------------------------------- reads, writes, time


def lose(message: str) -> None:
    """End the process now: no clean-up handler, no thread, may write after the lease is lost."""
    logger.critical("%s; exiting so that only the new leader captures", message)
    logging.shutdown()
    os._exit(LOST_EXIT)


@dataclass
class Elector:
    """One replica's side of the election (see the module's doc)."""

    settings: LeaseSettings
    api: LeaseApi
    clock: ElectionClock = field(default_factory=SystemClock)
    on_lost: Callable[[str], None] = lose
    observed: Observation = field(default_factory=Observation)
    renewed_at: float | None = None  # monotonic time of the last write that said we hold it
    last_try: float = 0.0  # for the standby's liveness: the loop is turning
    stop: threading.Event = field(default_factory=threading.Event)
    keeper: threading.Thread | None = None  # the renewal thread, once leading

    @property
    def me(self) -> str:
        return self.settings.identity

    @property
    def holder(self) -> str:
        return self.observed.record.holder if self.observed.record else ""

    def try_once(self, timeout: float = CALL_TIMEOUT, renew_only: bool = False, until: float | None = None) -> bool:
        """One read and, when the lease is ours or free, one write, each given ``timeout`` seconds
        (the write at most what is left until ``until``, a monotonic deadline: none left, no write);
        whether we hold it now. ``renew_only``: write only if the lease is still ours (the leader's
        renewals: a lease it sees released or taken is lost, never taken back). A failed call is a
        failed try, never an exception, except a refused one (:meth:`_unusable`): the loops decide
        what failure means."""
        self.last_try = self.clock.monotonic()
        action: Action | None = None
        try:
            record = self.api.read(timeout)
            # Seen as of when the read came back (client-go's observedTime, taken after the Get):
            # dated from before the read was sent, a record the holder renewed while a slow read
            # waited would look older than it is, and a standby would take over early.
            now = self.clock.monotonic()
            self.observed = self.observed.seen(record, now)
            action = decide(self.observed, self.me, now)
            if action is Action.WAIT or (renew_only and action is not Action.RENEW) or self.stop.is_set():
                return False  # stopped: release() may have handed the lease over while this read ran
            record = claimed(self.observed.record, self.me, self.clock.now(), self.settings.lease_duration)
            # Renewed as of the moment the write is sent: it lands later, so a standby's clock for
            # it starts later too and this side's deadline runs out first. Not the moment of the
            # read: a read that took seconds (an API server coming back) would eat the deadline.
            sending = self.clock.monotonic()
            write_timeout = timeout if until is None else min(timeout, until - sending)
            if write_timeout <= 0:
                return False
            written = (self.api.create(record, write_timeout) if action is Action.CREATE
                       else self.api.replace(record, write_timeout))
        except errors.ConflictError:
            return False  # another replica wrote first; the next read shows who
        except errors.ForbiddenError as exc:
            raise self._unusable(f"the API server refused access to it ({errors.shorten(str(exc))}): "
                                 f"the operator's service account needs {LEASE_RBAC}") from exc
        except errors.NotFoundError as exc:
            if action is Action.CREATE:  # no namespace to create it in
                raise self._unusable(f"it cannot be created ({errors.shorten(str(exc))}): create the namespace "
                                     "or set DEBUGCAP_OPERATOR_LEASE_NAMESPACE to one that exists") from exc
            return False  # deleted between the read and the write: the next read shows it gone
        except errors.KubeError as exc:
            logger.warning("lease %s/%s: %s", self.settings.namespace, self.settings.name, errors.shorten(str(exc)))
            return False
        self.observed = Observation(record=written, changed_at=sending)
        self.renewed_at = sending
        if action is Action.TAKE:
            logger.info("took over lease %s/%s as %s (transition %d)", self.settings.namespace, self.settings.name,
                        self.me, written.transitions)
        return True

    def _unusable(self, why: str) -> errors.ConfigError:
        """Fatal: retrying a refused Lease forever would leave a replica that never leads, looks
        healthy and captures nothing."""
        return errors.ConfigError(
            f"leader election: lease {self.settings.namespace}/{self.settings.name}: {why}; or set "
            "DEBUGCAP_OPERATOR_LEADER_ELECTION=false (leaderElection.enabled=false) to run one replica without it")

    def acquire(self, between: Callable[[], None] | None = None) -> bool:
        """Block until this replica holds the lease (True) or :attr:`stop` is set (False; a lease
        won as the stop came is released again, since nothing will renew it). ``between``: run
        after each failed try (the standby's own chores; after, so they never delay a take-over)."""
        logged = ""
        while not self.stop.is_set():
            if self.try_once():
                if self.stop.is_set():  # SIGTERM while the winning write was in flight
                    self.release()
                    return False
                logger.info("leading: lease %s/%s held by %s", self.settings.namespace, self.settings.name, self.me)
                return True
            if self.holder and self.holder != logged:
                logged = self.holder
                logger.info("standby: lease %s/%s is held by %s; waiting to take over", self.settings.namespace,
                            self.settings.name, self.holder)
            if between is not None:
                between()
            if self.clock.wait(self.stop, self.settings.retry_period):
                break
        return False

    def _left(self) -> float:
        """Seconds until the renew deadline, from the last write that said we hold the lease."""
        return (self.renewed_at or 0.0) + self.settings.renew_deadline - self.clock.monotonic()

    def keep(self) -> None:
        """Renew every ``retry_period`` (after a failed try, again at once) until :attr:`stop`;
        call :attr:`on_lost` once the lease
        was not renewed for ``renew_deadline``, or is no longer ours. The deadline is a hard limit:
        no wait runs past it, and a try still blocked there is given up on (:meth:`ElectionClock.within`)."""
        deadline = self.settings.renew_deadline
        name = f"{self.settings.namespace}/{self.settings.name}"
        pause = self.settings.retry_period
        while True:
            if self.clock.wait(self.stop, max(0.0, min(pause, self._left()))):
                return
            left = self._left()
            if left <= 0:
                self.on_lost(f"could not renew lease {name} for {deadline - left:.1f}s (renew deadline {deadline:g}s)")
                return
            # The read may use all that is left but a little for the write (a stalled API server
            # often answers late rather than never), the write what the read left; within() stops
            # waiting at the deadline however long they block.
            started = self.clock.monotonic()
            done, held = self.clock.within(
                functools.partial(self.try_once, timeout=min(CALL_TIMEOUT, max(left - WRITE_MINIMUM, left / 2)),
                                  renew_only=True, until=started + left), left)
            if self.stop.is_set():
                return  # released meanwhile (a clean stop): not a loss
            if not done:
                self.on_lost(f"could not renew lease {name} for {deadline - self._left():.1f}s (renew deadline "
                             f"{deadline:g}s): a call to the API server was still blocked at the deadline")
                return
            # After a failure, the next try at once (what is left is the budget, not retry_period).
            pause = self.settings.retry_period if held else max(0.0, RETRY_PAUSE - (self.clock.monotonic() - started))
            if held:
                continue
            if self.holder != self.me:  # taken, released by someone else, or deleted: never taken back
                self.on_lost(f"lease {name} is now held by {self.holder or 'nobody'}")
                return

    def keep_or_lose(self) -> None:
        """:meth:`keep`, and a loss if it ever fails: a renewal thread dead of a bug would leave
        a leader running whose lease a standby takes 15 s later, and two would capture."""
        try:
            self.keep()
        except Exception as exc:  # noqa: BLE001 - whatever it was, this process must stop leading
            self.on_lost(f"the renewal of lease {self.settings.namespace}/{self.settings.name} failed: "
                         f"{type(exc).__name__}: {errors.shorten(str(exc))}")

    def start_keeping(self) -> threading.Thread:
        self.keeper = threading.Thread(target=self.keep_or_lose, name="lease-renewal", daemon=True)
        self.keeper.start()
        return self.keeper

    def release(self, within: float | None = None) -> None:
        """Stop renewing and hand the lease back if it is still ours; quietly, at shutdown. The
        renewal thread is stopped first: a renewal in flight would otherwise write over the
        release (a 409, or a read from before it) or, reading it, fight over the lease.
        ``within``: seconds all of it may take (the rest of the pod's grace period); when they
        run out the lease is left to expire."""
        self.stop.set()
        name = f"{self.settings.namespace}/{self.settings.name}"
        end = self.clock.monotonic() + (self.settings.renew_deadline + 1.0 + 2 * CALL_TIMEOUT
                                        if within is None else within)
        keeper = self.keeper
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(max(0.0, min(self.settings.renew_deadline + 1.0,  # a try gives up at the deadline
                                     end - self.clock.monotonic())))
            if keeper.is_alive():
                logger.warning("not releasing lease %s: its renewal is still blocked (it expires in %gs)", name,
                               self.settings.lease_duration)
                return
        record = self.observed.record
        if record is None or record.holder != self.me:
            return
        try:
            left = end - self.clock.monotonic()
            if left <= 0:
                raise errors.KubeError("no time left in the grace period")
            current = self.api.read(min(CALL_TIMEOUT, left / 2))
            left = end - self.clock.monotonic()
            if current is not None and current.holder == self.me:
                if left <= 0:
                    raise errors.KubeError("no time left in the grace period after the read")
                self.api.replace(released(current, self.clock.now()), min(CALL_TIMEOUT, left))
                logger.info("released lease %s", name)
        except errors.KubeError as exc:  # it expires on its own
            logger.warning("could not release lease %s (it expires in %gs): %s", name,
                           self.settings.lease_duration, errors.shorten(str(exc)))

    def alive(self, now: float | None = None) -> bool:
        """For the standby's /healthz: its loop tried within the last minute (or ten tries)."""
        now = self.clock.monotonic() if now is None else now
        return now - self.last_try <= max(60.0, 10 * self.settings.retry_period)
