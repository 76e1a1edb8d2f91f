"""An online detector that learns a series' normal range: bounds and an anomaly score.

:class:`Detector` sees one ``(timestamp, value)`` at a time and never looks ahead. It
keeps three one-step forecasts of the next value and uses whichever has forecast best so
far:

- a level: an exponentially weighted moving average (EWMA) of the values;
- a daily profile: an EWMA per 5-minute slot of the day, once a full day is seen;
- a weekly profile: the same per slot of the week, once a full week is seen.

A seasonal profile is used only when its recent absolute forecast error is clearly lower
than the level's, that is when the history shows daily or weekly seasonality. The spread
is a robust EWMA of the absolute forecast error (outliers are clipped before they are
averaged in, so one spike does not widen the bounds for hours). The bounds are the
forecast plus and minus ``k`` spreads; the anomaly score in ``[0, 1]`` grows with how far
the value is outside its normal range, and repeated alarms for one ongoing anomaly are
damped so that only new surprises score high.

Until ``min_history`` values are seen the bounds are absent (``None``) and the score is
0. NaN and infinite values are skipped (they score 0 and teach nothing); a constant
series has a tiny but non-zero spread floor, so no bound is ever NaN and nothing divides
by zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inferwatch._errors import ConfigError

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
SLOT_S = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorConfig:
    """How a :class:`Detector` learns.

    ``alpha``: EWMA weight of a new value in the level; ``spread_alpha``: the same for
    the spread; ``season_alpha``: for a seasonal slot; ``k``: bound width in spreads;
    ``min_history``: values before bounds appear; ``clip``: outliers are clipped at this
    many spreads before they update the spread; ``score_scale``: the distance (in
    spreads) at which the score reaches ``1 - 1/e``; ``seasonal``: learn daily and weekly
    profiles; ``damping``: how much a repeated alarm is reduced (0 none, 1 full).
    """

    alpha: float = 0.02
    spread_alpha: float = 0.0005
    season_alpha: float = 0.5
    k: float = 4.0
    min_history: int = 30
    clip: float = 8.0
    seasonal: bool = True
    damping: float = 0.9
    damping_decay: float = 0.999
    score_scale: float = 8.0

    def __post_init__(self) -> None:
        for name in ("alpha", "spread_alpha", "season_alpha"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0.0 < v <= 1.0):
                raise ConfigError(f"{name} must be in (0, 1], got {v!r}", field=name, value=v)
        for name in ("k", "clip", "score_scale"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be positive, got {v!r}", field=name, value=v)
        for name in ("damping", "damping_decay"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0.0 <= v < 1.0):
                raise ConfigError(f"{name} must be in [0, 1), got {v!r}", field=name, value=v)
        if not (isinstance(self.min_history, int) and self.min_history >= 2):
            raise ConfigError(
                f"min_history must be an integer >= 2, got {self.min_history!r}",
                field="min_history",
                value=self.min_history,
            )


@dataclass(frozen=True, slots=True)
class Point:
    """The detector's view of one value: bounds (``None`` until enough history), score."""

    timestamp: float
    value: float
    forecast: float | None
    lower: float | None
    upper: float | None
    score: float


class Detector:
    """Online normal range and anomaly score of one series (see the module docstring)."""

    __slots__ = (
        "_alarm",
        "_cfg",
        "_daily",
        "_err_day",
        "_err_level",
        "_err_week",
        "_level",
        "_n",
        "_spread",
        "_t0",
        "_weekly",
        "model",
    )

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self._cfg = config or DetectorConfig()
        self._n = 0
        self._level = 0.0
        self._spread = 0.0
        self._t0: float | None = None
        self._daily: list[float] = [math.nan] * int(DAY_S // SLOT_S)
        self._weekly: list[float] = [math.nan] * int(WEEK_S // SLOT_S)
        self._err_level = 0.0
        self._err_day = 0.0
        self._err_week = 0.0
        self._alarm = 0.0
        self.model = "level"
        """Which forecast is in use: ``level``, ``daily`` or ``weekly``."""

    @property
    def ready(self) -> bool:
        """Whether enough history was seen for bounds."""
        return self._n >= self._cfg.min_history

    def update(self, timestamp: float, value: float) -> Point:
        """Score ``value`` against what came before it, then learn from it."""
        cfg = self._cfg
        if not math.isfinite(value) or not math.isfinite(timestamp):
            return Point(timestamp, value, None, None, None, 0.0)
        if self._n == 0:
            self._t0 = timestamp
            self._level = value
            self._n = 1
            self._learn_season(timestamp, value)
            return Point(timestamp, value, None, None, None, 0.0)
        level = self._level
        forecast = level
        model = "level"
        seen = timestamp - (self._t0 or timestamp)
        dslot = wslot = -1
        fd = fw = math.nan
        if cfg.seasonal:
            wslot = int(timestamp // SLOT_S) % len(self._weekly)
            dslot = wslot % len(self._daily)
            fd = self._daily[dslot]
            fw = self._weekly[wslot]
            best = self._err_level * 0.7
            if seen >= WEEK_S and fw == fw and self._err_week < best:
                forecast, model, best = fw, "weekly", self._err_week
            if seen >= DAY_S and fd == fd and self._err_day < best:
                forecast, model = fd, "daily"
        floor = 1e-6 * (abs(forecast) + abs(level)) + 1e-12
        spread = self._spread if self._spread > floor else floor
        resid = value - forecast
        z = abs(resid) / spread
        ready = self._n >= cfg.min_history
        score = 0.0
        if ready:
            raw = 1.0 - math.exp(-z / cfg.score_scale) if z < 700.0 * cfg.score_scale else 1.0
            alarm = self._alarm
            score = raw - cfg.damping * alarm if raw > alarm else raw * (1.0 - cfg.damping)
            if score < 0.0:
                score = 0.0
            self._alarm = raw if raw > alarm else alarm * cfg.damping_decay
        # learn
        a = cfg.alpha
        self._level = level + a * (value - level)
        el = abs(value - level)
        ea = cfg.spread_alpha
        self._err_level += ea * (el - self._err_level)
        if fd == fd:
            self._err_day += ea * (abs(value - fd) - self._err_day)
        elif dslot >= 0:
            self._err_day += ea * (el - self._err_day)
        if fw == fw:
            self._err_week += ea * (abs(value - fw) - self._err_week)
        elif wslot >= 0:
            self._err_week += ea * (el - self._err_week)
        clipped = abs(resid)
        limit = cfg.clip * spread
        if clipped > limit and self._n > cfg.min_history:
            clipped = limit
        if self._n == 1:
            self._spread = clipped
        else:
            step = ea if ready else 1.0 / self._n
            self._spread += step * (clipped - self._spread)
        self._n += 1
        if cfg.seasonal:
            self._learn_season(timestamp, value)
        self.model = model
        if not ready:
            return Point(timestamp, value, None, None, None, 0.0)
        width = cfg.k * spread
        return Point(timestamp, value, forecast, forecast - width, forecast + width, score)

    def _learn_season(self, timestamp: float, value: float) -> None:
        wslot = int(timestamp // SLOT_S) % len(self._weekly)
        dslot = wslot % len(self._daily)
        sa = self._cfg.season_alpha
        d = self._daily[dslot]
        self._daily[dslot] = value if d != d else d + sa * (value - d)
        w = self._weekly[wslot]
        self._weekly[wslot] = value if w != w else w + sa * (value - w)


__all__ = ["DAY_S", "SLOT_S", "WEEK_S", "Detector", "DetectorConfig", "Point"]
