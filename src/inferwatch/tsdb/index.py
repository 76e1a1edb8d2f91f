"""The label index: series refs by label name and value (postings), for matcher lookups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from inferwatch.tsdb.labels import Labels, Matcher, label_value


class Postings:
    """Which series have which label values; selects series by matchers without a scan.

    Equality and non-empty regex matchers narrow the candidates through the postings
    of their label; the remaining matchers are checked on the candidates' label sets.
    """

    def __init__(self) -> None:
        self._by_label: dict[str, dict[str, set[int]]] = {}
        self._labels: dict[int, Labels] = {}

    def add(self, ref: int, labels: Labels) -> None:
        self._labels[ref] = labels
        for name, value in labels:
            self._by_label.setdefault(name, {}).setdefault(value, set()).add(ref)

    def remove(self, ref: int) -> None:
        labels = self._labels.pop(ref, None)
        if labels is None:
            return
        for name, value in labels:
            values = self._by_label.get(name)
            if values is None:
                continue
            refs = values.get(value)
            if refs is not None:
                refs.discard(ref)
                if not refs:
                    del values[value]
            if not values:
                del self._by_label[name]

    def labels(self, ref: int) -> Labels:
        return self._labels[ref]

    def __len__(self) -> int:
        return len(self._labels)

    def refs(self) -> Iterable[int]:
        return self._labels.keys()

    def label_names(self) -> list[str]:
        return sorted(self._by_label)

    def label_values(self, name: str) -> list[str]:
        return sorted(self._by_label.get(name, {}))

    def _candidates(self, matcher: Matcher) -> set[int] | None:
        """The refs a matcher allows by itself, or None when it cannot narrow alone."""
        values = self._by_label.get(matcher.name, {})
        if matcher.op == "=" and matcher.value != "":
            return set(values.get(matcher.value, ()))
        if matcher.op == "=~" and not matcher.matches_empty:
            out: set[int] = set()
            for value, refs in values.items():
                if matcher.matches(value):
                    out |= refs
            return out
        return None

    def select(self, matchers: Sequence[Matcher]) -> list[int]:
        """Refs of the series that satisfy every matcher, sorted."""
        candidates: set[int] | None = None
        rest: list[Matcher] = []
        for m in matchers:
            narrowed = self._candidates(m)
            if narrowed is None:
                rest.append(m)
            elif candidates is None:
                candidates = narrowed
            else:
                candidates &= narrowed
            if candidates is not None and not candidates:
                return []
        pool: Iterable[int] = candidates if candidates is not None else self._labels.keys()
        labels = self._labels
        return sorted(
            ref for ref in pool if all(m.matches(label_value(labels[ref], m.name)) for m in rest)
        )
