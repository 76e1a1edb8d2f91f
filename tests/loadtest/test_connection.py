"""The response parser of a load-test connection, fed answers cut at any point."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from inferwatch.loadtest.connection import Connection


class Owner:
    def __init__(self) -> None:
        self.responses: list[int] = []
        self.failures: list[str] = []

    def on_response(self, conn: Connection, status: int) -> None:
        self.responses.append(status)

    def on_failure(self, conn: Connection, kind: str) -> None:
        self.failures.append(kind)


class Wire:
    """The transport side of a connection: keeps what was written."""

    def __init__(self) -> None:
        self.written = b""
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written += data

    def abort(self) -> None:
        self.aborted = True


def connected(*, head: bool = False) -> tuple[Connection, Owner, Wire]:
    owner = Owner()
    conn = Connection(owner, b"GET / HTTP/1.1\r\n\r\n", "127.0.0.1", 1, head_request=head)
    wire = Wire()
    conn.connection_made(wire)  # type: ignore[arg-type]
    return conn, owner, wire


def feed(conn: Connection, data: bytes, cuts: list[int]) -> None:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        conn.data_received(data[a:b])


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n"
)
LENGTH = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\ncontent-length: 5\r\n\r\nbusy!"


@given(st.lists(st.integers(min_value=0), max_size=12))
def test_a_chunked_answer_completes_once_however_it_is_cut(cuts: list[int]) -> None:
    conn, owner, wire = connected()
    for _ in range(2):  # twice on the same keep-alive connection
        conn.send(0)
        feed(conn, CHUNKED, cuts)
    assert owner.responses == [200, 200]
    assert owner.failures == []
    assert wire.written == b"GET / HTTP/1.1\r\n\r\n" * 2
    assert not conn.busy and not wire.aborted


@given(st.lists(st.integers(min_value=0), max_size=8))
def test_a_length_answer_after_100_continue_completes_once(cuts: list[int]) -> None:
    conn, owner, _ = connected()
    conn.send(0)
    feed(conn, LENGTH, cuts)
    assert owner.responses == [503]


def test_an_answer_without_length_ends_when_the_server_closes() -> None:
    conn, owner, _ = connected()
    conn.send(0)
    conn.data_received(b"HTTP/1.0 200 OK\r\n\r\npart one, ")
    conn.data_received(b"part two")
    assert owner.responses == []
    conn.connection_lost(None)
    assert owner.responses == [200]
    assert conn.transport is None


def test_connection_close_drops_the_connection_after_the_answer() -> None:
    conn, owner, wire = connected()
    conn.send(0)
    conn.data_received(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert owner.responses == [200]
    assert wire.aborted and conn.transport is None


def test_a_head_answer_has_no_body() -> None:
    conn, owner, _ = connected(head=True)
    conn.send(0)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    assert owner.responses == [200]


def test_garbage_is_a_bad_response() -> None:
    conn, owner, wire = connected()
    conn.send(0)
    conn.data_received(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    assert owner.failures == ["bad response"]
    assert wire.aborted


def test_a_reset_mid_answer_is_counted_as_a_reset() -> None:
    conn, owner, _ = connected()
    conn.send(0)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    conn.connection_lost(ConnectionResetError())
    assert owner.failures == ["connection reset"]
