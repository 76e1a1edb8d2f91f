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
