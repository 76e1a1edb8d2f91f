"""One scrape target, and one scrape of it into the store.

:func:`scrape_once` does what a Prometheus scrape loop does in one iteration: fetch the
target's ``/metrics`` within ``scrape_timeout``, parse the whole body, attach the target
labels (``job``, ``instance``, static labels), apply ``metric_relabel_configs``, append
the samples in one call at the scrape's timestamp, write staleness markers for series
that went away, and append the synthetic series ``up``, ``scrape_duration_seconds``,
``scrape_samples_scraped``, ``scrape_samples_post_metric_relabeling`` and
``scrape_series_added``.

A failed scrape (timeout, non-2xx status, malformed exposition) stores nothing from the
body: ``up`` is 0, the reason is kept in :attr:`Target.last_error`, and every series the
target reported last time gets a staleness marker.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import is_
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode

from inferwatch._version import __version__
from inferwatch.scrape.config import ScrapeConfig
from inferwatch.scrape.parse import ParsedSample, ScrapeError, SeriesCache, parse_exposition
from inferwatch.scrape.relabel import relabel
from inferwatch.tsdb.labels import METRIC_NAME, STALE_NAN, Labels, make_labels
from inferwatch.tsdb.series import Appender

if TYPE_CHECKING:
    import httpx

Health = Literal["up", "down", "unknown"]

#: What Prometheus sends: OpenMetrics preferred, then the text format, then anything.
ACCEPT_HEADER = (
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
)


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """A target as the targets page shows it; times in ms since the epoch and seconds."""

    job: str
    url: str
    labels: Mapping[str, str]
    health: Health
    last_error: str
    last_scrape_ms: int | None
    last_duration_s: float | None
    scrape_interval_s: float
    scrape_timeout_s: float
    samples_scraped: int


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    """What one scrape did; ``error`` is ``""`` when it succeeded."""

    health: Health
    error: str
    duration_s: float
    samples_scraped: int
    samples_post_relabel: int
    series_added: int
    stale_markers: int
    rejected: int


class Target:
    """One endpoint of a scrape job, with the state of its last scrape.

    ``labels`` are the target labels that every scraped series gets (at least ``job``
    and ``instance``). Build targets from a job with :func:`targets_from_config`.
    """

    def __init__(self, config: ScrapeConfig, *, url: str, labels: Mapping[str, str]) -> None:
        self.config = config
        self.url = url
        self.labels: dict[str, str] = {k: v for k, v in sorted(labels.items()) if v != ""}
        self.health: Health = "unknown"
        self.last_error = ""
        self.last_scrape_ms: int | None = None
        self.last_duration_s: float | None = None
        self.last_samples = 0
        #: Series stored by the last scrape without explicit timestamps (for staleness).
        self.series: frozenset[Labels] = frozenset()
        self.lock = threading.Lock()
        #: The parser's cache of this target's series (as Prometheus's scrape cache).
        self.parse_cache = SeriesCache()
        #: Each parsed label set's final label set (target labels attached, relabeled;
        #: ``None`` when relabeling dropped it), so a series seen before is not redone.
        self.final_labels: dict[Labels, Labels | None] = {}
        #: The parsed label sets of the last successful scrape and their final ones,
        #: as lists in exposition order (reused when a scrape exposes the same series).
        self.last_parsed: list[Labels] = []
        self.last_final: list[Labels | None] = []
        #: The list of final label sets that :attr:`series` was made from.
        self.series_source: list[Labels | None] | None = None

    @property
    def job(self) -> str:
        return self.config.job_name

    def offset(self) -> float:
        """A stable start offset in ``[0, scrape_interval)``, spreading targets' scrapes."""
        key = f"{self.job}\x00{self.url}\x00{sorted(self.labels.items())}".encode()
        interval_ms = max(1, int(self.config.scrape_interval * 1000))
        return (zlib.crc32(key) % interval_ms) / 1000.0

    def status(self) -> TargetStatus:
        return TargetStatus(
            job=self.job,
            url=self.url,
            labels=dict(self.labels),
            health=self.health,
            last_error=self.last_error,
            last_scrape_ms=self.last_scrape_ms,
            last_duration_s=self.last_duration_s,
            scrape_interval_s=self.config.scrape_interval,
            scrape_timeout_s=self.config.scrape_timeout,
            samples_scraped=self.last_samples,
        )

    def __repr__(self) -> str:
        return f"Target(job={self.job!r}, url={self.url!r}, health={self.health!r})"


