"""The ``inferwatch`` command line.

::

    inferwatch demo              # the demo service with live metrics, until Ctrl-C
    inferwatch demo --port 9000 --no-traffic
    inferwatch version

Also runs as ``python -m inferwatch``. Heavy imports (FastAPI, scikit-learn) happen
inside the command that needs them, so ``inferwatch --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from inferwatch._version import __version__

app = typer.Typer(
    name="inferwatch",
    help="Monitoring for deployed ML model inference services.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


@app.command()
def demo(
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 to be reachable from elsewhere.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port to listen on; 0 picks a free one.")
    ] = 8000,
    traffic: Annotated[
        bool,
        typer.Option(
            "--traffic/--no-traffic",
            help="Send a few requests per second of real test rows, so /metrics moves.",
        ),
    ] = True,
) -> None:
    """Serve a real scikit-learn digit classifier with /predict and /metrics, until Ctrl-C."""
    try:
        from inferwatch.demo import run_demo
    except ImportError as exc:
        err_console.print(
            f"[red]The demo needs the 'demo' extra ({exc.name or exc} is missing):[/red] "
            "pip install 'inferwatch[demo]'"
        )
        raise typer.Exit(code=1) from exc
    try:
        run_demo(host=host, port=port, traffic=traffic, echo=_echo)
    except OSError as exc:
        err_console.print(f"[red]error:[/red] {exc.strerror or exc}")
        raise typer.Exit(code=1) from exc
    except KeyboardInterrupt:
        pass
    console.print("stopped")


def _echo(line: str) -> None:
    console.print(line, markup=False, soft_wrap=True)


@app.command()
def version() -> None:
    """Print the installed inferwatch version."""
    console.print(__version__)


def main() -> None:
    """Entry point of the ``inferwatch`` console script."""
    app()
