"""Run a :class:`LoadSpec` in this process or in several, and build the report.

With ``workers > 1`` each worker is a fresh process (``spawn``) running its own event
loop with its share of the connections and, in open loop, every ``workers``-th request
of one common schedule; all start at the same moment of the system's monotonic clock.
Their tallies merge exactly into one report.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from inferwatch.loadtest.connection import error_kind
from inferwatch.loadtest.engine import ProgressCallback, run_engine
from inferwatch.loadtest.report import LoadReport, build_report
from inferwatch.loadtest.spec import LoadSpec, TargetUnreachable
from inferwatch.loadtest.tally import Tally

_NS = 1_000_000_000
#: Time between the go signal and the common start, for every worker to connect.
_START_MARGIN_NS = _NS // 4
_WORKER_START_TIMEOUT = 60.0


def check_reachable(spec: LoadSpec) -> None:
    """Raise :class:`TargetUnreachable` unless a TCP connection to the URL's host opens."""
    target = spec.target
    try:
        with socket.create_connection((target.host, target.port), timeout=min(spec.timeout, 10)):
            pass
    except OSError as exc:
        reason = exc.strerror or error_kind(exc)
        if isinstance(exc, socket.gaierror):
            reason = f"cannot resolve host {target.host!r}"
        elif isinstance(exc, TimeoutError):
            reason = "no answer to connect"
        raise TargetUnreachable(
            f"cannot connect to {target.address} for {spec.url}: {reason}"
        ) from exc


def run_load(spec: LoadSpec, on_progress: ProgressCallback | None = None) -> LoadReport:
    """Run the load test ``spec`` and return its report.

    ``on_progress(finished, errors)`` is called a few times a second with the number
    of requests finished so far (warm-up included) and how many of them failed or got
    a status of 400 or above. Raises :class:`TargetUnreachable` when the URL cannot be
    reached at the start.
    """
    check_reachable(spec)
    if spec.workers == 1:
        start = time.monotonic_ns() + _NS // 20
        tally = run_engine(spec, start, on_progress=on_progress)
    else:
        tally = _run_workers(spec, on_progress)
    return build_report(spec, tally)


def _run_workers(spec: LoadSpec, on_progress: ProgressCallback | None) -> Tally:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    shares = spec.workers
    counters = ctx.Array("q", 2 * shares, lock=False)
    pipes = []
    processes = []
    for share in range(shares):
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(
            target=_worker,
            args=(spec, share, shares, counters, child_end),
            name=f"inferwatch-loadtest-{share}",
            daemon=True,
        )
        proc.start()
        child_end.close()
        pipes.append(parent_end)
        processes.append(proc)

    def progress() -> None:
        if on_progress is not None:
            on_progress(sum(counters[0::2]), sum(counters[1::2]))

    try:
        for pipe in pipes:
            if not pipe.poll(_WORKER_START_TIMEOUT):
                raise RuntimeError("a load test worker did not start")
            _check(pipe.recv())
        start = time.monotonic_ns() + _START_MARGIN_NS
        for pipe in pipes:
            pipe.send(start)
        tally = Tally()
        for pipe in pipes:
            while not pipe.poll(0.2):
                progress()
            tally.merge(Tally.from_dict(_check(pipe.recv())))
        progress()
        return tally
    finally:
        for proc in processes:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _check(message: tuple[str, Any]) -> Any:
    kind, payload = message
    if kind == "error":
        raise RuntimeError(f"a load test worker failed: {payload}")
    return payload


def _worker(spec: LoadSpec, share: int, shares: int, counters: Any, pipe: Any) -> None:
    """The body of a worker process: report ready, wait for the start, run, send tally."""
    try:

        def progress(finished: int, errors: int) -> None:
            counters[2 * share] = finished
            counters[2 * share + 1] = errors

        pipe.send(("ready", None))
        start: int = pipe.recv()
        tally = run_engine(spec, start, share=share, shares=shares, on_progress=progress)
        pipe.send(("tally", tally.to_dict()))
    except Exception as exc:  # reported to the parent, which raises it
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        pipe.close()
