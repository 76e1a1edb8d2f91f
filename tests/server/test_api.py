"""The Prometheus HTTP API, served by a real uvicorn over a real store.

Clients: ``prometheus-api-client`` as it is, and the exact requests Grafana's Prometheus
data source sends (its health check, a time-series panel, the query editor's look-ups).
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_api_client import PrometheusConnect
from starlette.applications import Starlette
from starlette.routing import Mount

from inferwatch import Monitor, Registry
from inferwatch.server.api import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    PrometheusAPI,
    format_timestamp,
    format_value,
    parse_duration,
    parse_time,
    registry_metadata,
    unescape_label_name,
)
from inferwatch.tsdb.labels import make_labels
from inferwatch.tsdb.store import Store
from tests.integration.conftest import serve_asgi

T0 = 1_700_000_000_000  # ms; samples every 15 s for 10 minutes
STEP_MS = 15_000
N = 41
END = T0 + (N - 1) * STEP_MS  # 1700000600 s, the API's "now"
END_S = END // 1000
A = {"__name__": "http_requests_total", "job": "api", "instance": "a:9090", "method": "get"}
B = {"__name__": "http_requests_total", "job": "api", "instance": "b:9090", "method": "post"}
UP_A = {"__name__": "up", "job": "api", "instance": "a:9090"}
UP_B = {"__name__": "up", "job": "api", "instance": "b:9090"}
TEMP = {"__name__": "temperature_celsius", "room": "lab"}
DUP_A = {"__name__": "dup_a", "job": "dup"}
DUP_B = {"__name__": "dup_b", "job": "dup"}
METRICS = ["dup_a", "dup_b", "http_requests_total", "temperature_celsius", "up"]
METADATA = {
    "http_requests_total": [{"type": "counter", "help": "Requests served.", "unit": ""}],
    "temperature_celsius": [{"type": "gauge", "help": "Room temperature.", "unit": "celsius"}],
    "up": [{"type": "gauge", "help": "Whether the target answered.", "unit": ""}],
}
GRAFANA_HEADERS = {
    "User-Agent": "Grafana/11.3.0",
    "Accept-Encoding": "gzip",
    "X-Grafana-Org-Id": "1",
    "X-Datasource-Uid": "inferwatch",
}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def temperature(i: int) -> float:
    return 20.0 + 0.5 * (i % 4)


def rate_1m(per_scrape: float) -> str:
    """``rate(x[1m])`` of a counter growing ``per_scrape`` every 15 s, as Prometheus 3
    computes it: 4 samples in the window, extrapolated by 15 s to its start, and the
    factor divided by the range before it multiplies (so 2/s is 1.9999999999999998).
    """
    factor = (45 + 15) / 45
    factor /= 60
    return format_value(3 * per_scrape * factor)


def fill(store: Store) -> None:
    for i in range(N):
        store.append(
            T0 + i * STEP_MS,
            [
                (make_labels(A), 30.0 * i),
                (make_labels(B), 15.0 * i),
                (make_labels(UP_A), 1.0),
                (make_labels(UP_B), 0.0),
                (make_labels(TEMP), temperature(i)),
                (make_labels(DUP_A), 1.0),
                (make_labels(DUP_B), 2.0),
            ],
        )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "api.db", fsync="never", retention_seconds=None) as opened:
        fill(opened)
        yield opened


def serve(api: PrometheusAPI) -> tuple[str, Callable[[], None]]:
    return serve_asgi(Starlette(routes=[Mount("/api/v1", app=api)]))


@pytest.fixture
def base_url(store: Store) -> Iterator[str]:
    api = PrometheusAPI(store, clock=lambda: END / 1000, metadata=lambda: METADATA)
    url, stop = serve(api)
    yield url
    stop()


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url + "/api/v1", timeout=30) as client:
        yield client


@pytest.fixture
def prom(base_url: str) -> Iterator[PrometheusConnect]:
    with PrometheusConnect(url=base_url, disable_ssl=True) as client:
        yield client


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["status"] == "error", body
    assert response.headers["content-type"] == "application/json"
    return response.status_code, body["errorType"], body["error"]


def grafana_form(params: dict[str, str]) -> str:
    """A form body as Grafana's Go backend encodes it (``url.Values.Encode``: sorted)."""
    return urlencode(sorted(params.items()))


