"""The ``inferwatch`` command line.

::

    inferwatch demo              # the demo service with live metrics, until Ctrl-C
    inferwatch demo --port 9000 --no-traffic
    inferwatch version
    inferwatch server --config prometheus.yml --alertmanager-config alertmanager.yml
    inferwatch tsdb import history.om --db inferwatch.db   # backfill OpenMetrics samples
    inferwatch rules check rules.yml ...     # validate rule files as promtool check rules
    inferwatch rules test tests.yml ...      # rule unit tests in promtool test rules format
    inferwatch feedback import labels.csv --model fraud --log predictions.db

Also runs as ``python -m inferwatch``. Heavy imports (FastAPI, scikit-learn) happen
inside the command that needs them, so ``inferwatch --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from inferwatch._errors import InferwatchError
from inferwatch._version import __version__

app = typer.Typer(
    name="inferwatch",
    help="Monitoring for deployed ML model inference services.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@app.command()
def demo(
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 to be reachable from elsewhere.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free one.")
    ] = 8000,
    traffic: Annotated[
        bool,
        typer.Option(
            "--traffic/--no-traffic",
            help="Send a few requests per second of real test rows, so /metrics moves.",
        ),
    ] = True,
    db: Annotated[
        str,
        typer.Option(
            help="SQLite file of the embedded store that keeps the demo's metrics; "
            "'' for none. Default: $INFERWATCH_DB or inferwatch.db."
        ),
    ] = "",
    no_store: Annotated[
        bool,
        typer.Option("--no-store", help="Keep the metrics in a temporary store, removed at exit."),
    ] = False,
    webhook: Annotated[
        str | None,
        typer.Option(
            help="Also send alerts that fire and resolve to this URL (Alertmanager's "
            "webhook payload, from the embedded Alertmanager)."
        ),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            "--fault",
            metavar="NAME",
            help="Start with this fault on (repeatable): latency, errors, input-drift, "
            "model, leak, gpu. Later: inferwatch fault NAME [--off].",
        ),
    ] = None,
    fake_gpu: Annotated[
        bool,
        typer.Option("--fake-gpu", help="Show a simulated GPU even where NVML finds a real one."),
    ] = False,
) -> None:
    """The whole product in one command: a real scikit-learn digit classifier with
    traffic and delayed labels, the embedded store, default rules and alerts, and the
    dashboard, on one port, until Ctrl-C."""
    try:
        from inferwatch.demo import run_demo
    except ImportError as exc:
        err_console.print(
            f"[red]The demo needs the 'demo' extra ({exc.name or exc} is missing):[/red] "
            "pip install 'inferwatch[demo]'"
        )
        raise typer.Exit(code=1) from exc
    try:
        from inferwatch.demo.command import fault_key
        from inferwatch.tsdb.store import default_path

        store_path = None if no_store else (db or str(default_path()))
        run_demo(
            host=host,
            port=port,
            traffic=traffic,
            echo=_echo,
            db=store_path,
            webhook=webhook,
            faults=[fault_key(name) for name in fault or ()],
            fake_gpu=True if fake_gpu else None,
        )
    except OSError as exc:
        _fail(exc.strerror or str(exc))
    except InferwatchError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass
    console.print("stopped")


def _echo(line: str) -> None:
    console.print(line, markup=False, soft_wrap=True)


def _error(message: str) -> None:
    """Print ``error: message`` on stderr (``message`` is plain text, not markup)."""
    from rich.markup import escape

    err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


def _fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 1."""
    _error(message)
    raise typer.Exit(code=1)