def targets_from_config(config: ScrapeConfig) -> list[Target]:
    """The targets of a job, labelled as Prometheus does without ``relabel_configs``.

    Static labels may set ``__scheme__``, ``__metrics_path__``, ``__address__`` and
    ``__param_<name>`` to change the URL; labels starting with ``__`` are not attached.
    ``instance`` defaults to the address, ``job`` to ``job_name``.
    """
    targets: list[Target] = []
    for static in config.static_configs:
        for address in static.targets:
            raw = {
                "__address__": address,
                "__scheme__": config.scheme,
                "__metrics_path__": config.metrics_path,
                **{f"__param_{k}": v[0] for k, v in config.params.items() if v},
                **static.labels,
            }
            raw.setdefault("job", config.job_name)
            raw.setdefault("instance", raw["__address__"])
            params = {k: list(v) for k, v in config.params.items()}
            for name, value in raw.items():
                if name.startswith("__param_"):
                    # The label replaces the first value of the parameter, as in Prometheus.
                    params[name[8:]] = [value, *params.get(name[8:], [])[1:]]
            query = urlencode(params, doseq=True)
            url = f"{raw['__scheme__']}://{raw['__address__']}{raw['__metrics_path__']}"
            url = f"{url}?{query}" if query else url
            labels = {k: v for k, v in raw.items() if not k.startswith("__")}
            targets.append(Target(config, url=url, labels=labels))
    return targets


def scrape_once(
    target: Target, appender: Appender, client: httpx.Client, now_ms: int
) -> ScrapeResult:
    """Scrape ``target`` over HTTP once and store the result at ``now_ms``."""
    with target.lock:
        start = time.perf_counter()
        samples: list[ParsedSample] | None = None
        try:
            body, content_type = fetch(target, client)
            samples = parse_exposition(body, content_type, cache=target.parse_cache)
            error = ""
        except ScrapeError as exc:
            error = str(exc)
        return store_scrape(target, appender, samples, error, now_ms, time.perf_counter() - start)


def fetch(target: Target, client: httpx.Client) -> tuple[bytes, str | None]:
    """The body and ``Content-Type`` of the target's answer, or :class:`ScrapeError`."""
    import httpx  # only scraping remote targets needs it

    config = target.config
    timeout = config.scrape_timeout
    headers = {
        "Accept": ACCEPT_HEADER,
        "User-Agent": f"inferwatch/{__version__}",
        "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout:g}",
    }
    auth: httpx.BasicAuth | None = None
    try:
        if config.basic_auth is not None:
            basic = config.basic_auth
            password = basic.password
            if basic.password_file:
                password = Path(basic.password_file).read_text().strip()
            auth = httpx.BasicAuth(basic.username, password)
        if config.authorization is not None:
            authz = config.authorization
            credentials = authz.credentials
            if authz.credentials_file:
                credentials = Path(authz.credentials_file).read_text().strip()
            headers["Authorization"] = f"{authz.type} {credentials}"
    except OSError as exc:
        raise ScrapeError(f"cannot read credentials: {exc}") from None
    deadline = time.monotonic() + timeout
    try:
        with client.stream("GET", target.url, headers=headers, auth=auth, timeout=timeout) as r:
            if not 200 <= r.status_code < 300:
                raise ScrapeError(f"server returned HTTP status {r.status_code} {r.reason_phrase}")
            chunks: list[bytes] = []
            for chunk in r.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("body not complete", request=r.request)
            return b"".join(chunks), r.headers.get("content-type")
    except httpx.TimeoutException:
        raise ScrapeError(
            f"context deadline exceeded: no complete answer within scrape_timeout ({timeout:g}s)"
        ) from None
    except httpx.HTTPError as exc:
        raise ScrapeError(f"{type(exc).__name__}: {exc}") from None


def store_scrape(
    target: Target,
    appender: Appender,
    samples: Sequence[ParsedSample] | None,
    error: str,
    now_ms: int,
    duration_s: float,
) -> ScrapeResult:
    """Store one scrape's outcome: ``samples`` (``None`` when it failed with ``error``).

    Call with ``target.lock`` held. Used for HTTP targets and the in-process registry.
    """
    scraped = post = added = rejected = stale_count = 0
    finals: list[Labels | None] | None = None
    ok = samples is not None
    if samples is not None:
        scraped = len(samples)
        try:
            untimed, timed, finals = _prepare(target, samples)
        except ScrapeError as exc:
            ok, error = False, str(exc)
    if ok:
        if finals is not None and finals is target.series_source:
            current, gone = target.series, []  # the very series of the last scrape
        else:
            current = frozenset(labels for labels, _ in untimed)
            gone = [(labels, STALE_NAN) for labels in sorted(target.series - current)]
        try:
            results = [appender.append(now_ms, untimed + gone)] if untimed or gone else []
            results += [appender.append(ts, timed[ts]) for ts in sorted(timed)]
        except Exception as exc:  # the store failed: report the scrape as failed
            ok, error = False, f"storing samples failed: {exc!r}"
        else:
            post = len(untimed) + sum(len(group) for group in timed.values())
            added = sum(r.new_series for r in results)
            rejected = sum(r.rejected for r in results)
            stale_count = len(gone)
            target.series = current
            target.series_source = finals
    # On failure every series of the last successful scrape goes stale, in the same
    # append as the synthetic series.
    stale = [] if ok else [(labels, STALE_NAN) for labels in sorted(target.series)]
    if not ok:
        target.series = frozenset()
        target.series_source = None
        stale_count = len(stale)
    health: Health = "up" if ok else "down"
    report = _report(target, health, duration_s, scraped, post, added)
    try:
        appender.append(now_ms, stale + report)
    except Exception as exc:
        error = error or f"storing samples failed: {exc!r}"
    target.health = health
    target.last_error = error
    target.last_scrape_ms = now_ms
    target.last_duration_s = duration_s
    target.last_samples = scraped
    return ScrapeResult(health, error, duration_s, scraped, post, added, stale_count, rejected)