# -- formatting and parsing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (100.0, "100"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (2 / 3, "0.6666666666666666"),
        (1e-6, "0.000001"),
        (1e-7, "1e-07"),
        (1.5e-7, "1.5e-07"),
        (1e16, "10000000000000000"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_values_are_formatted_as_prometheus_formats_them(value: float, text: str) -> None:
    assert format_value(value) == text


@given(st.floats(allow_nan=False))
def test_formatted_values_read_back_exactly(value: float) -> None:
    text = format_value(value).replace("Inf", "inf")
    assert float(text) == value


@pytest.mark.parametrize(
    ("t_ms", "text"),
    [
        (0, "0"),
        (4000, "4"),
        (1500, "1.500"),
        (1005, "1.005"),
        (-1500, "-1.500"),
        (T0, "1700000000"),
    ],
)
def test_timestamps_are_seconds_with_milliseconds_unless_whole(t_ms: int, text: str) -> None:
    assert format_timestamp(t_ms) == text


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1700000000", T0),
        ("1700000000.123", T0 + 123),
        ("-1.5", -1500),
        ("2023-11-14T22:13:20Z", T0),
        ("2023-11-15T00:13:20.123456789+02:00", T0 + 123),
        ("-292273086-05-16T16:47:06Z", MIN_TIME_MS),
        ("292277025-08-18T07:12:54.999999999Z", MAX_TIME_MS),
    ],
)
def test_times_are_unix_seconds_or_rfc3339(text: str, ms: int) -> None:
    assert parse_time(text) == ms


@pytest.mark.parametrize("text", ["", "abc", "NaN", "1e400", "2023-11-14 22:13:20"])
def test_bad_times_are_refused_with_prometheus_wording(text: str) -> None:
    with pytest.raises(ValueError, match=f'^cannot parse "{text}" to a valid timestamp$'):
        parse_time(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m", 300), ("1h30m", 5400), ("1d", 86400), ("15", 15), ("0.5", 0.5), ("0", 0)],
)
def test_durations_are_prometheus_durations_or_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds * 1e9


def test_bad_durations_are_refused_with_prometheus_wording() -> None:
    with pytest.raises(ValueError, match=r'^cannot parse "5x" to a valid duration$'):
        parse_duration("5x")
    with pytest.raises(ValueError, match="It overflows int64"):
        parse_duration("1e30")


def test_escaped_label_names_are_unescaped() -> None:
    assert unescape_label_name("U__a_2e_b") == "a.b"
    assert unescape_label_name("U__a__b") == "a_b"
    assert unescape_label_name("U__bad_zz_") == "U__bad_zz_"
    assert unescape_label_name("job") == "job"


# -- prometheus-api-client -------------------------------------------------------------


def test_client_instant_query_returns_every_series_with_its_value(prom: PrometheusConnect) -> None:
    result = prom.custom_query("up", params={"time": END_S})
    assert sorted(result, key=lambda r: r["metric"]["instance"]) == [
        {"metric": UP_A, "value": [END_S, "1"]},
        {"metric": UP_B, "value": [END_S, "0"]},
    ]


def test_client_instant_query_defaults_to_now(prom: PrometheusConnect) -> None:
    result = prom.custom_query("temperature_celsius")
    assert result == [{"metric": TEMP, "value": [END_S, "20"]}]


