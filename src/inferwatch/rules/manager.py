"""The rule manager: loads rule files, evaluates groups on schedule, sends alerts.

::

    manager = RuleManager(store, sink=AlertmanagerClient("http://localhost:9093"))
    manager.load(["rules/model-serving.yml"])
    manager.start()          # a thread per group; manager.stop() ends them

As in Prometheus (``rules/manager.go``):

- **Reload.** :meth:`RuleManager.load` replaces the rules atomically. A file that does
  not load raises :class:`~inferwatch.RuleFileError`, is remembered in
  ``last_reload_error``, and changes nothing: the previous rules keep running. Groups
  that stay (same file and name) keep their alerts; series of rules and groups that
  went away get staleness markers.
- **Schedule.** Each group is evaluated every interval at a fixed offset within it,
  taken from a hash of its key, so groups spread out and keep their phase across
  restarts. Missed evaluations are skipped, not caught up.
- **Restart.** On the first load, each group's first evaluation is followed by a
  restore of the ``for`` state of its alerts from ``ALERTS_FOR_STATE`` (within
  ``outage_tolerance_s``), so a restart neither waits a long ``for`` again from the
  start nor loses firing alerts.
- **Sending.** After each evaluation, firing alerts (and alerts resolved in the last
  15 minutes) go to the sink every ``resend_delay_s``, valid for 4 times the larger of
  the resend delay and the group interval; external labels are added when sent.

Tests drive it without threads: :meth:`RuleManager.evaluate_due` (or
:meth:`RuleManager.tick`, with the injected clock) evaluates the groups that are due.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from inferwatch._errors import RuleFileError
from inferwatch.alerting.alert import AlertSink
from inferwatch.promql import Engine

from .alerting import ActiveAlert, AlertStateMachine
from .group import Group, RuleStorage, group_key
from .model import AlertingRule, RuleGroup

log = logging.getLogger("inferwatch.rules")

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1


def _group_hash(file: str, name: str) -> int:
    """A stable 64-bit hash of the group's ``{file=..., name=...}`` label set."""
    h = _FNV_OFFSET
    for part in ("file", file, "name", name):
        for byte in part.encode() + b"\xff":
            h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def eval_timestamp(file: str, name: str, interval_s: float, now: float) -> float:
    """The latest evaluation time of the group at or before ``now`` (Unix seconds)."""
    interval_ms = max(round(interval_s * 1000), 1)
    offset = _group_hash(file, name) % interval_ms
    adjusted = math.floor(now * 1000) - offset
    return (adjusted - adjusted % interval_ms + offset) / 1000


