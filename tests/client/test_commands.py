"""``inferwatch query``, ``alerts`` and ``silence`` against a real inferwatch server on
loopback, and the silence commands against a real Alertmanager too."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from click.testing import Result

from tests.client.conftest import MARKUP, POINTS, STEP_S, Served, temperature
from tests.support import free_port, serve_asgi

Invoke = Callable[..., Result]


def rows(output: str, needle: str) -> list[str]:
    return [line for line in output.splitlines() if needle in line]


@pytest.mark.parametrize(
    "command",
    [["query"], ["alerts"], ["silence"], ["silence", "add"], ["silence", "list"],
     ["silence", "expire"]],
)  # fmt: skip
def test_every_command_has_help(invoke: Invoke, command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: inferwatch " + " ".join(command) in result.output
    if command != ["silence"]:
        assert "INFERWATCH_URL" in result.output


def test_instant_query_prints_each_series_and_its_value(invoke: Invoke, server: Served) -> None:
    result = invoke(
        "query", "gpu_temperature_celsius", "--time", str(server.end), "--server", server.url
    )
    assert result.exit_code == 0, result.output
    (row,) = rows(result.stdout, "gpu_temperature_celsius")
    assert f'card="{MARKUP}"' in row  # markup-like label values are shown as text
    assert row.split()[-2] == f"{temperature(POINTS - 1):g}"


def test_scalar_results_are_printed_plainly(invoke: Invoke, server: Served) -> None:
    result = invoke("query", "1 + 1", "--server", server.url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "2\n"


def test_json_prints_the_api_data(invoke: Invoke, server: Served) -> None:
    result = invoke(
        "query", "requests_total", "--time", str(server.end), "--json", "--server", server.url
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["resultType"] == "vector"
    (sample,) = data["result"]
    assert sample["metric"] == {"__name__": "requests_total", "model": "digits", "version": "1"}
    assert sample["value"] == [server.end, str(10 * (POINTS - 1))]


def test_range_query_prints_first_last_min_max_and_a_sparkline(
    invoke: Invoke, server: Served
) -> None:
    result = invoke(
        "query", "requests_total", "--range", "10m", "--step", "15s",
        "--time", str(server.end), "--server", server.url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = rows(result.stdout, "requests_total")
    cells = row.split("│") if "│" in row else row.split()
    text = " ".join(cells)
    last = 10 * (POINTS - 1)
    assert f" {POINTS} " in f" {text} "
    numbers = [c.strip() for c in cells if c.strip()]
    assert numbers[2:6] == ["0", str(last), "0", str(last)]
    assert "▁" in row and "█" in row


def test_range_query_relative_times_and_default_step(invoke: Invoke, server: Served) -> None:
    result = invoke(
        "query", "requests_total", "--range", "5m", "--time", "now", "--server", server.url
    )
    assert result.exit_code == 0, result.output
    assert "requests_total" in result.stdout


def test_instant_query_of_a_range_selector_prints_its_points(
    invoke: Invoke, server: Served
) -> None:
    result = invoke(
        "query", "requests_total[1m]", "--time", str(server.end), "--server", server.url
    )
    assert result.exit_code == 0, result.output
    (row,) = rows(result.stdout, "requests_total")
    assert str(60 // STEP_S) in row.split() and str(10 * (POINTS - 1)) in row.split()


def test_an_empty_result_says_so(invoke: Invoke, server: Served) -> None:
    result = invoke("query", "no_such_metric", "--server", server.url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "empty query result\n"


def test_a_bad_query_prints_the_parse_error_and_exits_1(invoke: Invoke, server: Served) -> None:
    result = invoke("query", "sum(rate(x[5m])", "--server", server.url)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: bad_data: ")
    assert "parse error" in result.stderr


def test_a_bad_time_names_the_option_and_the_text(invoke: Invoke, server: Served) -> None:
    result = invoke("query", "up", "--time", "yesterday", "--server", server.url)
    assert result.exit_code == 1
    assert "--time" in result.stderr and "'yesterday'" in result.stderr


def test_a_bad_range_names_the_option(invoke: Invoke, server: Served) -> None:
    result = invoke("query", "up", "--range", "1hour", "--server", server.url)
    assert result.exit_code == 1
    assert "--range" in result.stderr and "'1hour'" in result.stderr


def test_an_unreachable_server_is_named(invoke: Invoke) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["query", "up"], ["alerts"], ["silence", "list"]):
        result = invoke(*args, env={"INFERWATCH_URL": url})
        assert result.exit_code == 1, args
        assert result.stderr.startswith(f"error: cannot reach the server at {url}"), args


def test_alerts_lists_firing_and_pending_alerts(invoke: Invoke, server: Served) -> None:
    result = invoke("alerts", "--server", server.url)
    assert result.exit_code == 0, result.output
    (firing,) = rows(result.stdout, "AlwaysFiring")
    assert "firing" in firing and 'severity="page"' in firing
    assert "always [bold]on[/bold] <b>" in firing
    assert " ago)" in firing
    (pending,) = rows(result.stdout, "AlwaysPending")
    assert "pending" in pending


def test_alerts_state_filter(invoke: Invoke, server: Served) -> None:
    result = invoke("alerts", "--state", "firing", "--json", "--server", server.url)
    assert result.exit_code == 0, result.output
    assert [a["labels"]["alertname"] for a in json.loads(result.stdout)] == ["AlwaysFiring"]
    result = invoke("alerts", "--state", "resolved", "--server", server.url)
    assert result.exit_code == 2
    assert "resolved" in result.stderr


@pytest.fixture(params=["inferwatch", "alertmanager"])
def silencer(request: pytest.FixtureRequest) -> str:
    """The URL of an Alertmanager API: inferwatch's own, or a real Alertmanager's."""
    if request.param == "inferwatch":
        served: Served = request.getfixturevalue("server")
        return served.url
    url: str = request.getfixturevalue("alertmanager")
    return url


def test_silence_add_list_expire_round_trip(invoke: Invoke, silencer: str) -> None:
    added = invoke(
        "silence", "add", "alertname=AlwaysFiring", 'severity=~"pa.*"', "instance!=a",
        "--duration", "2h", "--comment", "deploying [a] fix", "--author", "ops",
        env={"INFERWATCH_URL": silencer},
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    silence_id = added.stdout.strip()
    assert silence_id and "\n" not in silence_id

    listed = invoke("silence", "list", "--server", silencer)
    assert listed.exit_code == 0, listed.output
    (row,) = rows(listed.stdout, silence_id)
    assert "active" in row and "deploying [a] fix" in row and "ops" in row
    assert 'alertname="AlwaysFiring"' in row and 'severity=~"pa.*"' in row
    assert 'instance!="a"' in row and "(in 1h 59m)" in row

    shown = json.loads(invoke("silence", "list", "--json", "--server", silencer).stdout)
    (silence,) = [s for s in shown if s["id"] == silence_id]
    assert sorted((m["name"], m["isRegex"], m["isEqual"]) for m in silence["matchers"]) == [
        ("alertname", False, True),
        ("instance", False, False),
        ("severity", True, True),
    ]

    expired = invoke("silence", "expire", silence_id, "--server", silencer)
    assert expired.exit_code == 0, expired.output
    assert expired.stdout == f"expired {silence_id}\n"
    active = invoke("silence", "list", "-q", "--server", silencer)
    assert silence_id not in active.stdout
    gone = invoke("silence", "list", "--expired", "-q", "--server", silencer)
    assert silence_id in gone.stdout.split()


def test_a_bare_first_word_is_the_alert_name(invoke: Invoke, silencer: str) -> None:
    added = invoke("silence", "add", "AlwaysFiring", "--comment", "c", "--server", silencer)
    assert added.exit_code == 0, added.output
    silence_id = added.stdout.strip()
    listed = invoke("silence", "list", "alertname=AlwaysFiring", "--json", "--server", silencer)
    (silence,) = [s for s in json.loads(listed.stdout) if s["id"] == silence_id]
    assert silence["matchers"][0]["name"] == "alertname"
    assert silence["matchers"][0]["value"] == "AlwaysFiring"
    assert invoke("silence", "expire", silence_id, "--server", silencer).exit_code == 0


def test_expiring_an_unknown_silence_fails(invoke: Invoke, silencer: str) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    result = invoke("silence", "expire", unknown, "--server", silencer)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and unknown in result.stderr


def test_the_server_refuses_a_silence_that_matches_everything(
    invoke: Invoke, silencer: str
) -> None:
    result = invoke("silence", "add", 'alertname=~".*"', "--comment", "c", "--server", silencer)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("matcher", "shown"),
    [('model=~"("', "model=~"), ("model", None), ("=x", "=x"), ('a="b', 'a="b')],
)
def test_a_bad_matcher_is_named(invoke: Invoke, matcher: str, shown: str | None) -> None:
    args = ["silence", "add", "alertname=X", matcher, "--comment", "c"]
    result = invoke(*args, "--server", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1
    assert f"matcher {matcher!r}" in result.stderr


def test_a_bad_duration_is_named(invoke: Invoke) -> None:
    result = invoke("silence", "add", "alertname=X", "--duration", "2 hours", "--comment", "c")
    assert result.exit_code == 1
    assert "--duration" in result.stderr and "'2 hours'" in result.stderr


def test_token_and_basic_auth(invoke: Invoke, server: Served) -> None:
    from inferwatch.server.auth import AuthMiddleware

    app = AuthMiddleware(server.server.app(), bearer_token="s3cret", basic_auth=("ann", "pw"))
    with serve_asgi(app) as url:
        assert httpx.get(f"{url}/api/v1/query?query=1").status_code == 401

        missing = invoke("query", "1", "--server", url)
        assert missing.exit_code == 1
        assert "401" in missing.stderr and "--token" in missing.stderr

        wrong = invoke("query", "1", "--server", url, "--token", "nope")
        assert wrong.exit_code == 1 and "refused" in wrong.stderr

        bearer = invoke("query", "1", env={"INFERWATCH_URL": url, "INFERWATCH_TOKEN": "s3cret"})
        assert bearer.exit_code == 0 and bearer.stdout == "1\n", bearer.output

        basic = invoke(
            "alerts", "--user", "ann", env={"INFERWATCH_URL": url, "INFERWATCH_PASSWORD": "pw"}
        )
        assert basic.exit_code == 0 and "AlwaysFiring" in basic.stdout, basic.output


def test_a_server_without_alertmanager_api_gets_a_hint(invoke: Invoke) -> None:
    from starlette.applications import Starlette

    with serve_asgi(Starlette()) as url:
        result = invoke("silence", "list", "--server", url)
    assert result.exit_code == 1
    assert "no Alertmanager API" in result.stderr and "--alertmanager-config" in result.stderr