def test_client_range_query_returns_exact_increases(prom: PrometheusConnect) -> None:
    start = datetime.fromtimestamp(END_S - 60, UTC)
    end = datetime.fromtimestamp(END_S, UTC)
    result = prom.custom_query_range("increase(http_requests_total[1m])", start, end, step="15s")
    expected_times = [END_S - 60 + 15 * k for k in range(5)]
    by_instance = {r["metric"]["instance"]: r for r in result}
    assert by_instance["a:9090"] == {
        "metric": {"instance": "a:9090", "job": "api", "method": "get"},
        "values": [[t, "120"] for t in expected_times],
    }
    assert by_instance["b:9090"]["values"] == [[t, "60"] for t in expected_times]


def test_client_post_queries_give_the_same_answers(base_url: str) -> None:
    with PrometheusConnect(url=base_url, method="POST") as client:
        assert client.custom_query("sum(up)", params={"time": END_S}) == [
            {"metric": {}, "value": [END_S, "1"]}
        ]


def test_client_current_value_selects_by_labels(prom: PrometheusConnect) -> None:
    result = prom.get_current_metric_value("up", {"instance": "b:9090"})
    assert result == [{"metric": UP_B, "value": [END_S, "0"]}]


def test_client_range_data_returns_the_raw_samples(prom: PrometheusConnect) -> None:
    start = datetime.fromtimestamp(END_S - 60, UTC)
    end = datetime.fromtimestamp(END_S, UTC)
    result = prom.get_metric_range_data("temperature_celsius", start_time=start, end_time=end)
    samples = [[(END - k * STEP_MS) // 1000, temperature(N - 1 - k)] for k in (3, 2, 1, 0)]
    assert result == [
        {"metric": TEMP, "values": [[t, format_value(v)] for t, v in samples]},
    ]


def test_client_lists_metrics_label_names_and_values(prom: PrometheusConnect) -> None:
    assert prom.all_metrics() == METRICS
    assert prom.get_label_names() == ["__name__", "instance", "job", "method", "room"]
    assert prom.get_label_values("job") == ["api", "dup"]
    assert prom.get_label_values("instance") == ["a:9090", "b:9090"]


def test_client_reads_metric_metadata(prom: PrometheusConnect) -> None:
    assert prom.get_metric_metadata("temperature_celsius") == [
        {
            "metric_name": "temperature_celsius",
            "type": "gauge",
            "help": "Room temperature.",
            "unit": "celsius",
        }
    ]


def test_client_lists_series_in_a_time_range(prom: PrometheusConnect) -> None:
    start = datetime.fromtimestamp(END_S - 60, UTC)
    end = datetime.fromtimestamp(END_S, UTC)
    series = prom.get_series(start, end, params={"match[]": "up"})
    assert sorted(series, key=lambda s: s["instance"]) == [UP_A, UP_B]


# -- Grafana's Prometheus data source ----------------------------------------------------


def test_grafana_health_check_gets_the_exact_prometheus_answer(http: httpx.Client) -> None:
    # Grafana's "Save & test": an instant query of 1+1 at time 4, form-POSTed.
    body = grafana_form({"query": "1+1", "time": "4"})
    response = http.post("/query", content=body, headers={**GRAFANA_HEADERS, **FORM})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.text == '{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}'


def test_grafana_buildinfo_identifies_a_prometheus(http: httpx.Client) -> None:
    response = http.get("/status/buildinfo", headers=GRAFANA_HEADERS)
    data = response.json()["data"]
    assert response.status_code == 200
    assert data["version"].startswith("3.")
    assert {"revision", "branch", "buildUser", "buildDate", "goVersion"} <= set(data)
    assert not data.get("features")  # no features: Grafana treats it as Prometheus, not Mimir


def test_grafana_time_series_panel_query_range(http: httpx.Client) -> None:
    # A panel over the last 5 minutes, step 15 s, as Grafana's backend POSTs it.
    start, end = END_S - 300, END_S
    body = grafana_form(
        {
            "query": 'rate(http_requests_total{job="api"}[1m])',
            "start": str(start),
            "end": str(end),
            "step": "15",
        }
    )
    headers = {**GRAFANA_HEADERS, **FORM, "X-Dashboard-Uid": "d1", "X-Panel-Id": "2"}
    response = http.post("/query_range", content=body, headers=headers)
    assert response.status_code == 200
    assert response.headers.get("content-encoding") == "gzip"  # Grafana accepts gzip
    payload = response.json()
    assert payload["status"] == "success" and "warnings" not in payload
    assert payload["data"]["resultType"] == "matrix"
    result = sorted(payload["data"]["result"], key=lambda r: r["metric"]["instance"])
    times = list(range(start, end + 1, 15))
    assert result == [
        {
            "metric": {"instance": "a:9090", "job": "api", "method": "get"},
            "values": [[t, rate_1m(30)] for t in times],
        },
        {
            "metric": {"instance": "b:9090", "job": "api", "method": "post"},
            "values": [[t, rate_1m(15)] for t in times],
        },
    ]


def test_responses_are_gzipped_for_clients_that_accept_it(base_url: str) -> None:
    params = {"query": "http_requests_total", "start": str(END_S - 600), "end": str(END_S)}
    url = f"{base_url}/api/v1/query_range"
    headers = {"Accept-Encoding": "gzip"}
    with httpx.stream("GET", url, params={**params, "step": "15"}, headers=headers) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(raw))["status"] == "success"


def test_grafana_metric_name_lookup(http: httpx.Client) -> None:
    params = {"start": str(END_S - 3600), "end": str(END_S), "limit": "40000"}
    response = http.get("/label/__name__/values", params=params, headers=GRAFANA_HEADERS)
    assert response.json() == {"status": "success", "data": METRICS}


def test_grafana_label_names_by_post(http: httpx.Client) -> None:
    body = grafana_form({"start": str(END_S - 3600), "end": str(END_S), "limit": "40000"})
    response = http.post("/labels", content=body, headers={**GRAFANA_HEADERS, **FORM})
    assert response.json()["data"] == ["__name__", "instance", "job", "method", "room"]


def test_grafana_label_names_of_a_metric(http: httpx.Client) -> None:
    params = {"match[]": "temperature_celsius", "start": str(END_S - 3600), "end": str(END_S)}
    response = http.get("/labels", params=params, headers=GRAFANA_HEADERS)
    assert response.json()["data"] == ["__name__", "room"]


def test_grafana_label_values_with_match(http: httpx.Client) -> None:
    params = {"match[]": 'http_requests_total{method="post"}', "start": str(END_S - 600)}
    response = http.get("/label/instance/values", params=params)
    assert response.json()["data"] == ["b:9090"]


def test_grafana_series_of_everything(http: httpx.Client) -> None:
    params = {
        "match[]": '{__name__!=""}',
        "start": str(END_S - 3600),
        "end": str(END_S),
        "limit": "40000",
    }
    response = http.get("/series", params=params, headers=GRAFANA_HEADERS)
    data = response.json()["data"]
    assert sorted(data, key=lambda s: sorted(s.items())) == sorted(
        [A, B, UP_A, UP_B, TEMP, DUP_A, DUP_B], key=lambda s: sorted(s.items())
    )


def test_grafana_metadata_for_the_query_editor(http: httpx.Client) -> None:
    response = http.get("/metadata", headers=GRAFANA_HEADERS)
    assert response.json() == {"status": "success", "data": METADATA}


def test_grafana_exemplar_probe_answers_success(http: httpx.Client) -> None:
    now_ms = str(END)  # Grafana sends milliseconds here
    params = {"query": "test", "start": str(END - 1_800_000), "end": now_ms}
    response = http.get("/query_exemplars", params=params)
    assert response.json() == {"status": "success", "data": []}


def test_series_limit_truncates_with_a_warning(http: httpx.Client) -> None:
    response = http.get("/series", params={"match[]": "up", "limit": "1"})
    assert response.json() == {
        "status": "success",
        "data": [UP_A],
        "warnings": ["results truncated due to limit"],
    }


def test_series_outside_the_time_range_are_left_out(http: httpx.Client) -> None:
    params = {"match[]": "up", "start": "1000", "end": "2000"}
    assert http.get("/series", params=params).json()["data"] == []


def test_series_of_several_selectors_are_merged(http: httpx.Client) -> None:
    params = [
        ("match[]", "up"),
        ("match[]", '{__name__="up",instance="a:9090"}'),
        ("match[]", "dup_a"),
    ]
    data = http.get("/series", params=params).json()["data"]
    assert sorted(data, key=lambda s: sorted(s.items())) == sorted(
        [UP_A, UP_B, DUP_A], key=lambda s: sorted(s.items())
    )


def test_form_body_wins_over_the_url_as_in_go(http: httpx.Client) -> None:
    response = http.post(
        "/query", params={"query": "up", "time": str(END_S)}, content="query=2", headers=FORM
    )
    assert response.json()["data"] == {"resultType": "scalar", "result": [END_S, "2"]}


def test_instant_query_of_a_range_selector_is_a_matrix(http: httpx.Client) -> None:
    params = {"query": "temperature_celsius[30s]", "time": str(END_S)}
    data = http.get("/query", params=params).json()["data"]
    assert data == {
        "resultType": "matrix",
        "result": [
            {"metric": TEMP, "values": [[END_S - 15, "21.5"], [END_S, "20"]]},
        ],
    }


def test_string_result(http: httpx.Client) -> None:
    data = http.get("/query", params={"query": '"hello"', "time": "12.5"}).json()["data"]
    assert data == {"resultType": "string", "result": [12.5, "hello"]}


def test_query_limit_truncates_with_a_warning(http: httpx.Client) -> None:
    body = http.get("/query", params={"query": "up", "limit": "1"}).json()
    assert len(body["data"]["result"]) == 1
    assert body["warnings"] == ["results truncated due to limit"]


def test_stats_are_returned_when_asked(http: httpx.Client) -> None:
    body = http.get("/query", params={"query": "up", "stats": "all"}).json()
    stats = body["data"]["stats"]
    assert stats["samples"]["totalQueryableSamples"] >= 2
    assert stats["timings"]["execTotalTime"] >= 0


def test_format_query_prettifies(http: httpx.Client) -> None:
    body = http.get("/format_query", params={"query": "sum(rate(up[5m]))by(job)"}).json()
    assert body["status"] == "success"
    assert "sum by (job)" in body["data"]


def test_runtimeinfo_names_the_retention(tmp_path: Path) -> None:
    with Store(tmp_path / "r.db", fsync="never") as store:
        url, stop = serve(PrometheusAPI(store))
        try:
            data = httpx.get(f"{url}/api/v1/status/runtimeinfo").json()["data"]
        finally:
            stop()
    assert data["storageRetention"] == "15d"
    assert data["startTime"].endswith("Z")


# -- errors ------------------------------------------------------------------------------


def test_syntax_error_is_bad_data_with_position(http: httpx.Client) -> None:
    status, kind, message = error_of(http.get("/query", params={"query": "sum(up"}))
    assert (status, kind) == (400, "bad_data")
    assert message.startswith('invalid parameter "query": 1:')
    assert "parse error" in message


def test_unknown_function_is_bad_data(http: httpx.Client) -> None:
    status, kind, message = error_of(http.get("/query", params={"query": "foo(up)"}))
    assert (status, kind) == (400, "bad_data")
    assert message.startswith('invalid parameter "query": ')
    assert "unknown function with name" in message and "foo" in message


def test_type_error_is_bad_data(http: httpx.Client) -> None:
    status, kind, message = error_of(http.get("/query", params={"query": "rate(up)"}))
    assert (status, kind) == (400, "bad_data")
    assert message.startswith('invalid parameter "query": ')


def test_range_query_of_a_range_vector_is_refused(http: httpx.Client) -> None:
    params = {"query": "up[5m]", "start": "0", "end": "60", "step": "15"}
    assert error_of(http.get("/query_range", params=params)) == (
        400,
        "bad_data",
        'invalid parameter "query": invalid expression type "range vector" for range query, '
        "must be Scalar or instant Vector",
    )


def test_duplicate_series_are_an_execution_error(http: httpx.Client) -> None:
    params = {"query": 'abs({__name__=~"dup_a|dup_b"})', "time": str(END_S)}
    status, kind, message = error_of(http.get("/query", params=params))
    assert (status, kind) == (422, "execution")
    assert "vector cannot contain metrics with the same labelset" in message


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        (
            "/query",
            {"query": "up", "time": "abc"},
            """invalid parameter "time": Invalid time value for 'time': """
            'cannot parse "abc" to a valid timestamp',
        ),
        (
            "/query_range",
            {"query": "up", "start": "abc", "end": "60", "step": "15"},
            'invalid parameter "start": cannot parse "abc" to a valid timestamp',
        ),
        (
            "/query_range",
            {"query": "up", "start": "0", "end": "", "step": "15"},
            'invalid parameter "end": cannot parse "" to a valid timestamp',
        ),
        (
            "/query_range",
            {"query": "up", "start": "60", "end": "0", "step": "15"},
            'invalid parameter "end": end timestamp must not be before start time',
        ),
        (
            "/query_range",
            {"query": "up", "start": "0", "end": "60"},
            'invalid parameter "step": cannot parse "" to a valid duration',
        ),
        (
            "/query_range",
            {"query": "up", "start": "0", "end": "60", "step": "0"},
            'invalid parameter "step": zero or negative query resolution step widths are not '
            "accepted. Try a positive integer",
        ),
        (
            "/query_range",
            {"query": "up", "start": "0", "end": "60", "step": "-15s"},
            'invalid parameter "step": cannot parse "-15s" to a valid duration',
        ),
        (
            "/query_range",
            {"query": "up", "start": "0", "end": "11001", "step": "1"},
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
            "query resolution (?step=XX)",
        ),
        (
            "/query_range",
            {"query": "up", "start": "0", "end": "1e10", "step": "15"},
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
            "query resolution (?step=XX)",
        ),
        (
            "/query",
            {"query": "up", "timeout": "soon"},
            'invalid parameter "timeout": cannot parse "soon" to a valid duration',
        ),
        (
            "/query",
            {"query": "up", "lookback_delta": "x"},
            'error parsing lookback delta duration: cannot parse "x" to a valid duration',
        ),
        (
            "/query",
            {"query": "up", "limit": "-1"},
            'invalid parameter "limit": limit must be non-negative',
        ),
        (
            "/query",
            {"query": "up", "limit": "ten"},
            'invalid parameter "limit": strconv.Atoi: parsing "ten": invalid syntax',
        ),
        ("/series", {}, "no match[] parameter provided"),
        (
            "/series",
            {"match[]": '{job=""}'},
            'invalid parameter "match[]": match[] must contain at least one non-empty matcher',
        ),
        (
            "/series",
            {"match[]": "up", "start": "yesterday"},
            """invalid parameter "start": Invalid time value for 'start': """
            'cannot parse "yesterday" to a valid timestamp',
        ),
        ("/labels", {"match[]": "{}"}, "match[] must contain at least one non-empty matcher"),
        (
            "/label/job/values",
            {"match[]": '{job=~".*"}'},
            "match[] must contain at least one non-empty matcher",
        ),
        ("/metadata", {"limit": "many"}, "limit must be a number"),
        (
            "/query_exemplars",
            {"query": "up", "start": "60", "end": "0"},
            "end timestamp must not be before start timestamp",
        ),
    ],
)
def test_bad_parameters_are_bad_data_with_prometheus_wording(
    http: httpx.Client, path: str, params: dict[str, str], message: str
) -> None:
    assert error_of(http.get(path, params=params)) == (400, "bad_data", message)


