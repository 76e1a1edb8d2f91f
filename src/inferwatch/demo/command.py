"""``inferwatch fault NAME``: turn a fault of a running ``inferwatch demo`` on or off.

::

    inferwatch fault errors          # the model fails: HighErrorRatio fires
    inferwatch fault errors --off    # ... and resolves
    inferwatch fault clear           # every fault off
    inferwatch fault gpu --url http://127.0.0.1:9000

It posts to the demo's ``/faults`` (the dashboard's toggles do the same) and prints
which faults are on afterwards. Imports nothing heavy: the CLI loads it at start-up.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["FAULTS", "fault", "fault_key"]

#: The fault names of the command line and the keys of ``/faults`` they set.
FAULTS: dict[str, str] = {
    "latency": "latency",
    "errors": "errors",
    "input-drift": "input_drift",
    "model": "model",
    "leak": "leak",
    "gpu": "gpu",
}
#: What each fault does, and the alerts it raises.
EFFECTS: dict[str, str] = {
    "latency": "each request takes about 300 ms more (HighLatencyP99, LatencyAboveBaseline)",
    "errors": "the model fails; the circuit breaker opens (HighErrorRatio)",
    "input-drift": "the input pixels are dimmed and shifted (InputDrift, then LowAccuracy)",
    "model": "a bad model answers the next digit (LowAccuracy, ModelNotReady)",
    "leak": "every request keeps 1 MiB (MemoryLeak)",
    "gpu": "the GPU is 97% full, 100% busy, at 90 °C (GPUMemoryPressure, GPUHot)",
}


def fault_key(name: str) -> str:
    """The ``/faults`` key of a fault name (``input-drift`` or ``input_drift``);
    :class:`~inferwatch.ConfigError` naming the choices for any other name."""
    from inferwatch._errors import ConfigError

    key = FAULTS.get(name) or FAULTS.get(name.replace("_", "-"))
    if key is None:
        raise ConfigError(
            f"unknown fault {name!r}; choose one of {', '.join(FAULTS)} (or 'clear')",
            field="fault",
            value=name,
        )
    return key


def fault(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="latency, errors, input-drift, model, leak, gpu; or clear (every fault off).",
            show_default=False,
        ),
    ],
    off: Annotated[bool, typer.Option("--off", help="Turn the fault off instead.")] = False,
    url: Annotated[
        str, typer.Option(help="The base URL of the running demo.")
    ] = "http://127.0.0.1:8000",
) -> None:
    """Turn a fault of a running `inferwatch demo` on (or off with --off), to watch an
    alert fire and resolve."""
    import contextlib
    import json
    import urllib.error
    import urllib.request

    from inferwatch._errors import ConfigError
    from inferwatch.cli import _echo, _fail

    if name == "clear":
        if off:
            _fail("'clear' turns every fault off; it takes no --off")
        method, body = "DELETE", None
    else:
        try:
            key = fault_key(name)
        except ConfigError as exc:
            _fail(str(exc))
        name = next(n for n, k in FAULTS.items() if k == key)
        method, body = "POST", json.dumps({key: not off}).encode()
    target = url.rstrip("/") + "/faults"
    if not target.startswith(("http://", "https://")):
        _fail(f"--url: not an http(s) URL (got {url!r})")
    request = urllib.request.Request(
        target, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            state = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(json.loads(detail).get("detail", detail))
        _fail(f"{method} {target}: {exc.code} {detail}")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        _fail(f"cannot reach the demo at {target}: {reason} (is `inferwatch demo` running?)")
    if name != "clear":
        _echo(f"{name} {'off' if off else 'on'}: {EFFECTS[name]}")
    on = [n for n, key in FAULTS.items() if state.get(key)]
    _echo("faults on: " + (", ".join(on) if on else "none"))
