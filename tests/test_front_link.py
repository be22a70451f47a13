"""The front's relay (awq/front_link.py): every byte passes, in order, both ways.

Unit tier: a carried link between socket pairs in this process, the relay driven as the
front's loop drives it. The worker's side is TCP; Work Queue's side is TCP or a Unix
socket (the relay must not care which).
"""

from __future__ import annotations

import os
import selectors
import socket
import struct
import time
from typing import Callable, List, Tuple

import pytest

from awq.front_link import MAX_BUFFERED, RELAY_CHUNK, Link, Relay, Side, interactive
from conftest import LOAD_ALLOWANCE

# In this process, over loopback, the relay and both peers move tens of megabytes in well
# under a second of their own work when nothing else runs.
RELAYED_WITHIN = 2.0 * LOAD_ALLOWANCE
TEN_MB = 10 << 20
POLL = 0.005   # s a turn of the loop waits for the relay's sockets when the far ends are idle
# The most a link holds for a side that does not read: the back-pressure limit, plus what
# the last read before the limit took in.
MOST_HELD = MAX_BUFFERED + RELAY_CHUNK


def stream_pair(family: int) -> Tuple[socket.socket, socket.socket]:
    if family == socket.AF_UNIX:
        return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    near = socket.create_connection(listener.getsockname())
    far, _ = listener.accept()
    listener.close()
    return near, far


class Peer:
    """A far end (the worker, or Work Queue): sends what it is given, keeps what it reads."""

    def __init__(self, sock: socket.socket, read_size: int = 1 << 20) -> None:
        self.sock = sock
        sock.setblocking(False)
        self.to_send = bytearray()
        self.received = bytearray()
        self.read_size = read_size
        self.reading = True
        self.eof = False
        self.close_when_sent = False

    def work(self) -> bool:
        """Send and read what the socket allows now; whether any byte moved."""
        moved = False
        if self.to_send:
            try:
                sent = self.sock.send(self.to_send)
            except BlockingIOError:
                sent = 0
            del self.to_send[:sent]
            moved = sent > 0
        if not self.to_send and self.close_when_sent and self.sock.fileno() >= 0:
            self.sock.close()
        while self.reading and not self.eof and self.sock.fileno() >= 0:
            try:
                data = self.sock.recv(self.read_size)
            except BlockingIOError:
                break
            moved = True
            if data:
                self.received += data
            else:
                self.eof = True
        return moved


class Rig:
    """A relay with one carried link, and its two far ends."""

    def __init__(self, inner_family: int, read_size: int = 1 << 20) -> None:
        self.selector = selectors.DefaultSelector()
        self.relay = Relay(self.selector)
        worker, front_client = stream_pair(socket.AF_INET)
        front_inner, work_queue = stream_pair(inner_family)
        for sock in (front_client, front_inner):
            sock.setblocking(False)
            interactive(sock)
        self.link = Link(front_client, "127.0.0.1", None, deadline=float("inf"))
        self.link.inner = Side(front_inner)
        self.link.relaying = True
        self.relay.links[id(self.link)] = self.link
        self.relay.watch(self.link, self.link.client)
        self.relay.watch(self.link, self.link.inner)
        self.worker = Peer(worker, read_size)
        self.work_queue = Peer(work_queue, read_size)
        self.most_held = 0

    def turn(self, timeout: float) -> None:
        """One pass of the front's loop over the relay's sockets (awq/front.py's dispatch)."""
        for key, events in self.selector.select(timeout):
            link, side = key.data
            if side.closed:
                continue
            try:
                if events & selectors.EVENT_WRITE:
                    side.connecting = False
                    self.relay.flush(link, side)
                if events & selectors.EVENT_READ and not side.closed:
                    self.relay.pass_on(link, side)
            except OSError:
                self.relay.drop(link)
        held = max(len(self.link.client.outgoing), len(self.link.inner.outgoing))
        self.most_held = max(self.most_held, held)

    def run_until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + RELAYED_WITHIN
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.1f s waiting for %s" % (RELAYED_WITHIN,
                                                                                what))
            moved = self.worker.work()
            moved = self.work_queue.work() or moved
            self.turn(0 if moved else POLL)

    def ended(self) -> bool:
        return self.link.client.closed and self.link.inner.closed and not self.relay.links

    def close(self) -> None:
        self.relay.drop(self.link)
        for peer in (self.worker, self.work_queue):
            peer.sock.close()
        self.selector.close()


