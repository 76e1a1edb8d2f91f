"""``inferwatch query``, ``inferwatch alerts`` and ``inferwatch silence ...``: the server's
APIs from the command line.

::

    inferwatch query 'rate(inference_requests_total[5m])'
    inferwatch query 'histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))' --range 1h
    inferwatch alerts --state firing
    inferwatch silence add alertname=HighErrorRatio 'model=~"digits.*"' --duration 2h \\
        --comment "retraining"
    inferwatch silence list
    inferwatch silence expire 0b9c3e6a-...

Every command takes ``--server`` ($INFERWATCH_URL) and either ``--token``
($INFERWATCH_TOKEN) or ``--user``/``--password`` ($INFERWATCH_USER,
$INFERWATCH_PASSWORD). The silence commands speak Alertmanager's API v2, so they work
against a real Alertmanager too. This module imports only typer at start-up; httpx and
rich tables load inside the commands.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from inferwatch.alerting.matchers import Matcher
    from inferwatch.client.api import APIClient

ServerOption = Annotated[
    str,
    typer.Option(
        "--server",
        envvar="INFERWATCH_URL",
        help="Base URL of the inferwatch server (or a Prometheus / Alertmanager).",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="INFERWATCH_TOKEN", help="Bearer token for a server with auth."),
]
UserOption = Annotated[
    str | None,
    typer.Option("--user", envvar="INFERWATCH_USER", help="User name for basic auth."),
]
PasswordOption = Annotated[
    str | None,
    typer.Option("--password", envvar="INFERWATCH_PASSWORD", help="Password for basic auth."),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the API's answer as JSON instead of a table.")
]

DEFAULT_SERVER = "http://127.0.0.1:9090"

#: Points a range query asks for when no --step is given.
RANGE_POINTS = 120


def _client(server: str, token: str | None, user: str | None, password: str | None) -> APIClient:
    from inferwatch.cli import _fail
    from inferwatch.client.api import APIClient

    if password is not None and user is None:
        _fail("--password needs --user (or $INFERWATCH_USER)")
    if token and user is not None:
        _fail("give either --token or --user/--password, not both")
    return APIClient(server, token=token or None, user=user, password=password)


def _print(renderable: object) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped into grep or a file: one line per row (Rich assumes 80 columns there).
        console.width = max(console.width, 200)
    console.print(renderable)


def _print_json(data: object) -> None:
    import json

    from inferwatch.cli import _echo

    _echo(json.dumps(data, indent=2, ensure_ascii=False))


def query(
    expr: Annotated[str, typer.Argument(help="The PromQL expression.")],
    time: Annotated[
        str | None,
        typer.Option(
            "--time",
            help="Evaluation time (the end of a range): RFC 3339, Unix seconds or now-5m. "
            "Default: now.",
        ),
    ] = None,
    range_: Annotated[
        str | None,
        typer.Option(
            "--range", help="Run a range query over this long up to --time, e.g. 1h, 30m."
        ),
    ] = None,
    step: Annotated[
        str | None,
        typer.Option(
            "--step",
            help=f"Resolution of a range query, e.g. 15s. Default: --range / {RANGE_POINTS}.",
        ),
    ] = None,
    json_output: JsonOption = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """Evaluate a PromQL expression on the server and print the result.

    An instant query prints a row per series with its value.

    With --range: a row per series with first, last, min and max values and a sparkline.

    Exit status 1 when the query is invalid or the server cannot be reached.
    """
    import math
    import time as time_module

    from inferwatch._errors import ConfigError
    from inferwatch.cli import _echo, _fail, err_console
    from inferwatch.client.api import APIError
    from inferwatch.client.render import matrix_table, vector_table
    from inferwatch.client.timespec import parse_duration, parse_time

    now = time_module.time()
    try:
        at = parse_time(time, now=now, field="--time") if time is not None else None
        range_s = parse_duration(range_, field="--range") if range_ is not None else None
        step_s = parse_duration(step, field="--step") if step is not None else None
    except ConfigError as exc:
        _fail(str(exc))
    if step_s is not None and range_s is None:
        _fail("--step needs --range (a range query)")
    with _client(server, token, user, password) as client:
        try:
            if range_s is not None:
                end = at if at is not None else now
                start = end - range_s
                step_s = step_s or max(1.0, math.ceil(range_s / RANGE_POINTS))
                data = client.query_range(expr, start=start, end=end, step=step_s)
            else:
                data = client.query(expr, time=at)
        except APIError as exc:
            _fail(str(exc))
        for warning in client.warnings:
            err_console.print(f"warning: {warning}", markup=False, highlight=False)
    if json_output:
        _print_json(data)
        return
    kind, result = data.get("resultType"), data.get("result") or []
    if kind in ("scalar", "string"):
        _echo(str(result[1]))
    elif not result:
        _echo("empty query result")
    elif kind == "vector":
        _print(vector_table(result))
    elif range_s is not None:
        _print(matrix_table(result, start, end))
    else:
        times = [float(t) for series in result for t, _ in series.get("values", ())]
        _print(matrix_table(result, min(times, default=0.0), max(times, default=0.0)))


class AlertState(enum.StrEnum):
    """Which alerts ``inferwatch alerts`` lists."""

    FIRING = "firing"
    PENDING = "pending"
    ALL = "all"


def alerts(
    state: Annotated[
        AlertState, typer.Option("--state", help="Only firing or pending alerts, or all.")
    ] = AlertState.ALL,
    json_output: JsonOption = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """List the pending and firing alerts of the server's alerting rules."""
    import time

    from inferwatch.cli import _echo, _fail
    from inferwatch.client.api import APIError
    from inferwatch.client.render import alerts_table

    with _client(server, token, user, password) as client:
        try:
            found = client.alerts()
        except APIError as exc:
            _fail(str(exc))
    if state is not AlertState.ALL:
        found = [a for a in found if a.get("state") == state.value]
    found.sort(key=lambda a: (a.get("labels", {}).get("alertname", ""), a.get("activeAt", "")))
    if json_output:
        _print_json(found)
    elif not found:
        _echo("no alerts" if state is AlertState.ALL else f"no {state.value} alerts")
    else:
        _print(alerts_table(found, time.time()))


