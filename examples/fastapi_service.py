"""A FastAPI model service monitored by inferwatch: two lines added to a plain service.

Run it::

    python examples/fastapi_service.py --port 8000
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
        -d '{"texts": ["great service, love it", "slow and broken"]}'
    curl -s localhost:8000/metrics | grep inferwatch_

The "model" is a tiny word-list sentiment scorer so that the example needs nothing
beyond FastAPI; put your own model call where ``score`` is.
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from inferwatch import Monitor, Rejected

POSITIVE = frozenset({"good", "great", "love", "excellent", "fast", "happy", "nice"})
NEGATIVE = frozenset({"bad", "awful", "hate", "slow", "broken", "sad", "terrible"})
MAX_BATCH = 64

monitor = Monitor(model="sentiment", version="1")
app = FastAPI(title="sentiment")
monitor.instrument(app)  # per-route HTTP metrics, and GET /metrics


@monitor.track(batch_size=len)  # latency, outcome, and items = len(texts)
def score(texts: list[str]) -> list[float]:
    """Sentiment in -1..1 for each text; sheds batches that are too large."""
    if len(texts) > MAX_BATCH:
        raise Rejected(f"batch of {len(texts)} is over the limit of {MAX_BATCH}")
    scores = []
    for text in texts:
        words = [w.strip(".,!?").lower() for w in text.split()]
        pos = sum(w in POSITIVE for w in words)
        neg = sum(w in NEGATIVE for w in words)
        scores.append((pos - neg) / max(pos + neg, 1))
    return scores


class PredictRequest(BaseModel):
    texts: list[str] = Field(min_length=1)


class PredictResponse(BaseModel):
    scores: list[float]


@app.post("/predict")
def predict(body: PredictRequest) -> PredictResponse:
    return PredictResponse(scores=score(body.texts))


@app.exception_handler(Rejected)
async def rejected(request: Request, exc: Exception) -> JSONResponse:
    """A shed request is a 503: it counts as ``outcome="rejected"``, not as an error."""
    return JSONResponse(status_code=503, content={"detail": str(exc)})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