FAMILIES = pytest.mark.parametrize("inner_family", [socket.AF_INET, socket.AF_UNIX],
                                   ids=["work-queue-on-tcp", "work-queue-on-unix"])


@pytest.fixture
def rigs():
    made: List[Rig] = []

    def make(inner_family: int, read_size: int = 1 << 20) -> Rig:
        made.append(Rig(inner_family, read_size))
        return made[-1]
    yield make
    for rig in made:
        rig.close()


def numbered(count: int, prefix: bytes) -> List[bytes]:
    return [b"%s %d %s\n" % (prefix, index, b"x" * (index % 97)) for index in range(count)]


@FAMILIES
def test_protocol_lines_pass_both_ways_in_order(rigs, inner_family):
    rig = rigs(inner_family)
    to_worker, to_work_queue = numbered(500, b"task"), numbered(500, b"result")
    for a, b in zip(to_worker, to_work_queue):  # one write per line, as Work Queue writes
        rig.work_queue.to_send += a
        rig.worker.to_send += b
        rig.work_queue.work()
        rig.worker.work()
        rig.turn(0)
    want_worker, want_work_queue = b"".join(to_worker), b"".join(to_work_queue)
    rig.run_until(lambda: len(rig.worker.received) >= len(want_worker)
                  and len(rig.work_queue.received) >= len(want_work_queue), "the lines")
    assert bytes(rig.worker.received) == want_worker
    assert bytes(rig.work_queue.received) == want_work_queue
    assert not rig.ended()


@FAMILIES
def test_ten_megabytes_each_way_at_once_arrive_intact(rigs, inner_family):
    rig = rigs(inner_family, read_size=4096)  # far ends that read a page at a time
    output, input_file = os.urandom(TEN_MB), os.urandom(TEN_MB)
    rig.worker.to_send += output      # an output file coming back
    rig.work_queue.to_send += input_file  # an input file going out
    rig.run_until(lambda: len(rig.worker.received) >= TEN_MB
                  and len(rig.work_queue.received) >= TEN_MB, "10 MB each way")
    assert rig.work_queue.received == output
    assert rig.worker.received == input_file
    assert rig.most_held <= MOST_HELD


def test_a_side_that_stops_reading_stops_the_relay_reading_the_other(rigs):
    rig = rigs(socket.AF_INET)
    rig.worker.reading = False  # a worker that takes nothing
    sent = os.urandom(3 * MAX_BUFFERED)
    rig.work_queue.to_send += sent
    inner = rig.link.inner

    def held_back() -> bool:
        return not rig.selector.get_key(inner.sock).events & selectors.EVENT_READ
    rig.run_until(held_back, "the relay to stop reading Work Queue's side")
    held = len(rig.link.client.outgoing)
    assert MAX_BUFFERED <= held <= MOST_HELD
    for _ in range(20):  # held back, it takes no more whatever Work Queue still sends
        rig.work_queue.work()
        rig.turn(0)
    assert len(rig.link.client.outgoing) == held
    rig.worker.reading = True
    rig.run_until(lambda: len(rig.worker.received) >= len(sent), "the rest")
    assert rig.worker.received == sent
    assert not rig.link.client.outgoing


def test_a_wake_up_with_nothing_to_read_changes_nothing(rigs):
    rig = rigs(socket.AF_INET)
    rig.relay.pass_on(rig.link, rig.link.client)  # EAGAIN: a spurious wake-up
    rig.relay.pass_on(rig.link, rig.link.inner)
    assert not rig.ended()
    assert not rig.link.client.outgoing and not rig.link.inner.outgoing
    rig.worker.to_send += b"hello\n"
    rig.run_until(lambda: rig.work_queue.received == b"hello\n", "a line after it")


@FAMILIES
def test_a_worker_that_closes_after_its_last_bytes_delivers_them_then_ends_the_link(
        rigs, inner_family):
    rig = rigs(inner_family)
    last = os.urandom(200000)
    rig.worker.to_send += last
    rig.worker.close_when_sent = True
    rig.run_until(lambda: rig.work_queue.eof, "Work Queue to see the end")
    assert rig.work_queue.received == last
    assert rig.ended()


