"""A PyTorch model monitored by inferwatch (CPU is enough).

Run it::

    pip install torch
    python examples/pytorch_model.py --iterations 200 --port 9108 --linger 30
    curl -s localhost:9108/metrics | grep inferwatch_inference

A tiny multi-layer perceptron with fixed random weights stands in for a real model:
``@monitor.track(batch_size=len)`` records the latency, the outcome and the number of
rows of every forward pass.
"""

from __future__ import annotations

import argparse
import sys
import time

try:
    import torch
    from torch import nn
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    message = "examples/pytorch_model.py needs PyTorch: pip install torch"
    if __name__ == "__main__":
        sys.exit(message)
    raise ModuleNotFoundError(message, name="torch") from exc

from inferwatch import Monitor

N_FEATURES = 8
N_CLASSES = 3

monitor = Monitor(model="tiny-mlp", version="1")


def build_model(seed: int = 0) -> nn.Module:
    """A small classifier in eval mode, with weights fixed by ``seed``."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(N_FEATURES, 32), nn.ReLU(), nn.Linear(32, N_CLASSES), nn.Softmax(dim=-1)
    )
    return model.eval()


model = build_model()


@monitor.track(batch_size=len)
def predict(batch: torch.Tensor) -> torch.Tensor:
    """Class probabilities for a ``(rows, 8)`` float tensor."""
    with torch.inference_mode():
        return model(batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--port", type=int, default=9108, help="/metrics port (0: any free)")
    parser.add_argument(
        "--linger", type=float, default=0.0, help="seconds to keep serving /metrics at the end"
    )
    args = parser.parse_args(argv)

    server = monitor.serve_metrics(port=args.port)
    print(f"metrics at {server.url}", flush=True)
    try:
        for _ in range(args.iterations):
            predict(torch.randn(args.batch_size, N_FEATURES))
        print(f"ran {args.iterations} batches of {args.batch_size}", flush=True)
        if args.linger > 0:
            time.sleep(args.linger)
    except KeyboardInterrupt:
        return 130
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