def _prepare(
    target: Target, samples: Sequence[ParsedSample]
) -> tuple[
    list[tuple[Labels, float]],
    dict[int, list[tuple[Labels, float]]],
    list[Labels | None] | None,
]:
    """Samples with target labels and relabeling applied; explicit timestamps apart.

    A parsed label set's final label set is worked out once and kept on the target;
    when the parser's cache hands back the very label-set objects of the last scrape,
    the last list of final label sets is reused as it is. The third item is the list
    of final label sets when every sample is untimed (``None`` otherwise), so that
    a scrape of the same series as the last one can skip working out what went away.
    """
    parsed = [labels for labels, _, _ in samples]
    last = target.last_parsed
    if len(parsed) == len(last) and all(map(is_, parsed, last)):
        finals = target.last_final
    else:
        known = target.final_labels
        finals = [
            known[labels] if labels in known else _final_labels(target, labels) for labels in parsed
        ]
        if len(known) > 2 * len(parsed) + 64:  # forget series the target no longer has
            target.final_labels = dict(zip(parsed, finals, strict=True))
    target.last_parsed, target.last_final = parsed, finals
    honor_timestamps = target.config.honor_timestamps
    if not any(ts is not None for _, _, ts in samples) or not honor_timestamps:
        pairs = zip(finals, samples, strict=True)
        kept = [(final, value) for final, (_, value, _) in pairs if final is not None]
        return kept, {}, finals
    untimed: list[tuple[Labels, float]] = []
    timed: dict[int, list[tuple[Labels, float]]] = {}
    for final, (_, value, ts) in zip(finals, samples, strict=True):
        if final is None:
            continue
        if ts is not None and honor_timestamps:
            timed.setdefault(ts, []).append((final, value))
        else:
            untimed.append((final, value))
    return untimed, timed, None


def _final_labels(target: Target, labels: Labels) -> Labels | None:
    """``labels`` with the target labels attached and ``metric_relabel_configs`` applied."""
    config = target.config
    merged = attach_target_labels(dict(labels), target.labels, config.honor_labels)
    final = relabel(merged, config.metric_relabel_configs)
    if final is None:
        result = None
    elif METRIC_NAME not in final:
        raise ScrapeError(f"a series lost its __name__ label in metric_relabel_configs: {final}")
    else:
        result = make_labels(final)
    target.final_labels[labels] = result
    return result


def attach_target_labels(
    labels: dict[str, str], target_labels: Mapping[str, str], honor_labels: bool
) -> dict[str, str]:
    """Add target labels to scraped ``labels`` (in place), resolving clashes like Prometheus.

    ``honor_labels`` keeps the scraped value; otherwise the target's value wins and the
    scraped one moves to ``exported_<name>`` (``exported_exported_<name>`` if taken).
    """
    if honor_labels:
        for name, value in target_labels.items():
            if not labels.get(name):
                labels[name] = value
        return labels
    clashes = [(name, labels[name]) for name in target_labels if labels.get(name)]
    labels.update(target_labels)
    for name, value in sorted(clashes, key=lambda clash: len(clash[0])):
        renamed = "exported_" + name
        while labels.get(renamed):
            renamed = "exported_" + renamed
        labels[renamed] = value
    return labels


def _report(
    target: Target, health: Health, duration_s: float, scraped: int, post: int, added: int
) -> list[tuple[Labels, float]]:
    values = (
        ("up", 1.0 if health == "up" else 0.0),
        ("scrape_duration_seconds", duration_s),
        ("scrape_samples_scraped", float(scraped)),
        ("scrape_samples_post_metric_relabeling", float(post)),
        ("scrape_series_added", float(added)),
    )
    base = list(target.labels.items())
    return [(make_labels([*base, (METRIC_NAME, name)]), value) for name, value in values]


__all__ = [
    "ACCEPT_HEADER",
    "Health",
    "ScrapeResult",
    "Target",
    "TargetStatus",
    "attach_target_labels",
    "fetch",
    "scrape_once",
    "store_scrape",
    "targets_from_config",
]
