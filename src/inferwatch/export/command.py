"""``inferwatch export``: write the scale-out stack's files (registered in ``cli.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def export(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Directory to write the stack into (created; same-named files replaced)."
        ),
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            help="The inferwatch.yaml (or prometheus.yml) to export; without it, the stack "
            "around `inferwatch demo`."
        ),
    ] = None,
    target: Annotated[
        str, typer.Option(help="host:port of `inferwatch demo` (only without --config).")
    ] = "127.0.0.1:8000",
    webhook: Annotated[
        str | None,
        typer.Option(help="Webhook URL for the Alertmanager when the config has no alertmanager."),
    ] = None,
    prometheus: Annotated[
        str, typer.Option(help="host:port the exported Prometheus listens on.")
    ] = "127.0.0.1:9091",
    alertmanager: Annotated[
        str, typer.Option(help="host:port the exported Alertmanager listens on.")
    ] = "127.0.0.1:9093",
    grafana: Annotated[str, typer.Option(help="host:port Grafana listens on.")] = "127.0.0.1:3000",
    kube_prometheus_url: Annotated[
        str, typer.Option(help="The Prometheus URL KEDA reads inside the Kubernetes cluster.")
    ] = "http://prometheus.monitoring.svc:9090",
) -> None:
    """Write Prometheus, Alertmanager, Grafana, KEDA/HPA and docker-compose files that run
    the same monitoring as `inferwatch server` (or the demo) on the standard stack."""
    from inferwatch._errors import InferwatchError
    from inferwatch.cli import _echo, _fail
    from inferwatch.export.stack import Addresses, demo_stack, stack_from_config, write_stack

    try:
        addresses = Addresses(
            prometheus=prometheus,
            alertmanager=alertmanager,
            grafana=grafana,
            kubernetes_prometheus_url=kube_prometheus_url,
        )
        if config is None:
            stack = demo_stack(target, webhook_url=webhook)
        else:
            from inferwatch.config import load_config

            stack = stack_from_config(load_config(config), webhook_url=webhook)
        written = write_stack(stack, out, addresses)
    except InferwatchError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{out}: {exc.strerror or exc}")
    _echo(f"wrote {len(written)} files to {out}/ (from {stack.source}):")
    for path in written:
        _echo(f"  {path.relative_to(out)}")
    for note in stack.notes:
        _echo(f"note: {note}")
    _echo(f"run it: cd {out} && docker compose up -d --build  (see {out}/README.md)")