silence_app = typer.Typer(
    name="silence",
    help="Add, list and expire Alertmanager silences (on inferwatch or a real Alertmanager).",
    no_args_is_help=True,
)


def _matchers(args: list[str]) -> list[Matcher]:
    """The matchers of the command line: ``name=value``, ``name=~"regex"``, ``name!=v``,
    or ``{a="1",b!="2"}``; a first argument with no operator is the alert name."""
    from inferwatch.alerting.matchers import parse_matchers
    from inferwatch.cli import _fail

    out: list[Matcher] = []
    for i, arg in enumerate(args):
        text = arg
        if i == 0 and not any(op in arg for op in ("=", "!", "~")) and arg.strip():
            text = f'alertname="{arg.strip()}"'
        try:
            parsed = parse_matchers(text)
        except ValueError as exc:
            _fail(f"matcher {arg!r}: {exc} (write name=value, name!=value, name=~regex)")
        if not parsed:
            _fail(f"matcher {arg!r}: no matcher in it (write name=value)")
        out.extend(parsed)
    return out


@silence_app.command("add")
def silence_add(
    matchers: Annotated[
        list[str],
        typer.Argument(
            help="Label matchers, e.g. alertname=HighErrorRatio 'model=~\"digits.*\"' "
            "instance!=a; a bare first word is the alert name.",
            show_default=False,
        ),
    ],
    comment: Annotated[str, typer.Option("--comment", help="Why the silence is there.")],
    duration: Annotated[
        str, typer.Option("--duration", help="How long from now it lasts, e.g. 2h, 30m, 1d.")
    ] = "1h",
    author: Annotated[
        str | None, typer.Option("--author", help="Who creates it. Default: your user name.")
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """Silence the alerts that match every matcher, from now for --duration; print its id."""
    import getpass
    import time

    from inferwatch._errors import ConfigError
    from inferwatch.cli import _echo, _fail
    from inferwatch.client.api import APIError
    from inferwatch.client.timespec import parse_duration

    parsed = _matchers(matchers)
    try:
        seconds = parse_duration(duration, field="--duration")
    except ConfigError as exc:
        _fail(str(exc))
    if not comment.strip():
        _fail("--comment is empty: say why the alerts are silenced")
    if author is None:
        try:
            author = getpass.getuser()
        except (KeyError, OSError):
            author = "inferwatch"
    now = time.time()
    with _client(server, token, user, password) as client:
        try:
            silence_id = client.add_silence(
                parsed, starts_at=now, ends_at=now + seconds, created_by=author, comment=comment
            )
        except APIError as exc:
            _fail(str(exc))
    _echo(silence_id)


@silence_app.command("list")
def silence_list(
    matchers: Annotated[
        list[str] | None,
        typer.Argument(
            help="Only silences with these matchers, e.g. alertname=HighErrorRatio.",
            show_default=False,
        ),
    ] = None,
    expired: Annotated[
        bool, typer.Option("--expired", help="List the expired silences instead.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the ids.")] = False,
    json_output: JsonOption = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """List the active and pending silences (or, with --expired, the expired ones)."""
    import time

    from inferwatch.cli import _echo, _fail
    from inferwatch.client.api import APIError
    from inferwatch.client.render import parse_api_time, silences_table

    filters = _matchers(matchers or [])
    with _client(server, token, user, password) as client:
        try:
            found = client.silences(filters)
        except APIError as exc:
            _fail(str(exc))
    found = [s for s in found if ((s.get("status") or {}).get("state") == "expired") == expired]
    found.sort(key=lambda s: parse_api_time(s.get("endsAt")) or 0.0, reverse=expired)
    if json_output:
        _print_json(found)
    elif quiet:
        for silence in found:
            _echo(str(silence.get("id", "")))
    elif not found:
        _echo("no expired silences" if expired else "no active silences")
    else:
        _print(silences_table(found, time.time()))


@silence_app.command("expire")
def silence_expire(
    ids: Annotated[list[str], typer.Argument(help="Silence ids, as silence list shows them.")],
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
    user: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """Expire silences now; their alerts notify again. Exit status 1 if any failed."""
    from inferwatch.cli import _echo, _error, _fail
    from inferwatch.client.api import APIError, ServerUnreachable

    failed = False
    with _client(server, token, user, password) as client:
        for silence_id in ids:
            try:
                client.expire_silence(silence_id)
            except ServerUnreachable as exc:
                _fail(str(exc))
            except APIError as exc:
                _error(str(exc))
                failed = True
            else:
                _echo(f"expired {silence_id}")
    if failed:
        raise typer.Exit(code=1)


__all__ = ["alerts", "query", "silence_app"]
