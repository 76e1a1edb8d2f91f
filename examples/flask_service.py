"""A Flask model service monitored by inferwatch.

Run it::

    python examples/flask_service.py --port 5000
    curl -s localhost:5000/predict/house-price -H 'content-type: application/json' \\
        -d '{"rows": [[120, 3, 1995], [60, 1, 1970]]}'
    curl -s localhost:5000/metrics | grep inferwatch_

The "model" is a linear formula with fixed coefficients (square metres, rooms, year
built), so the example needs nothing beyond Flask. The HTTP metrics are labelled with
the route template, ``/predict/<name>``, never with the raw path.
"""

from __future__ import annotations

import argparse
from typing import Any

from flask import Flask, jsonify, request

from inferwatch import Monitor

COEFFICIENTS = (2_500.0, 8_000.0, 600.0)
INTERCEPT = -1_150_000.0

monitor = Monitor(model="house-price", version="2024-06")
app = Flask(__name__)
monitor.instrument(app)  # per-route HTTP metrics, and GET /metrics


@monitor.track(batch_size=len)
def estimate(rows: list[list[float]]) -> list[float]:
    """Price estimate for each row of (square metres, rooms, year built)."""
    return [INTERCEPT + sum(c * x for c, x in zip(COEFFICIENTS, row, strict=True)) for row in rows]


def _is_row(row: Any) -> bool:
    return (
        isinstance(row, list)
        and len(row) == len(COEFFICIENTS)
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in row)
    )


@app.post("/predict/<name>")
def predict(name: str) -> Any:
    if name != monitor.model:
        return jsonify(error=f"unknown model {name!r}; try {monitor.model!r}"), 404
    body = request.get_json(silent=True) or {}
    rows = body.get("rows")
    if not isinstance(rows, list) or not rows or not all(map(_is_row, rows)):
        return jsonify(error="'rows' must be a non-empty list of [sqm, rooms, year] rows"), 422
    return jsonify(prices=estimate(rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    app.run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
