"""The app that the multi-worker tests serve with uvicorn --workers and gunicorn -w."""

from __future__ import annotations

import os

from fastapi import FastAPI

from inferwatch import Monitor

monitor = Monitor("workers-test", "1")
app = FastAPI()


@monitor.track
def model(x: int) -> int:
    return x + 1


@app.get("/predict/{x}")
def predict(x: int) -> dict[str, int]:
    return {"y": model(x), "pid": os.getpid()}


monitor.instrument(app)