@app.command()
def server(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            exists=True,
            dir_okay=False,
            help="An inferwatch.yaml (listen, storage, auth, prometheus, alertmanager, "
            "probes, baselines, prices, scaling; see examples/inferwatch.yaml), or a plain "
            "Prometheus configuration file (the same file a real Prometheus reads).",
        ),
    ] = None,
    alertmanager_config: Annotated[
        Path | None,
        typer.Option(
            "--alertmanager-config",
            exists=True,
            dir_okay=False,
            help="An Alertmanager configuration file for the embedded Alertmanager "
            "(route, receivers, inhibit_rules); without it alerts go only to the "
            "Alertmanagers named in --config.",
        ),
    ] = None,
    db: Annotated[
        str,
        typer.Option(
            help="The store's SQLite file (over the config's storage.path). "
            "Default: $INFERWATCH_DB or inferwatch.db."
        ),
    ] = "",
    listen: Annotated[
        str | None,
        typer.Option(
            help="host:port to listen on (over the config's listen). Default 127.0.0.1:9090; "
            "anything not loopback needs auth in the config."
        ),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port to listen on (default 9090).")
    ] = None,
    external_url: Annotated[
        str, typer.Option(help="The URL users reach this server at (for links in alerts).")
    ] = "",
    probes: Annotated[
        list[Path] | None,
        typer.Option(
            "--probes",
            exists=True,
            dir_okay=False,
            help="A synthetic probe file (see examples/probes.yml); repeat for more. "
            "Its probe_* series go into the store, for rules and queries.",
        ),
    ] = None,
) -> None:
    """Run Prometheus's and Alertmanager's jobs, the analyzers and the dashboard in one
    process, from an inferwatch.yaml (or a prometheus.yml and an alertmanager.yml)."""
    try:
        from inferwatch.server.app import run_server
        from inferwatch.tsdb.store import default_path
    except ImportError as exc:
        err_console.print(
            f"[red]The server needs the 'server' extra ({exc.name or exc} is missing):[/red] "
            "pip install 'inferwatch[server]'"
        )
        raise typer.Exit(code=1) from exc

    try:
        run_server(
            str(config) if config else None,
            alertmanager_config_path=str(alertmanager_config) if alertmanager_config else None,
            db=db or (None if config else str(default_path())),
            host=host,
            port=port,
            listen=listen,
            external_url=external_url or None,
            probe_files=[str(p) for p in probes or ()],
            echo=_echo,
        )
    except (InferwatchError, OSError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


@app.command()
def version() -> None:
    """Print the installed inferwatch version."""
    console.print(__version__)


tsdb_app = typer.Typer(
    name="tsdb",
    help="Work with the embedded time-series store.",
    no_args_is_help=True,
)
app.add_typer(tsdb_app)


@tsdb_app.command("import")
def tsdb_import(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="OpenMetrics text with a timestamp on every sample, ending in '# EOF' "
            "(what 'promtool tsdb create-blocks-from openmetrics' takes).",
        ),
    ],
    db: Annotated[
        Path | None,
        typer.Option(help="The store to import into; default $INFERWATCH_DB or ./inferwatch.db."),
    ] = None,
) -> None:
    """Load the samples of an OpenMetrics file into the store (history from elsewhere).

    Nothing is written from a file with an error; a rerun skips the samples stored.

    Run it while no server has the store open.
    """
    from rich.progress import BarColumn, Progress, TextColumn

    from inferwatch.tsdb.backfill import BackfillError, import_openmetrics
    from inferwatch.tsdb.store import Store, StoreError, default_path

    path = db if db is not None else default_path()
    columns = (TextColumn("{task.description:<8}"), BarColumn(), TextColumn("{task.fields[count]}"))
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks = {
            "parse": bar.add_task("parsing", total=None, count=""),
            "write": bar.add_task("writing", total=None, count="", visible=False),
        }

        def progress(stage: str, done: int, total: int) -> None:
            if stage == "parse":
                count = f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"
            else:
                count = f"{done}/{total} series"
            bar.update(tasks[stage], completed=done, total=total, visible=True, count=count)

        try:
            with Store(path) as store:
                result = import_openmetrics(store, file, progress=progress)
        except (BackfillError, StoreError) as exc:
            _fail(str(exc))
        except OSError as exc:
            _fail(f"{exc.filename or file}: {exc.strerror or exc}")
    skipped = f" ({result.skipped} skipped)" if result.skipped else ""
    _echo(f"imported {result.samples} samples of {result.series} series into {path}{skipped}")


report_app = typer.Typer(
    name="report",
    help="Reports computed from the store: cost.",
    no_args_is_help=True,
)
app.add_typer(report_app)


