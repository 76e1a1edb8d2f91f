"""``inferwatch loadtest URL``: the command line of the load generator.

Only typer is imported here; the engine, rich's progress bar and matplotlib are
imported when the command runs, so ``inferwatch --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def parse_seconds(option: str, text: str) -> float:
    """Seconds in ``text``: a Prometheus duration (``30s``, ``1m30s``, ``500ms``) or a
    plain number of seconds (``2.5``); raise :class:`~inferwatch.ConfigError` naming
    the option otherwise."""
    from inferwatch._duration import duration_ms
    from inferwatch._errors import ConfigError

    ms = duration_ms(text.strip())
    if ms is not None:
        return ms / 1000
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or value < 0 or value == float("inf"):
        raise ConfigError(
            f"{option}: {text!r} is not a duration (use e.g. 30s, 1m30s, 500ms or 2.5)",
            field=option,
            value=text,
        )
    return value


def loadtest(
    url: Annotated[str, typer.Argument(help="The endpoint, e.g. http://127.0.0.1:8000/predict.")],
    rate: Annotated[
        float | None,
        typer.Option(
            help="Open loop: start this many requests per second on a fixed schedule; "
            "latency is measured from each request's intended start (corrected for "
            "coordinated omission)."
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="Closed loop: this many connections, each sending its next request as "
            "soon as the previous answer arrives. The default when --rate is not given: 16."
        ),
    ] = None,
    connections: Annotated[
        int, typer.Option(help="Open loop: keep-alive connections to spread the requests over.")
    ] = 64,
    duration: Annotated[
        str, typer.Option(help="How long to measure: 30s, 2m, 500ms, 2.5.")
    ] = "10s",
    warmup: Annotated[
        str, typer.Option(help="Load sent before the measured period and not counted.")
    ] = "0s",
    method: Annotated[str, typer.Option(help="HTTP method.")] = "GET",
    payload: Annotated[
        Path | None,
        typer.Option(help="A file whose bytes are sent as the request body, as they are."),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="An extra request header 'Name: value'; repeatable."),
    ] = None,
    content_type: Annotated[
        str | None,
        typer.Option(help="Content-Type of the payload (default application/json)."),
    ] = None,
    timeout: Annotated[
        str, typer.Option(help="Longest wait for an answer; a request past it is an error.")
    ] = "10s",
    workers: Annotated[
        int,
        typer.Option(
            help="Processes generating load (each with its share of the rate or of the "
            "connections); raise it when one process cannot keep up."
        ),
    ] = 1,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON object.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Write a PNG with latency over time and the percentile spectrum "
            "(needs matplotlib, from the loadtest extra)."
        ),
    ] = None,
) -> None:
    """Load an HTTP endpoint at a fixed rate or concurrency, and report throughput,
    errors and latency percentiles."""
    import json

    from inferwatch._errors import ConfigError
    from inferwatch.cli import _fail, console
    from inferwatch.loadtest.spec import LoadSpec, TargetUnreachable, parse_header

    try:
        body = None
        if payload is not None:
            try:
                body = payload.read_bytes()
            except OSError as exc:
                _fail(f"cannot read payload file {payload}: {exc.strerror or exc}")
        if plot is not None and not plot.parent.is_dir():
            _fail(f"--plot {plot}: folder {plot.parent} does not exist")
        if plot is not None:
            _check_matplotlib(_fail)
        if rate is None and concurrency is None:
            concurrency = 16
        spec = LoadSpec(
            url=url,
            method=method.upper(),
            headers=tuple(parse_header(h) for h in header or ()),
            body=body,
            content_type=content_type,
            rate=rate,
            concurrency=concurrency,
            connections=connections,
            duration=parse_seconds("--duration", duration),
            warmup=parse_seconds("--warmup", warmup),
            timeout=parse_seconds("--timeout", timeout),
            workers=workers,
        )
    except ConfigError as exc:
        plain = exc.field is None or exc.field.startswith("--") or exc.field in ("url", "header")
        _fail(str(exc) if plain else f"--{exc.field}: {exc}")
    try:
        report = _run_with_progress(spec)
    except TargetUnreachable as exc:
        _fail(str(exc))
    if plot is not None:
        from inferwatch.loadtest.plot import write_plot

        write_plot(report, plot)
    if json_output:
        print(json.dumps(report.to_dict()))
    else:
        from inferwatch.loadtest.report import render

        render(report, console)
        if plot is not None:
            console.print(f"plot written to {plot}", markup=False, soft_wrap=True)


def _check_matplotlib(fail: Any) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        fail("--plot needs matplotlib: pip install 'inferwatch[loadtest]'")


def _run_with_progress(spec: Any) -> Any:
    """Run ``spec`` with a live progress bar on stderr; return the report."""
    import time

    from rich.progress import BarColumn, Progress, TextColumn

    from inferwatch.cli import err_console
    from inferwatch.loadtest.runner import check_reachable, run_load

    check_reachable(spec)  # before the bar appears, so that the error stands alone
    total = spec.warmup + spec.duration
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TextColumn("{task.fields[requests]} requests"),
        TextColumn("{task.fields[rps]:.0f} req/s"),
        TextColumn("{task.fields[errors]} errors"),
    )
    state = {"t": time.monotonic(), "n": 0}
    started = time.monotonic()
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("warm-up", total=total, requests=0, rps=0.0, errors=0)

        def on_progress(finished: int, errors: int) -> None:
            now = time.monotonic()
            elapsed = now - started
            dt = now - state["t"]
            rps = (finished - state["n"]) / dt if dt > 0 else 0.0
            state["t"], state["n"] = now, finished
            progress.update(
                task,
                completed=min(elapsed, total),
                description="warm-up" if elapsed < spec.warmup else "load",
                requests=finished,
                rps=rps,
                errors=errors,
            )

        return run_load(spec, on_progress)
