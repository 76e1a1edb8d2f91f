"""``inferwatch loadtest`` end to end against a real endpoint, and its input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferwatch.cli import app
from tests.loadtest.conftest import Endpoint
from tests.support import free_port


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["loadtest", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_report_of_an_open_loop_post(endpoint: Endpoint, url: str, tmp_path: Path) -> None:
    payload = tmp_path / "row.json"
    payload.write_bytes(b'{"pixels": [0, 3, 16]}')
    code, out, err = _run(
        f"{url}/predict",
        "--rate", "50",
        "--duration", "1s",
        "--warmup", "200ms",
        "--method", "POST",
        "--payload", str(payload),
        "-H", "X-Model: digits",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["mode"] == "open"
    assert report["requested_rate"] == 50
    assert report["requests"] + report["unsent"] == 50
    assert report["errors"] == {}
    assert report["latency"]["count"] == report["requests"]
    for name in ("p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms", "mean_ms"):
        assert report["latency"][name] > 0 and report["service_time"][name] > 0
    assert endpoint.last is not None
    method, path, headers, body = endpoint.last
    assert (method, path, body) == ("POST", "/predict", payload.read_bytes())
    assert headers[b"x-model"] == b"digits"
    assert headers[b"content-type"] == b"application/json"


def test_text_report_and_plot(endpoint: Endpoint, url: str, tmp_path: Path) -> None:
    endpoint.fail_every = 5
    png = tmp_path / "latency.png"
    code, out, err = _run(url, "--concurrency", "2", "--duration", "1", "--plot", str(png))
    assert code == 0, err
    assert "closed loop with 2 connections" in out
    assert "HTTP 500:" in out
    assert "p99.9" in out
    assert f"plot written to {png}" in out

    import matplotlib.image

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] > 500 and pixels.shape[1] > 500


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://host/x"], "bad URL 'ftp://host/x'"),
        (["http://127.0.0.1:{port}/x"], "cannot connect to 127.0.0.1:{port}"),
        (["http://no-such-host.invalid/"], "cannot resolve host 'no-such-host.invalid'"),
        (["{url}", "--payload", "/no/such/payload.json"], "/no/such/payload.json"),
        (["{url}", "--duration", "ten"], "--duration: 'ten' is not a duration"),
        (["{url}", "-H", "NoColon"], "bad header 'NoColon'"),
        (["{url}", "--rate", "5", "--concurrency", "2"], "--rate: give either"),
        (["{url}", "--concurrency", "0"], "--concurrency: concurrency must be at least 1"),
        (["{url}", "--plot", "/no/such/dir/p.png"], "folder /no/such/dir does not exist"),
    ],
)
def test_bad_input_is_one_error_line_naming_it(url: str, args: list[str], message: str) -> None:
    port = str(free_port())
    args = [a.format(url=url, port=port) for a in args]
    code, out, err = _run(*args)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert message.format(port=port) in lines[0]