@report_app.command("cost")
def report_cost(
    prices: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Price config (YAML); see examples.")
    ],
    db: Annotated[
        Path | None,
        typer.Option(help="The store to read; default $INFERWATCH_DB or ./inferwatch.db."),
    ] = None,
    window: Annotated[
        float, typer.Option(min=60, help="Seconds back from now to cover.")
    ] = 86400.0,
    step: Annotated[float, typer.Option(min=1, help="Seconds between utilisation points.")] = 60.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of a table.")
    ] = False,
) -> None:
    """Cost per model and per 1,000 inferences, utilisation, and right-sizing advice."""
    import json
    import time

    from rich.markup import escape
    from rich.table import Table

    from inferwatch.analyze.cost import cost_report, load_prices
    from inferwatch.promql.engine import Engine
    from inferwatch.tsdb.store import Store, StoreError, default_path

    path = db if db is not None else default_path()
    if not path.exists():
        _fail(f"{path}: no such store")
    try:
        config = load_prices(prices)
        with Store(path) as store:
            end = time.time()
            report = cost_report(Engine(store), config, start=end - window, end=end, step=step)
    except (InferwatchError, StoreError) as exc:
        _fail(str(exc))
    if json_output:
        console.print_json(json.dumps(report.to_dict()))
        return
    cur = report.currency
    table = Table(title=f"cost over the last {window / 3600:g} h, while seen ({cur})")
    for column in (
        "model",
        "instance",
        "hours",
        "cost",
        "inferences",
        "per 1k",
        "CPU p95",
        "mem p95",
    ):
        table.add_column(column, justify="left" if column in ("model", "instance") else "right")
    table.add_column("GPU p95", justify="right")
    table.add_column("verdict")

    def pct(u: object) -> str:
        p95 = getattr(u, "p95", None)
        return "-" if p95 is None else f"{p95:.0%}"

    for m in report.models:
        per = "-" if m.cost_per_1000 is None else f"{m.cost_per_1000:.4f}"
        table.add_row(
            escape(m.model),
            f"{escape(m.instance_type)} x{m.replicas}",
            f"{m.seconds / 3600:.2f}",
            f"{m.cost:.2f}" if m.cost >= 1 else f"{m.cost:.4f}",
            f"{m.inferences:.0f}",
            per,
            pct(m.cpu),
            pct(m.memory),
            pct(m.gpu),
            m.verdict,
        )
    Console(highlight=False, width=max(console.width, 120)).print(table)
    total = "-" if report.cost_per_1000 is None else f"{report.cost_per_1000:.4f}"
    _echo(
        f"total {report.total_cost:.4f} {cur}, {report.total_inferences:.0f} inferences, "
        f"{total} {cur} per 1,000"
    )
    for m in report.models:
        if m.verdict in ("too_big", "too_small"):
            _echo(f"{m.model}: {m.verdict.replace('_', ' ')}: " + "; ".join(m.reasons))


rules_app = typer.Typer(
    name="rules",
    help="Check and unit-test Prometheus rule files.",
    no_args_is_help=True,
)
app.add_typer(rules_app)


@rules_app.command("check")
def rules_check(
    files: Annotated[list[Path], typer.Argument(help="Prometheus rule files.")],
) -> None:
    """Check rule files as 'promtool check rules' does; exit 1 if any is invalid."""
    from inferwatch.rules.file import check_command

    raise typer.Exit(code=check_command([str(f) for f in files], echo=_echo))


@rules_app.command("test")
def rules_test(
    files: Annotated[list[Path], typer.Argument(help="Rule unit test files.")],
) -> None:
    """Run rule unit tests written for 'promtool test rules'; exit 1 if any fails."""
    from inferwatch.rules.unittest import test_command

    raise typer.Exit(code=test_command([str(f) for f in files], echo=_echo))


shadow_app = typer.Typer(
    name="shadow",
    help="Summarise shadow-model runs (a candidate model mirrored beside the primary).",
    no_args_is_help=True,
)
app.add_typer(shadow_app)


def _pair(first: float | None, second: float | None, sign: str = "") -> str:
    """Two durations in milliseconds, ``sign="+"`` to show the sign of deltas."""
    cells = ["-" if v is None else f"{v * 1000:{sign}.2f} ms" for v in (first, second)]
    return " / ".join(cells)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