@FAMILIES
def test_work_queue_closing_a_worker_delivers_its_last_bytes_then_ends_the_link(
        rigs, inner_family):
    rig = rigs(inner_family)
    rig.work_queue.to_send += b"exit\n"
    rig.work_queue.close_when_sent = True
    rig.run_until(lambda: rig.worker.eof, "the worker to see the end")
    assert rig.worker.received == b"exit\n"
    assert rig.ended()


def test_a_half_close_ends_the_link_as_a_close_does(rigs):
    rig = rigs(socket.AF_INET)
    rig.worker.to_send += b"last words\n"
    rig.worker.work()
    rig.worker.sock.shutdown(socket.SHUT_WR)
    rig.run_until(lambda: rig.work_queue.eof and rig.worker.eof, "both far ends to see the end")
    assert rig.work_queue.received == b"last words\n"
    assert rig.ended()


def test_a_reset_worker_ends_the_link(rigs):
    rig = rigs(socket.AF_INET)
    rig.worker.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    rig.worker.sock.close()  # an RST, not a FIN
    rig.run_until(lambda: rig.work_queue.eof, "Work Queue to see the end")
    assert rig.ended()


def test_bytes_for_work_queue_wait_while_the_connection_to_it_is_under_way(rigs):
    rig = rigs(socket.AF_INET)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    inner = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    inner.setblocking(False)
    connecting = inner.connect_ex(listener.getsockname()) != 0
    # The link as awq/front_handshake.py carries it without a password: the first bytes are
    # there before Work Queue's end is connected.
    rig.relay.drop(rig.link)
    rig.work_queue.sock.close()
    worker, front_client = stream_pair(socket.AF_INET)
    front_client.setblocking(False)
    rig.link = Link(front_client, "127.0.0.1", None, deadline=float("inf"))
    rig.link.inner = Side(inner)
    rig.link.inner.connecting = connecting
    rig.link.relaying = True
    rig.link.inner.outgoing += b"first\n"
    rig.relay.links[id(rig.link)] = rig.link
    rig.relay.watch(rig.link, rig.link.client)
    rig.relay.flush(rig.link, rig.link.inner)
    rig.worker = Peer(worker)
    rig.worker.to_send += b"second\n"
    accepted, _ = listener.accept()
    listener.close()
    rig.work_queue = Peer(accepted)
    rig.run_until(lambda: rig.work_queue.received == b"first\nsecond\n", "both lines in order")


def fill_work_queue_through_the_relay(rig: Rig) -> bytearray:
    """Worker's bytes through the relay until Work Queue's socket (not read) is full and the
    relay holds the rest of the last chunk: what the worker sent."""
    rig.work_queue.reading = False
    sent = bytearray()
    deadline = time.monotonic() + RELAYED_WITHIN
    while not rig.link.inner.outgoing:
        assert time.monotonic() < deadline, "Work Queue's socket never filled"
        chunk = os.urandom(65536)
        sent += chunk
        rig.worker.to_send += chunk
        rig.worker.work()
        rig.turn(POLL)
    return sent


def test_what_a_full_socket_does_not_take_waits_for_room_in_order(rigs):
    rig = rigs(socket.AF_UNIX)
    sent = fill_work_queue_through_the_relay(rig)
    assert rig.selector.get_key(rig.link.inner.sock).events & selectors.EVENT_WRITE
    rig.work_queue.reading = True
    rig.run_until(lambda: len(rig.work_queue.received) >= len(sent), "what waited")
    assert rig.work_queue.received == sent
    assert not rig.link.inner.outgoing
    assert not rig.selector.get_key(rig.link.inner.sock).events & selectors.EVENT_WRITE


def test_a_worker_that_closes_while_bytes_wait_for_work_queue_has_them_handed_over(rigs):
    rig = rigs(socket.AF_INET)
    sent = fill_work_queue_through_the_relay(rig)
    rig.run_until(lambda: not rig.worker.to_send, "the worker to send it all")
    rig.work_queue.reading = True
    rig.work_queue.work()  # Work Queue makes room, and the relay has not seen it yet
    rig.worker.sock.close()
    rig.relay.pass_on(rig.link, rig.link.client)  # the end is what the relay sees first
    assert rig.ended()
    rig.run_until(lambda: rig.work_queue.eof, "Work Queue to see the end")
    assert rig.work_queue.received == sent
