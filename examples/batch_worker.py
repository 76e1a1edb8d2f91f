"""A batch worker monitored by inferwatch: no web framework, metrics on their own port.

Run it::

    python examples/batch_worker.py --iterations 100 --port 9108 --linger 60
    curl -s localhost:9108/metrics | grep inferwatch_inference

Two worker threads share one model "slot" (think: one GPU). Each batch is timed with
``monitor.inference(batch_size=...)``; the wait for the slot is queue time and the
model call is compute time, split by ``mark_queued_done()``, so
``inferwatch_inference_queue_duration_seconds`` shows the contention.
"""

from __future__ import annotations

import argparse
import math
import random
import threading
import time

from inferwatch import Monitor

monitor = Monitor(model="embedder", version="3")


def embed(batch: list[list[float]]) -> list[list[float]]:
    """The "model": L2-normalises each vector (stands in for a real forward pass)."""
    out = []
    for vector in batch:
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        out.append([x / norm for x in vector])
    return out


def work(iterations: int, batch_size: int, slot: threading.Semaphore, seed: int) -> None:
    """Process ``iterations`` batches of ``batch_size`` random vectors."""
    rng = random.Random(seed)
    for _ in range(iterations):
        batch = [[rng.gauss(0.0, 1.0) for _ in range(32)] for _ in range(batch_size)]
        # Waiting for the slot is queue time; after mark_queued_done() it is compute time.
        with monitor.inference(batch_size=len(batch)) as inf, slot:
            inf.mark_queued_done()
            embed(batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000, help="batches per worker")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=9108, help="/metrics port (0: any free)")
    parser.add_argument(
        "--linger", type=float, default=0.0, help="seconds to keep serving /metrics at the end"
    )
    args = parser.parse_args(argv)

    server = monitor.serve_metrics(port=args.port)
    print(f"metrics at {server.url}", flush=True)
    slot = threading.Semaphore(1)
    threads = [
        threading.Thread(
            target=work, args=(args.iterations, args.batch_size, slot, seed), daemon=True
        )
        for seed in range(args.workers)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        total = args.iterations * args.workers
        print(f"processed {total} batches ({total * args.batch_size} items)", flush=True)
    except KeyboardInterrupt:
        server.stop()
        print("interrupted", flush=True)
        return 130
    try:
        if args.linger > 0:
            print(f"serving {server.url} for {args.linger:g} s more (Ctrl-C ends)", flush=True)
            time.sleep(args.linger)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