@shadow_app.command("report")
def shadow_report(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="JSON-lines files written by a shadow with record=PATH.",
        ),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summaries as JSON instead of a table.")
    ] = False,
) -> None:
    """Summarise a shadow run per candidate: agreement, latency and error deltas, drops."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from inferwatch.analyze.shadow import read_records, summarize

    records = []
    for file in files:
        try:
            records.extend(read_records(file))
        except (InferwatchError, OSError, UnicodeDecodeError) as exc:
            _fail(str(exc))
    summaries = summarize(records)
    if json_output:
        _echo(json.dumps([s.to_dict() for s in summaries], indent=2))
        return
    if not summaries:
        _echo("no shadow records")
        return
    table = Table("metric", *(f"{s.model}:{s.version or '-'} vs {s.candidate}" for s in summaries))
    rows: list[tuple[str, list[str]]] = [
        ("mirrored", [str(s.mirrored) for s in summaries]),
        ("ok / error / timeout", [f"{s.ok} / {s.errors} / {s.timeouts}" for s in summaries]),
        ("dropped (queue full)", [str(s.dropped) for s in summaries]),
        ("agreement", [f"{_ratio(s.agreement_ratio)} of {s.comparisons}" for s in summaries]),
        ("primary error ratio", [_ratio(s.primary_error_ratio) for s in summaries]),
        ("candidate error ratio", [_ratio(s.candidate_error_ratio) for s in summaries]),
        ("primary p50 / p99", [_pair(s.primary_p50_s, s.primary_p99_s) for s in summaries]),
        ("candidate p50 / p99", [_pair(s.candidate_p50_s, s.candidate_p99_s) for s in summaries]),
        ("latency delta p50 / p99", [_pair(s.p50_delta_s, s.p99_delta_s, "+") for s in summaries]),
        ("candidate CPU", [f"{s.candidate_cpu_s:.3f} s" for s in summaries]),
    ]
    for label, cells in rows:
        table.add_row(label, *(escape(c) for c in cells))
    console.print(table)


leaks_app = typer.Typer(
    name="leaks",
    help="Find memory leaks: tracemalloc diffs of a running service's allocation sites.",
    no_args_is_help=True,
)
app.add_typer(leaks_app)


def _leaks_call(url: str, action: str, params: dict[str, str]) -> dict[str, object]:
    import httpx

    target = url.rstrip("/") + "/" + action
    try:
        response = httpx.post(target, params=params, timeout=60.0)
    except httpx.HTTPError as exc:
        _fail(f"{target}: {exc}")
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if response.status_code != 200 or not isinstance(body, dict):
        reason = body.get("error") if isinstance(body, dict) else body
        _fail(f"{target} answered {response.status_code}: {reason}")
    return body


@leaks_app.command("snapshot")
def leaks_snapshot(
    url: Annotated[
        str,
        typer.Option(
            help="Where the service mounts inferwatch.analyze.leak.allocation_app(), "
            "e.g. http://127.0.0.1:8000/debug/leaks."
        ),
    ],
    top: Annotated[int, typer.Option(min=1, help="How many allocation sites to list.")] = 10,
    key_type: Annotated[
        str, typer.Option(help="Group allocations by lineno, traceback or filename.")
    ] = "lineno",
    json_output: Annotated[bool, typer.Option("--json", help="Print the JSON answer.")] = False,
) -> None:
    """Snapshot the service's allocations and list the sites grown since the last snapshot.

    The first call starts tracing (tracemalloc) and lists nothing; call it again later.

    Tracing slows the service's allocations: end it with 'inferwatch leaks stop'.
    """
    import json

    from rich.markup import escape
    from rich.table import Table

    body = _leaks_call(url, "snapshot", {"top": str(top), "key_type": key_type})
    if json_output:
        _echo(json.dumps(body, indent=2))
        return
    sites = body.get("sites")
    if body.get("started"):
        _echo("tracing started; take another snapshot later to see what grew")
        return
    if not isinstance(sites, list) or not sites:
        _echo("no allocation site grew since the previous snapshot")
        return
    table = Table("site", "size diff", "size", "count diff", "count")
    for site in sites:
        table.add_row(
            escape(f"{site['file']}:{site['line']}"),
            f"{site['size_diff_bytes']:+,} B",
            f"{site['size_bytes']:,} B",
            f"{site['count_diff']:+,}",
            f"{site['count']:,}",
        )
    console.print(table)


@leaks_app.command("stop")
def leaks_stop(
    url: Annotated[
        str, typer.Option(help="Where the service mounts allocation_app(), as for snapshot.")
    ],
) -> None:
    """Stop tracing allocations in the service (tracing costs CPU and memory)."""
    _leaks_call(url, "stop", {})
    _echo("tracing stopped")


anomaly_app = typer.Typer(
    name="anomaly",
    help="Dynamic thresholds: score a series for anomalies with the baseline detector.",
    no_args_is_help=True,
)
app.add_typer(anomaly_app)


@anomaly_app.command("score")
def anomaly_score(
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV with a header row: timestamp,value (Unix seconds or ISO 8601).",
        ),
    ],
    output_file: Annotated[
        Path, typer.Option("--output", dir_okay=False, help="Where to write timestamp,value,score.")
    ],
) -> None:
    """Score every row in order (no look-ahead); scores are in [0, 1]."""
    from inferwatch.analyze.baseline import score_csv

    try:
        rows = score_csv(input_file, output_file)
    except InferwatchError as exc:
        _fail(str(exc))
    _echo(f"scored {rows} rows into {output_file}")


feedback_app = typer.Typer(
    name="feedback",
    help="Give the true labels of logged predictions (model quality from delayed labels).",
    no_args_is_help=True,
)
app.add_typer(feedback_app)


@feedback_app.command("import")
def feedback_import(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV with a header row: request_id,label[,timestamp] (timestamp: Unix "
            "seconds or ISO 8601).",
        ),
    ],
    model: Annotated[str, typer.Option(help="The model the predictions were logged for.")],
    version: Annotated[str, typer.Option(help="The model version.")] = "",
    log: Annotated[
        str,
        typer.Option(
            help="The prediction log the service writes: a SQLite file or a postgresql:// URL."
        ),
    ] = "inferwatch-predictions.db",
    task: Annotated[
        str, typer.Option(help="classification or regression (how labels are read).")
    ] = "classification",
) -> None:
    """Store labels for logged predictions; the service joins and counts them.

    Bad rows are reported with file, line and field and skipped; the others are stored.
    Exit status 1 when any row was rejected.
    """

    from inferwatch.analyze.quality import QualityTracker

    try:
        tracker = QualityTracker(model, version, log=log, task=task, background=False)  # type: ignore[arg-type]
    except InferwatchError as exc:
        _fail(str(exc))
    with tracker:
        try:
            result = tracker.import_feedback_csv(file, join=False)
        except (InferwatchError, OSError, UnicodeDecodeError) as exc:
            _fail(str(exc))
    for error in result.errors:
        _error(error)
    _echo(
        f"{file}: {result.rows} rows: {result.stored} stored for their predictions, "
        f"{result.pending} waiting for a prediction, {result.duplicate} duplicate, "
        f"{result.expired} expired, {result.invalid} invalid"
    )
    raise typer.Exit(code=1 if result.errors else 0)


logs_app = typer.Typer(
    name="logs",
    help="Search the structured logs that Monitor.logs() writes.",
    no_args_is_help=True,
)
app.add_typer(logs_app)


@logs_app.command("search")
def logs_search(
    files: Annotated[
        list[Path], typer.Argument(help="Log files; their rotated files (FILE.1, ...) too.")
    ],
    since: Annotated[
        str | None, typer.Option(help="From this time: RFC 3339, Unix seconds, or '15m' ago.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to this time: RFC 3339, Unix seconds, or '5m' ago.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    version: Annotated[str | None, typer.Option(help="Only this model version.")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="Only this outcome: success, error or rejected.")
    ] = None,
    request_id: Annotated[str | None, typer.Option(help="Only this request id.")] = None,
    event: Annotated[
        str | None, typer.Option(help="Only this event: inference, alert_state_change, ...")
    ] = None,
    text: Annotated[
        str | None, typer.Option(help="Only lines containing this text (any case).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json/--table", help="JSON lines, or a table (default).")
    ] = False,
) -> None:
    """Print the log records that match every filter, oldest first.

    Malformed lines are counted and reported, not fatal. Exit status 1 when no file
    could be read or a filter is invalid.
    """
    import time

    from rich.markup import escape
    from rich.table import Table

    from inferwatch.sdk.logsearch import (
        TABLE_COLUMNS,
        LogQuery,
        json_lines,
        parse_time,
        search,
        table_row,
    )

    now = time.time()
    try:
        query = LogQuery(
            since=parse_time(since, now=now, field="--since") if since is not None else None,
            until=parse_time(until, now=now, field="--until") if until is not None else None,
            model=model,
            version=version,
            outcome=outcome,
            request_id=request_id,
            event=event,
            text=text,
            limit=limit,
        )
        result = search(files, query)
    except InferwatchError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename}: {exc.strerror or exc}")
    for path in result.missing:
        _error(f"no log file {path}")
    if as_json:
        for line in json_lines(result.records):
            _echo(line)
    else:
        table = Table(*(header for header, _ in TABLE_COLUMNS), box=None)
        for record in result.records:
            table.add_row(*(escape(cell) for cell in table_row(record)))
        console.print(table)
    if result.malformed:
        err_console.print(
            f"skipped {result.malformed} malformed of {result.lines} lines "
            f"in {len(result.files)} files"
        )
    raise typer.Exit(code=1 if result.missing and not result.files else 0)


from inferwatch.client.command import alerts as _alerts  # noqa: E402
from inferwatch.client.command import query as _query  # noqa: E402
from inferwatch.client.command import silence_app as _silence_app  # noqa: E402

app.command("query")(_query)
app.command("alerts")(_alerts)
app.add_typer(_silence_app, name="silence")

from inferwatch.export.command import export as _export  # noqa: E402

app.command("export")(_export)

from inferwatch.demo.command import fault as _fault  # noqa: E402

app.command("fault")(_fault)

from inferwatch.loadtest.command import loadtest as _loadtest  # noqa: E402

app.command("loadtest")(_loadtest)


def main() -> None:
    """Entry point of the ``inferwatch`` console script."""
    app()
