"""The routing tree: which receivers an alert goes to, and how it is grouped.

A :class:`Route` is one node of Alertmanager's routing tree with its options already
resolved (a child inherits what it does not set from its parent, as
``dispatch.NewRoute`` does). :meth:`Route.match` walks the tree depth-first, left to
right: a node matches when its matchers do; the first matching child stops the search
among its siblings unless that child has ``continue: true``; a node none of whose
children match is itself the result.

Keys are Alertmanager's, so group keys seen by receivers (and deduplicated by a real
Alertmanager next to us) are identical: ``{}/{service="db"}:{alertname="x"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from inferwatch.alerting.matchers import Matcher, format_matchers, matches_all

DEFAULT_GROUP_WAIT_S = 30.0
DEFAULT_GROUP_INTERVAL_S = 300.0
DEFAULT_REPEAT_INTERVAL_S = 14400.0


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """One node of the routing tree, with inherited options resolved.

    ``group_by_all`` is ``group_by: ['...']`` (every label groups). ``matchers`` are in
    Alertmanager's order (name, value, type). ``parent`` is set when the node is placed
    in its parent's ``routes`` (the root has none).
    """

    receiver: str
    group_by: tuple[str, ...] = ()
    group_by_all: bool = False
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    group_wait_s: float = DEFAULT_GROUP_WAIT_S
    group_interval_s: float = DEFAULT_GROUP_INTERVAL_S
    repeat_interval_s: float = DEFAULT_REPEAT_INTERVAL_S
    routes: tuple[Route, ...] = ()
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    parent: Route | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for child in self.routes:
            object.__setattr__(child, "parent", self)

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alert with ``labels`` (empty when this node does
        not match), in tree order: Alertmanager's ``Route.Match``."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            matches = child.match(labels)
            found.extend(matches)
            if matches and not child.continue_:
                break
        return found or [self]

    def key(self) -> str:
        """Alertmanager's ``Route.Key()``: the matchers of each node from the root,
        joined by ``/`` (``{}`` for the root, ``{}/{severity="page"}`` below it).
        Not unique in general: see :meth:`id`."""
        own = format_matchers(self.matchers)
        return own if self.parent is None else f"{self.parent.key()}/{own}"

    def id(self) -> str:
        """Alertmanager's ``Route.ID()``: :meth:`key` plus this node's position among
        its siblings (``{}/{severity="page"}/0``); the root's id is its key."""
        if self.parent is None:
            return self.key()
        for i, sibling in enumerate(self.parent.routes):
            if sibling is self:
                return f"{self.key()}/{i}"
        return self.key()

    def walk(self) -> list[Route]:
        """This node and all below it, depth-first (Alertmanager's ``Route.Walk``)."""
        out = [self]
        for child in self.routes:
            out.extend(child.walk())
        return out

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that name an alert's group on this route: those in ``group_by``
        that the alert has, or all of them with ``group_by: ['...']``."""
        if self.group_by_all:
            return dict(labels)
        wanted = set(self.group_by)
        return {k: v for k, v in labels.items() if k in wanted}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """The aggregation group's key, as Alertmanager writes it in notifications:
        ``{route key}:{group labels}`` (``{}/{team="db"}:{alertname="x", env="prod"}``)."""
        return f"{self.key()}:{format_label_set(self.group_labels(labels))}"


def format_label_set(labels: Mapping[str, str]) -> str:
    """``{a="1", b="2"}``: Go's ``model.LabelSet.String()`` (sorted, ``", "``, %q)."""
    return "{" + ", ".join(f"{k}={go_quote(labels[k])}" for k in sorted(labels)) + "}"


_GO_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_GO_ESCAPES.update({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v"})


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (``%q``): double quotes, backslash escapes for control
    characters, printable Unicode kept as is."""
    out = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


__all__ = [
    "DEFAULT_GROUP_INTERVAL_S",
    "DEFAULT_GROUP_WAIT_S",
    "DEFAULT_REPEAT_INTERVAL_S",
    "Route",
    "format_label_set",
    "go_quote",
]
