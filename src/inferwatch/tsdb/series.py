"""Values that cross the store's boundary: what an append did, and a selected series."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from inferwatch.tsdb.labels import Labels

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass(slots=True)
class AppendResult:
    """Counts of what one append did with its samples.

    ``accepted`` samples are durable (in the write-ahead log) when ``append`` returns.
    ``new_series`` is how many of the accepted samples started a series the head did
    not hold. Rejected samples are counted by reason and never stored.
    """

    accepted: int = 0
    new_series: int = 0
    out_of_order: int = 0
    duplicate: int = 0
    too_many_series: int = 0
    invalid: int = 0
    rejected_metrics: set[str] = field(default_factory=set)

    @property
    def rejected(self) -> int:
        return self.out_of_order + self.duplicate + self.too_many_series + self.invalid


@dataclass(slots=True)
class Series:
    """One series over a time range: label set, millisecond timestamps and values.

    ``timestamps`` is an int64 array in increasing order and ``values`` a float64 array
    of the same length; staleness markers are kept as the StaleNaN value.
    """

    labels: Labels
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


class Appender(Protocol):
    """Where collected samples go: the store, or anything that acts like it."""

    def append(self, ts_ms: int, samples: Sequence[tuple[Labels, float]]) -> AppendResult:
        """Append samples that share one timestamp (one scrape); durable on return."""
        ...