class RuleManager:
    """Evaluates rule groups over ``store`` and sends their alerts to ``sink``.

    ``engine`` evaluates expressions (default ``Engine(store)``). ``clock`` gives Unix
    seconds. ``evaluation_interval_s`` applies to groups without their own interval.
    ``external_labels`` and ``external_url`` are available to templates, and the labels
    are added to alerts when sent. ``resend_delay_s``, ``outage_tolerance_s`` and
    ``for_grace_period_s`` are Prometheus's ``--rules.alert.*`` settings.
    """

    def __init__(
        self,
        store: RuleStorage,
        *,
        engine: Engine | None = None,
        sink: AlertSink | None = None,
        clock: Callable[[], float] = time.time,
        evaluation_interval_s: float = 60.0,
        query_offset_s: float = 0.0,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
        resend_delay_s: float = 60.0,
        outage_tolerance_s: float = 3600.0,
        for_grace_period_s: float = 600.0,
        logger: logging.Logger = log,
    ) -> None:
        if evaluation_interval_s <= 0:
            raise ValueError(f"evaluation_interval_s must be positive, got {evaluation_interval_s}")
        self.store = store
        self.engine = engine if engine is not None else Engine(store)
        self.sink = sink
        self.clock = clock
        self.evaluation_interval_s = evaluation_interval_s
        self.query_offset_s = query_offset_s
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url.rstrip("/")
        self.resend_delay_s = resend_delay_s
        self.outage_tolerance_s = outage_tolerance_s
        self.for_grace_period_s = for_grace_period_s
        self.logger = logger
        #: The error of the last :meth:`load` that failed, None after one that succeeded.
        self.last_reload_error: str | None = None
        #: When rules were last loaded successfully (Unix seconds), 0 if never.
        self.last_reload_success_s = 0.0
        self._groups: dict[str, Group] = {}
        self._next: dict[str, float] = {}
        self._should_restore: set[str] = set()
        self._restored = False
        self._lock = threading.Lock()
        self._group_locks: dict[str, threading.Lock] = {}
        #: One group evaluates at a time: under the GIL, groups evaluated side by side
        #: take no less CPU in all, and each one's evaluation would last as long as all
        #: of them together.
        self._eval_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._running = False
        #: Raised by :meth:`trigger`; group threads wait on it between evaluations.
        self._wake = threading.Condition()
        self._trigger_seq = 0
        #: The timestamp of each group's last evaluation, scheduled or early.
        self._last_eval: dict[str, float] = {}

    # -- loading -------------------------------------------------------------------------

    def load(self, paths: Iterable[str | Path]) -> None:
        """Load the rule files at ``paths`` and replace the running rules with them.

        On a :class:`RuleFileError` the previous rules stay as they were; the error is
        kept in ``last_reload_error`` and raised.
        """
        from inferwatch.rules.file import load_rule_files

        try:
            groups = load_rule_files([str(p) for p in paths])
        except RuleFileError as exc:
            self.last_reload_error = str(exc)
            self.logger.error("Loading rule files failed, keeping the previous rules: %s", exc)
            raise
        self.load_groups(groups)

    def load_groups(self, groups: Sequence[RuleGroup]) -> None:
        """Replace the running rules with ``groups`` (what :meth:`load` does once the
        files have been read)."""
        now = self.clock()
        new: dict[str, Group] = {}
        for spec in groups:
            key = group_key(spec.file, spec.name)
            new[key] = Group(
                spec,
                storage=self.store,
                engine=self.engine,
                interval_s=spec.interval_s or self.evaluation_interval_s,
                query_offset_s=(
                    self.query_offset_s if spec.query_offset_s is None else spec.query_offset_s
                ),
                external_labels=self.external_labels,
                external_url=self.external_url,
                restored=self._restored,
                logger=self.logger,
            )
        with self._lock:
            for key in new:
                self._group_locks.setdefault(key, threading.Lock())
            locks = [self._group_locks[k] for k in sorted(set(new) | set(self._groups))]
        for lock in locks:
            lock.acquire()
        try:
            with self._lock:
                old = self._groups
                for key, group in new.items():
                    if key in old:
                        group.copy_state(old[key])
                        if old[key].interval_s == group.interval_s:
                            continue
                    elif not self._restored:
                        self._should_restore.add(key)
                    self._next[key] = (
                        eval_timestamp(group.file, group.name, group.interval_s, now)
                        + group.interval_s
                    )
                for key, group in old.items():
                    if key not in new:
                        group.mark_all_stale(now)
                        self._next.pop(key, None)
                        self._should_restore.discard(key)
                self._groups = new
                self._restored = True
                self.last_reload_error = None
                self.last_reload_success_s = now
        finally:
            for lock in locks:
                lock.release()
        if self._running:
            self._start_threads()

    # -- evaluation ----------------------------------------------------------------------

    def groups(self) -> list[Group]:
        """The loaded groups, by file then name (as ``/api/v1/rules`` lists them)."""
        with self._lock:
            groups = list(self._groups.values())
        return sorted(groups, key=lambda g: (g.file, g.name))

    def alerts(self) -> list[tuple[AlertingRule, ActiveAlert]]:
        """Every pending or firing alert, with its rule, in group and rule order."""
        out: list[tuple[AlertingRule, ActiveAlert]] = []
        for group in self.groups():
            for i in sorted(group.machines):
                machine: AlertStateMachine = group.machines[i]
                out.extend((machine.rule, alert) for alert in machine.alerts())
        return out

    def next_evaluation(self, group: Group) -> float:
        """When ``group`` is next evaluated (Unix seconds)."""
        with self._lock:
            nxt = self._next.get(group.key)
            if nxt is None:
                nxt = (
                    eval_timestamp(group.file, group.name, group.interval_s, self.clock())
                    + group.interval_s
                )
                self._next[group.key] = nxt
            return nxt

    def evaluate_due(self, now: float) -> list[Group]:
        """Evaluate every group whose evaluation time has come by ``now``; return them.

        A group is evaluated at its latest aligned time at or before ``now``; its first
        evaluation comes at the first aligned time after it was loaded.
        """
        done = []
        for group in self.groups():
            if self._evaluate_if_due(group.key, now):
                done.append(group)
        return done

    def tick(self) -> list[Group]:
        """:meth:`evaluate_due` at the clock's time."""
        return self.evaluate_due(self.clock())

    def _evaluate_if_due(self, key: str, now: float) -> bool:
        with self._lock:
            lock = self._group_locks.get(key)
        if lock is None:
            return False
        with lock:
            with self._lock:
                group = self._groups.get(key)
            if group is None:
                return False
            nxt = self.next_evaluation(group)
            if now < nxt:
                return False
            ts = eval_timestamp(group.file, group.name, group.interval_s, now)
            with self._eval_lock:
                group.eval(ts, sink=self.sink, resend_delay_s=self.resend_delay_s)
            with self._lock:
                self._next[key] = ts + group.interval_s
                self._last_eval[key] = ts
                restore = key in self._should_restore
                self._should_restore.discard(key)
            if restore:
                group.restore_for_state(
                    ts,
                    outage_tolerance_s=self.outage_tolerance_s,
                    grace_period_s=self.for_grace_period_s,
                )
        return True

    def trigger(self) -> None:
        """New samples have landed: evaluate the running groups now rather than at their
        next scheduled time, at most four times per interval. Called by the scrape
        manager after each scrape, so an alert fires within about one scrape of its
        condition becoming true; scheduled evaluations go on as before."""
        with self._wake:
            self._trigger_seq += 1
            self._wake.notify_all()

    def evaluate_early(self, key: str, now: float) -> bool:
        """Evaluate group ``key`` at ``now`` (not an aligned time) if it has had its
        first scheduled evaluation and the last one is a quarter interval old, and four
        times as old as that evaluation took (so early evaluations of a costly group take
        at most a quarter of a core)."""
        with self._lock:
            lock = self._group_locks.get(key)
        if lock is None:
            return False
        with lock:
            with self._lock:
                group = self._groups.get(key)
                last = self._last_eval.get(key)
                pending_restore = key in self._should_restore
            if group is None or last is None or pending_restore:
                return False
            since = now - last
            if since < max(group.interval_s / 4, 4 * group.evaluation_time_s):
                return False
            if now >= self.next_evaluation(group):
                return False
            with self._eval_lock:
                group.eval(now, sink=self.sink, resend_delay_s=self.resend_delay_s)
            with self._lock:
                self._last_eval[key] = now
        return True

    # -- threads -------------------------------------------------------------------------

    def start(self) -> None:
        """Evaluate every group in its own thread until :meth:`stop`."""
        self._stop.clear()
        self._running = True
        self._start_threads()

    def _start_threads(self) -> None:
        with self._lock:
            keys = [k for k in self._groups if k not in self._threads]
            for key in keys:
                thread = threading.Thread(
                    target=self._run, args=(key,), name=f"inferwatch-rules-{key}", daemon=True
                )
                self._threads[key] = thread
                thread.start()

    def _run(self, key: str) -> None:
        seen = self._trigger_seq
        try:
            while not self._stop.is_set():
                with self._lock:
                    group = self._groups.get(key)
                if group is None:
                    return
                now = self.clock()
                wait = self.next_evaluation(group) - now
                if wait > 0:
                    # Short waits keep a reload's new interval or removal noticed.
                    with self._wake:
                        if self._trigger_seq == seen and not self._stop.is_set():
                            self._wake.wait(min(wait, 1.0))
                        seq = self._trigger_seq
                    if seq != seen:
                        seen = seq
                        try:
                            self.evaluate_early(key, self.clock())
                        except Exception:
                            self.logger.exception("Evaluating group %s failed", key)
                    continue
                try:
                    self._evaluate_if_due(key, now)
                except Exception:
                    self.logger.exception("Evaluating group %s failed", key)
        finally:
            with self._lock:
                if self._threads.get(key) is threading.current_thread():
                    del self._threads[key]

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the evaluation threads (alert state is kept, nothing is marked stale)."""
        self._running = False
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)

    def __enter__(self) -> RuleManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["RuleManager", "eval_timestamp"]
