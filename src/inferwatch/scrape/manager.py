"""The scrape manager: every target on its own schedule, plus the in-process registry.

::

    manager = ScrapeManager(store, parse_scrape_configs(cfg["scrape_configs"]),
                            registry=default_registry())
    manager.start()
    ...
    manager.stop()

Each target runs in its own thread, so a target that hangs until ``scrape_timeout``
delays nobody else. Targets start at a stable offset within their interval (a hash of
the target), spreading scrapes as Prometheus does. The in-process :class:`Registry` is
collected straight into the store every ``registry_interval`` seconds, with no HTTP
round trip, as the target ``job="inferwatch", instance="local"`` (with ``up`` and the
other synthetic series like any target).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING

from inferwatch.scrape.config import ScrapeConfig
from inferwatch.scrape.parse import ParsedSample, ScrapeError, samples_from_families
from inferwatch.scrape.target import (
    ScrapeResult,
    Target,
    TargetStatus,
    scrape_once,
    store_scrape,
    targets_from_config,
)
from inferwatch.tsdb.series import Appender

if TYPE_CHECKING:
    import httpx

    from inferwatch.sdk.registry import Registry

log = logging.getLogger("inferwatch.scrape")

#: The target labels of the in-process registry's series.
LOCAL_JOB = "inferwatch"
LOCAL_INSTANCE = "local"
LOCAL_URL = "inprocess://registry"


class ScrapeManager:
    """Collects remote targets and the in-process registry into ``appender``.

    ``configs``: the scrape jobs (see :func:`~inferwatch.scrape.parse_scrape_configs`).
    ``clock``: seconds since the epoch, for sample timestamps (pass a
    :class:`~inferwatch.testing.FakeClock` in tests and drive rounds with
    :meth:`scrape_all_now`). ``registry``: collected every ``registry_interval``
    seconds; ``None`` collects no in-process metrics. ``on_scrape`` is called after each
    scheduled scrape has been stored (the rule manager uses it to evaluate on new data);
    it runs in the target's thread and its exceptions are logged, never raised.
    """

    def __init__(
        self,
        appender: Appender,
        configs: Sequence[ScrapeConfig] = (),
        *,
        clock: Callable[[], float] = time.time,
        registry: Registry | None = None,
        registry_interval: float = 5.0,
        on_scrape: Callable[[Target, ScrapeResult], None] | None = None,
    ) -> None:
        if registry_interval <= 0:
            from inferwatch._errors import ConfigError

            raise ConfigError("registry_interval must be positive", field="registry_interval")
        self.appender = appender
        self.configs = tuple(configs)
        self._clock = clock
        self._registry = registry
        self._on_scrape = on_scrape
        self._targets = [t for config in self.configs for t in targets_from_config(config)]
        self._local: Target | None = None
        if registry is not None:
            local_config = ScrapeConfig(
                job_name=LOCAL_JOB,
                scrape_interval=registry_interval,
                scrape_timeout=registry_interval,
            )
            self._local = Target(
                local_config, url=LOCAL_URL, labels={"job": LOCAL_JOB, "instance": LOCAL_INSTANCE}
            )
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start one background thread per target (and one for the registry)."""
        if self._running:
            raise RuntimeError("ScrapeManager is already running")
        self._running = True
        self._stop.clear()
        jobs: list[tuple[Target, Callable[[], ScrapeResult]]] = [
            (target, functools.partial(self._scrape_target, target)) for target in self._targets
        ]
        if self._local is not None:
            jobs.append((self._local, lambda: self.collect_registry(self._now_ms())))
        for target, scrape in jobs:
            thread = threading.Thread(
                target=self._run,
                args=(target, scrape),
                name=f"inferwatch-scrape-{target.job}-{target.labels.get('instance', '')}",
                daemon=True,
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the background threads, wait for them, and close the HTTP client.

        A scrape in flight finishes first (it is bounded by its ``scrape_timeout``).
        """
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        self._running = False
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> ScrapeManager:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scraping ----------------------------------------------------------------------

    def scrape_all_now(self) -> list[ScrapeResult]:
        """Scrape every target once, concurrently, and collect the registry; wait for all.

        The results are in the order of :meth:`targets`. Meant for tests (with a fake
        clock) and for a first round before :meth:`start`.
        """
        now_ms = self._now_ms()
        results: list[ScrapeResult] = []
        if self._local is not None:
            results.append(self.collect_registry(now_ms))
        if self._targets:
            client = self._http()
            workers = min(32, len(self._targets))
            with ThreadPoolExecutor(workers, thread_name_prefix="inferwatch-scrape") as pool:
                results.extend(
                    pool.map(lambda t: scrape_once(t, self.appender, client, now_ms), self._targets)
                )
        return results

    def collect_registry(self, now_ms: int) -> ScrapeResult:
        """Collect the in-process registry into the appender at ``now_ms``."""
        if self._local is None or self._registry is None:
            raise RuntimeError("ScrapeManager was created without a registry")
        target = self._local
        with target.lock:
            start = time.perf_counter()
            samples: list[ParsedSample] | None = None
            error = ""
            try:
                samples = samples_from_families(self._registry.collect())
            except Exception as exc:
                error = str(ScrapeError(f"collecting the in-process registry failed: {exc!r}"))
            duration = time.perf_counter() - start
            return store_scrape(target, self.appender, samples, error, now_ms, duration)

    def targets(self) -> list[TargetStatus]:
        """The status of every target, the in-process registry first when there is one."""
        local = [self._local] if self._local is not None else []
        return [target.status() for target in [*local, *self._targets]]

    # -- internals ---------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _scrape_target(self, target: Target) -> ScrapeResult:
        return scrape_once(target, self.appender, self._http(), self._now_ms())

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                import httpx

                # trust_env=False: like Prometheus, ignore HTTP_PROXY unless configured.
                self._client = httpx.Client(follow_redirects=True, trust_env=False)
            return self._client

    def _run(self, target: Target, scrape: Callable[[], ScrapeResult]) -> None:
        interval = target.config.scrape_interval
        delay = (target.offset() - self._clock() % interval) % interval
        next_run = time.monotonic() + delay
        while not self._stop.wait(max(0.0, next_run - time.monotonic())):
            try:
                result = scrape()
                if self._on_scrape is not None:
                    self._on_scrape(target, result)
            except Exception:  # never let one target's bug end its loop
                log.exception("scrape of %r failed unexpectedly", target)
            next_run += interval
            behind = time.monotonic() - next_run
            if behind > 0:  # skip the ticks missed while a slow append ran
                next_run += math.ceil(behind / interval) * interval
