"""``inferwatch feedback import``: labels stored by the command are joined and counted by
the service that logged the predictions (so they appear on the service's /metrics)."""

from __future__ import annotations

import time
from pathlib import Path

from typer.testing import CliRunner

from inferwatch import Registry
from inferwatch.analyze.quality import QualityTracker
from inferwatch.cli import app


def _labels(registry: Registry) -> dict[str, float]:
    for family in registry.snapshot():
        if family.name == "inferwatch_labels_total":
            return {key[-1]: float(value) for key, value in family.samples.items()}  # type: ignore[arg-type]
    return {}


def test_imported_labels_are_counted_by_the_service_and_bad_rows_named(
    log_target: str, tmp_path: Path
) -> None:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    service = QualityTracker("fraud", "3", log=log_target, registry=registry)
    try:
        for i in range(6):
            service.log_prediction(f"r{i}", "fraud" if i % 2 else "legit")
        service.flush()
        csv = tmp_path / "labels.csv"
        csv.write_text(
            "request_id,label,timestamp\n"
            "r0,legit,2026-11-21T10:00:00Z\n"
            "r1,legit,\n"
            "r2,,\n"
            "r3,fraud,yesterday\n"
            "r1,fraud,\n"
            "r9,fraud,\n"
        )
        result = CliRunner().invoke(
            app,
            ["feedback", "import", str(csv), "--model", "fraud", "--version", "3",
             "--log", log_target],
        )  # fmt: skip
        assert result.exit_code == 1, result.output
        assert "labels.csv:4: label: empty" in result.output
        assert "labels.csv:5: timestamp" in result.output
        assert (
            "6 rows: 2 stored for their predictions, 1 waiting for a prediction, "
            "1 duplicate, 0 expired, 2 invalid"
        ) in result.output
        deadline = time.monotonic() + 10
        while _labels(registry) != {"true": 1.0, "false": 1.0} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _labels(registry) == {"true": 1.0, "false": 1.0}
    finally:
        service.close()