def test_bad_match_selector_names_the_parameter(http: httpx.Client) -> None:
    for selector in ("up[5m]", "sum(up)", "up{"):
        status, kind, message = error_of(http.get("/series", params={"match[]": selector}))
        assert (status, kind) == (400, "bad_data")
        assert message.startswith('invalid parameter "match[]": 1:'), message


def test_tiny_timeout_is_a_timeout_error(http: httpx.Client) -> None:
    params = {"query": "rate(http_requests_total[5m])", "timeout": "0.000000001"}
    status, kind, message = error_of(http.get("/query", params=params))
    assert (status, kind) == (503, "timeout")
    assert message.startswith("query timed out in ")


def test_exactly_eleven_thousand_steps_are_allowed(http: httpx.Client) -> None:
    params = {"query": "1", "start": "0", "end": "11000", "step": "1"}
    response = http.get("/query_range", params=params)
    assert response.status_code == 200, response.text
    assert len(response.json()["data"]["result"][0]["values"]) == 11_001


def test_wrong_method_is_405(http: httpx.Client) -> None:
    assert http.post("/metadata").status_code == 405
    assert http.get("/nowhere").status_code == 404


def test_server_keeps_answering_after_bad_requests(http: httpx.Client) -> None:
    for query in ("sum(", "foo(", ")", "up[5m] + ", "\x00", "{" * 10_000, "1 / 0"):
        http.get("/query", params={"query": query})
        http.post("/query_range", content=b"\xff\xfe", headers=FORM)
    http.get("/query", params={"query": "up", "time": "1e400"})
    http.get("/query_range", params={"query": "up", "start": "0", "end": "1e300", "step": "1e-300"})
    response = http.get("/query", params={"query": "1", "time": "1"})
    assert response.json() == {
        "status": "success",
        "data": {"resultType": "scalar", "result": [1, "1"]},
    }


