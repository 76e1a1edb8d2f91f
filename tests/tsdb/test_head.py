from __future__ import annotations

import numpy as np

from inferwatch.tsdb.head import Batch, Head, compact_refs


def batch(seq: int, refs: list[int]) -> Batch:
    return Batch(seq, seq * 1000, compact_refs(np.array(refs, np.int64)), np.ones(len(refs)))


def test_refs_are_kept_as_int32_while_they_fit() -> None:
    assert compact_refs(np.array([1, 2, 2**31 - 1], np.int64)).dtype == np.int32
    assert compact_refs(np.array([1, 2**31], np.int64)).dtype == np.int64


def test_batches_with_the_same_series_share_one_ref_array() -> None:
    head = Head()
    a = head.shared(compact_refs(np.array([1, 5, 9], np.int64)))
    b = head.shared(compact_refs(np.array([1, 5, 9], np.int64)))
    c = head.shared(compact_refs(np.array([1, 6, 9], np.int64)))
    assert b is a
    assert c is not a and c.tolist() == [1, 6, 9]
    assert not a.flags.writeable


def test_a_ref_range_of_mixed_width_batches_is_sorted_by_ref_then_time() -> None:
    head = Head()
    head.add(batch(1, [3, 2**31 + 5]))
    head.add(batch(2, [1, 3]))
    refs, ts, _ = head.sorted_samples(0, 2**32)
    assert refs.tolist() == [1, 3, 3, 2**31 + 5]
    assert ts.tolist() == [2000, 1000, 2000, 1000]
    refs, _, _ = head.sorted_samples(2, 4)
    assert refs.tolist() == [3, 3]
    found = head.series_samples(np.array([3, 2**31 + 5, 2**40], np.int64), 0, 5000)
    assert {ref: t.tolist() for ref, (t, _) in found.items()} == {
        3: [1000, 2000],
        2**31 + 5: [1000],
    }


def test_selects_agree_with_a_scan_whether_they_sort_a_window_or_search_a_merge() -> None:
    """Appends (a scrape of many series, a rule's few outputs) interleaved with selects:
    window sorts, the whole-head merge after repeated reads, and a merge reused while
    new batches hold none of a select's refs, all give what a plain scan gives."""
    rng = np.random.default_rng(7)
    head = Head()
    appended: list[tuple[int, int, float]] = []  # (ref, ts, value)
    last: dict[int, int] = {}
    paths_seen = set()
    for step in range(400):
        seq = step + 1
        if step % 3 == 0:  # a scrape: refs 0..199, some missing
            refs = np.flatnonzero(rng.random(200) < 0.9)
        else:  # a rule's output: a few refs of its own, above the scraped ones
            refs = np.sort(rng.choice(np.arange(200, 240), size=5, replace=False))
        ts = 1000 * step + int(rng.integers(0, 500))
        refs = np.array([r for r in refs.tolist() if last.get(r, -1) < ts], np.int64)
        values = rng.random(refs.size)
        head.add(Batch(seq, ts, compact_refs(refs), values))
        for r, v in zip(refs.tolist(), values.tolist(), strict=True):
            appended.append((r, ts, v))
            last[r] = ts
        for _ in range(int(rng.integers(0, 7))):
            lo = int(rng.integers(0, 240))
            query = np.sort(rng.choice(np.arange(lo, min(lo + 60, 240)), size=20))
            query = np.unique(query)
            mint = int(rng.integers(0, 1000 * (step + 1)))
            maxt = mint + int(rng.integers(0, 60_000))
            got = head.series_samples(query, mint, maxt)
            paths_seen.add(head._merged is not None)
            want: dict[int, tuple[list[int], list[float]]] = {}
            wanted = set(query.tolist())
            for r, t, v in appended:
                if r in wanted and mint <= t <= maxt:
                    want.setdefault(r, ([], []))[0].append(t)
                    want[r][1].append(v)
            assert {r: (t.tolist(), v.tolist()) for r, (t, v) in got.items()} == want
    assert paths_seen == {True, False}
