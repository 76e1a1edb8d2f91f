"""Chunk encoding: a run of one series' samples as compressed bytes.

Chosen by measurement (see the README's storage notes):

- timestamps: the first one, then delta-of-delta, zigzag-encoded (a regular scrape
  interval gives all zeros);
- values: when every value is a finite decimal with at most 12 digits after the point
  (counters, most gauges), the scaled integers' deltas, zigzag-encoded; otherwise the
  XOR of each value's bits with the previous one (Gorilla's idea), which keeps NaN,
  infinities and the staleness marker bit-exact;
- both columns byte-shuffled (all first bytes, then all second bytes, ...) so that the
  many zero high bytes sit together, then compressed with zlib.

Layout: ``b"C"`` version byte, ``uint32`` sample count, ``int8`` decimal exponent (-1 for
XOR), ``int64`` first timestamp, ``int64`` first scaled value (0 for XOR), then the
compressed payload.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

_HEADER = struct.Struct("<cIbqq")
_VERSION = b"C"
_MAX_EXACT = float(2**53)
_XOR = -1


class ChunkError(ValueError):
    """Bytes that are not a chunk this version can read."""


def _zigzag(a: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    # Exact while deltas stay within +-2**62 (ms timestamps: 146 million years).
    return ((a << 1) ^ (a >> 63)).astype(np.uint64)


def _unzigzag(a: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    signed = a.astype(np.int64)
    result: npt.NDArray[np.int64] = (signed >> 1) ^ -(signed & 1)
    return result


def _shuffle(a: npt.NDArray[np.uint64]) -> bytes:
    return a.view(np.uint8).reshape(-1, 8).T.tobytes()


def _unshuffle(data: bytes, n: int) -> npt.NDArray[np.uint64]:
    raw = np.frombuffer(data, dtype=np.uint8).reshape(8, n).T.copy()
    return raw.view(np.uint64).reshape(n)


def _decimal_exponent(values: npt.NDArray[np.float64]) -> tuple[int, npt.NDArray[np.int64]] | None:
    """The smallest k <= 12 with every value an exact multiple of 10**-k, and the ints."""
    if not np.all(np.isfinite(values)) or np.any(np.signbit(values) & (values == 0)):
        return None  # NaN/inf/stale bits and -0.0 only survive the XOR path
    for k in range(13):
        scale = 10.0**k
        scaled = np.round(values * scale)
        if scaled.size and float(np.max(np.abs(scaled))) >= _MAX_EXACT:
            return None
        if np.array_equal(scaled / scale, values):
            return k, scaled.astype(np.int64)
    return None


def encode(timestamps: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> bytes:
    """Encode increasing millisecond timestamps and their values into one chunk."""
    n = int(timestamps.size)
    if n == 0 or values.size != n:
        raise ValueError("a chunk needs one or more samples, as many values as timestamps")
    ts = timestamps.astype(np.int64, copy=False)
    deltas = np.diff(ts, prepend=ts[0])
    dod = np.diff(deltas, prepend=0)
    vals = values.astype(np.float64, copy=False)
    decimal = _decimal_exponent(vals)
    if decimal is not None:
        exponent, ints = decimal
        first_value = int(ints[0])
        column = _zigzag(np.diff(ints, prepend=ints[0]))
    else:
        exponent, first_value = _XOR, 0
        bits = vals.view(np.uint64)
        column = bits ^ np.concatenate((np.zeros(1, np.uint64), bits[:-1]))
    header = _HEADER.pack(_VERSION, n, exponent, int(ts[0]), first_value)
    return header + zlib.compress(_shuffle(_zigzag(dod)) + _shuffle(column), 6)


def decode(chunk: bytes) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The timestamps and values of a chunk made by :func:`encode`."""
    try:
        version, n, exponent, first_ts, first_value = _HEADER.unpack_from(chunk)
        payload = zlib.decompress(chunk[_HEADER.size :])
    except (struct.error, zlib.error) as exc:
        raise ChunkError(f"corrupt chunk: {exc}") from None
    if version != _VERSION or len(payload) != 16 * n:
        raise ChunkError(f"corrupt chunk: version {version!r}, {n} samples, {len(payload)} bytes")
    dod = _unzigzag(_unshuffle(payload[: 8 * n], n))
    deltas = np.cumsum(dod)
    ts = first_ts + np.cumsum(deltas)
    column = _unshuffle(payload[8 * n :], n)
    if exponent == _XOR:
        values = np.bitwise_xor.accumulate(column).view(np.float64)
    else:
        ints = first_value + np.cumsum(_unzigzag(column))
        values = ints.astype(np.float64) / 10.0**exponent
    return ts.astype(np.int64), values.astype(np.float64)
