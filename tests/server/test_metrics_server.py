from __future__ import annotations

import httpx

from inferwatch import Monitor, Registry


def test_serve_metrics_answers_over_http() -> None:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    monitor = Monitor("worker", "2", registry=registry)

    @monitor.track(batch_size=len)
    def work(batch: list[int]) -> int:
        return sum(batch)

    work([1, 2, 3])
    server = monitor.serve_metrics(port=0)
    try:
        assert server.url.endswith("/metrics")
        text = httpx.get(server.url).text
        assert 'inferwatch_inference_items_total{model="worker",version="2"} 3.0' in text
        om = httpx.get(server.url, headers={"Accept": "application/openmetrics-text"})
        assert om.text.endswith("# EOF\n")
        assert httpx.get(server.url.replace("/metrics", "/nope")).status_code == 404
    finally:
        server.stop()
