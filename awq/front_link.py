"""A stranger's connection through the front, and the relay that passes its bytes.

A Link pairs the stranger's socket with the one to Work Queue (once it is carried);
the Relay keeps the selector watching what each side waits for, passes bytes both
ways, and closes the pair.
"""

from __future__ import annotations

import collections
import errno
import selectors
import socket
from typing import Dict, Optional

from awq.front_auth import ClientAuth, ServerAuth

MAX_BUFFERED = 4 << 20    # bytes held for a slow side before the other side is not read
# Bytes read at once from a carried side, into one buffer that serves every link: loopback's
# largest segment. A bigger buffer does not pay: it leaves the CPU's cache between the read
# and the send, and a big output file then costs more system time, not less.
RELAY_CHUNK = 1 << 16


class Side:
    """One socket of a pair, with what is waiting to be written to it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.outgoing = bytearray()
        self.incoming = bytearray()
        self.closed = False
        self.connecting = False  # a connect under way says it is done by becoming writable


class Link:
    """A stranger's connection: proving itself, then (once carried) relayed to Work Queue."""

    def __init__(self, client: socket.socket, peer: str, password: Optional[bytes],
                 deadline: float) -> None:
        self.client = Side(client)
        self.inner: Optional[Side] = None
        self.peer = peer
        self.deadline = deadline
        self.server_auth = ServerAuth(password) if password is not None else None
        self.client_auth = ClientAuth(password) if password is not None else None
        self.relaying = False
        self.manager = 0   # which of Work Queue's sockets it is carried to (several managers)
        if self.server_auth:
            self.client.outgoing += self.server_auth.opening()

    def other(self, side: Side) -> Optional[Side]:
        """The side that what `side` sends goes to."""
        return self.inner if side is self.client else self.client


class Relay:
    """Every open link: what the selector watches on each side, passing bytes, closing."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        # Links still proving themselves, in deadline order (the oldest first).
        self.pending: "collections.OrderedDict[int, Link]" = collections.OrderedDict()
        self.links: Dict[int, Link] = {}
        self.buffer = bytearray(RELAY_CHUNK)
        self.view = memoryview(self.buffer)

    def pass_on(self, link: Link, side: Side) -> None:
        """A carried side is readable: pass what it sent to the other side; its end (or a
        reset, as OSError) ends the pair.

        Nearly all the front's traffic is here: Work Queue writes one protocol line per
        write, and most reads return one message. So the usual path is one read and one
        send, inline, with no copy kept and no change to what the selector watches."""
        try:
            size = side.sock.recv_into(self.buffer)
        except (BlockingIOError, InterruptedError):
            return  # woken with nothing to read: not an end
        if not size:
            self.finish(link, side)
            return
        other = link.inner if side is link.client else link.client
        assert other is not None
        if other.outgoing or other.connecting:
            self._hold(link, other, self.view[:size])
            return
        try:
            sent = other.sock.send(self.view[:size])
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent != size:
            self._hold(link, other, self.view[sent:size])

    def forward(self, link: Link, side: Side, data: memoryview) -> None:
        """Pass bytes a carried side sent to the other side; what does not fit now waits."""
        other = link.other(side)
        assert other is not None
        if not other.outgoing and not other.connecting:
            try:
                sent = other.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        self._hold(link, other, data)

    def _hold(self, link: Link, side: Side, data: memoryview) -> None:
        """Keep bytes for `side` until its socket says it has room (a send now would fail;
        the write event passes them on, in order); the side they came from is not read
        while too many wait."""
        side.outgoing += data
        self.watch(link, side)
        source = link.other(side)
        if source is not None:
            self.watch(link, source)

    def flush(self, link: Link, side: Side) -> None:
        if side.closed:
            return
        while side.outgoing:
            try:
                sent = side.sock.send(side.outgoing)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                if err.errno == errno.ENOTCONN:  # a connect still under way
                    break
                raise
            del side.outgoing[:sent]
        self.watch(link, side)
        other = link.other(side)
        if other is not None and not other.closed:
            self.watch(link, other)

    def watch(self, link: Link, side: Side) -> None:
        """Read a side unless the other is backed up; write it while it has bytes waiting."""
        if side.closed:
            return
        other = link.other(side)
        events = 0
        if other is None or len(other.outgoing) < MAX_BUFFERED:
            events |= selectors.EVENT_READ
        if side.outgoing or side.connecting:
            events |= selectors.EVENT_WRITE
        try:
            key = self.selector.get_key(side.sock)
            if key.events != events:
                self.selector.modify(side.sock, events, (link, side))
        except KeyError:
            self.selector.register(side.sock, events, (link, side))

    def finish(self, link: Link, side: Side) -> None:
        """One side closed: hand over what the other still has to say to it, then close both."""
        other = link.other(side)
        if other is not None and other.outgoing and not other.closed:
            try:
                # One try, without blocking: a peer that does not read must not stall the
                # front, and what fits in its socket buffer is what a direct close would pass.
                other.sock.send(other.outgoing)
            except OSError:
                pass
        self.drop(link)

    def drop(self, link: Link) -> None:
        self.pending.pop(id(link), None)
        self.links.pop(id(link), None)
        for side in (link.client, link.inner):
            if side is None or side.closed:
                continue
            side.closed = True
            try:
                self.selector.unregister(side.sock)
            except (KeyError, ValueError):
                pass
            side.sock.close()


def interactive(sock: socket.socket) -> None:
    """No Nagle delay: Work Queue's messages are small and answered (CCTools sets the same)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