def test_lookback_delta_parameter_changes_the_lookback(http: httpx.Client) -> None:
    later = str(END_S + 120)  # two minutes after the last sample
    assert (
        len(http.get("/query", params={"query": "up", "time": later}).json()["data"]["result"]) == 2
    )
    short = {"query": "up", "time": later, "lookback_delta": "1m"}
    assert http.get("/query", params=short).json()["data"]["result"] == []


# -- metadata from a registry, and the demo app ------------------------------------------


def test_registry_metadata_uses_the_exposed_names() -> None:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    registry.counter("jobs_done_total", "Jobs finished.")
    registry.gauge("queue_depth", "Jobs waiting.")
    registry.histogram("job_seconds", "Time per job.", buckets=[0.1, 1.0])
    metadata = registry_metadata(registry)()
    assert metadata["jobs_done_total"] == [
        {"type": "counter", "help": "Jobs finished.", "unit": ""}
    ]
    assert metadata["queue_depth"] == [{"type": "gauge", "help": "Jobs waiting.", "unit": ""}]
    assert metadata["job_seconds"] == [{"type": "histogram", "help": "Time per job.", "unit": ""}]


def test_demo_app_serves_the_api_over_its_store(tmp_path: Path) -> None:
    from inferwatch.demo import create_app
    from inferwatch.scrape import ScrapeManager

    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    monitor = Monitor(model="digits", version="1", registry=registry)
    with Store(tmp_path / "demo.db", fsync="never") as store:
        app = create_app(monitor=monitor, store=store)
        url, stop = serve_asgi(app)
        try:
            row = [0.0] * 64
            assert httpx.post(f"{url}/predict", json={"instances": [row]}).status_code == 200
            now_ms = int(time.time() * 1000)
            ScrapeManager(store, registry=registry).collect_registry(now_ms)
            query = {
                "query": 'inferwatch_inferences_total{outcome="success"}',
                "time": str(now_ms / 1000),
            }
            result = httpx.get(f"{url}/api/v1/query", params=query).json()["data"]["result"]
            meta = httpx.get(
                f"{url}/api/v1/metadata", params={"metric": "inferwatch_inferences_total"}
            ).json()["data"]
        finally:
            stop()
    assert [(r["metric"]["model"], r["value"][1]) for r in result] == [("digits", "1")]
    assert meta["inferwatch_inferences_total"][0]["type"] == "counter"
