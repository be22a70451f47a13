"""Proving a stranger: the front as the manager to it, then as the worker to Work Queue.

A stranger that proves the password (or, without one, that speaks at all) is carried:
the front connects to Work Queue's private Unix socket, proves the password there in
the stranger's place, and hands the pair to the relay.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from typing import List, Optional, Sequence

from awq.front_auth import AUTH_LINES, RefusalLog
from awq.front_link import MAX_BUFFERED, Link, Relay, Side

log = logging.getLogger("awq.front")

MAX_LINE = 1024           # CCTools' longest authentication line
# Numbers for the front's ends of its Unix connections; each file lives only from bind to
# connect, so a collision is a name a killed front left, tried again elsewhere.
FRONT_NAME_SPACE = 1 << 20
FRONT_NAME_ATTEMPTS = 4


class Handshake:
    """The password exchanges of every link still proving itself."""

    def __init__(self, relay: Relay, inner_paths: Sequence[str],
                 password: Optional[bytes], refusals: RefusalLog,
                 handshake_timeout: float) -> None:
        self.relay = relay
        # One Work Queue manager or several (awq/shards.py): each proved stranger goes to
        # the one with the fewest carried now; the master places each task where its free
        # cores are.
        self.inner_paths = list(inner_paths)
        self.password = password
        self.refusals = refusals
        self.handshake_timeout = handshake_timeout
        self.connections = 0

    def refuse(self, link: Link, reason: str) -> None:
        self.refusals.refused(link.peer, reason)
        self.relay.drop(link)

    def received(self, link: Link, side: Side, data: memoryview) -> None:
        """Bytes from a side of a link that is not yet relayed."""
        side.incoming += data
        if side is link.inner:
            self._proving_inner(link)
        elif link.inner is None:
            self._proving_client(link)
        elif len(link.client.incoming) > MAX_BUFFERED:  # proved; waits for Work Queue's end
            self.relay.drop(link)

    def _proving_client(self, link: Link) -> None:
        if link.server_auth is None:
            self._carry(link)  # no password: it spoke, which a silent stranger does not
            return
        try:
            lines = _lines(link.client, AUTH_LINES - link.server_auth.step)
        except ValueError:
            self.refuse(link, "sent a line longer than any in the password exchange")
            return
        for line in lines:
            reply, problem = link.server_auth.feed(line)
            link.client.outgoing += reply
            if problem:
                self.relay.flush(link, link.client)
                self.refuse(link, problem)
                return
            if problem == "":
                self._carry(link)
                break
        self.relay.flush(link, link.client)

    def _carry(self, link: Link) -> None:
        """The stranger proved itself (or spoke): connect to Work Queue's Unix socket."""
        inner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        inner.setblocking(False)
        self.connections += 1
        named = _name_our_end(inner, self.connections)
        link.manager = self._least_held()
        inner_path = self.inner_paths[link.manager]
        err = inner.connect_ex(inner_path)
        if named:
            _remove_name(named)  # the socket keeps its address; the file was only for bind
        if err not in (0, errno.EINPROGRESS):
            inner.close()
            # EAGAIN: Work Queue's backlog is full, which only connections that proved the
            # password fill: it has not called wait() for that long.
            log.error("cannot reach Work Queue at %s: %s", inner_path, os.strerror(err))
            self.relay.drop(link)
            return
        link.inner = Side(inner)
        link.inner.connecting = err != 0
        # Work Queue accepts only inside wait(), which the master calls at least once a second
        # with nothing queued: the deadline now covers reaching it too. The latest deadline
        # goes last, so the pending are still in deadline order.
        link.deadline = time.monotonic() + self.handshake_timeout + 1.0
        self.relay.pending.move_to_end(id(link))
        if link.client_auth is None:
            link.inner.outgoing += link.client.incoming
            link.client.incoming.clear()
            self._start_relay(link)
        else:
            link.inner.outgoing += link.client_auth.opening()
        self.relay.watch(link, link.inner)
        self.relay.watch(link, link.client)
        self.relay.flush(link, link.inner)

    def _least_held(self) -> int:
        """The manager with the fewest connections carried to it now (the first of a tie)."""
        count = len(self.inner_paths)
        if count == 1:
            return 0
        held = [0] * count
        for link in self.relay.links.values():
            if link.inner is not None and not link.inner.closed:
                held[link.manager] += 1
        return held.index(min(held))

    def _proving_inner(self, link: Link) -> None:
        assert link.inner is not None and link.client_auth is not None
        try:
            lines = _lines(link.inner, AUTH_LINES - link.client_auth.step)
        except ValueError:
            log.error("Work Queue sent an unexpected line to the front")
            self.relay.drop(link)
            return
        for line in lines:
            reply, problem = link.client_auth.feed(line)
            link.inner.outgoing += reply
            if problem:
                log.error("the front cannot hand %s to Work Queue: %s", link.peer, problem)
                self.relay.drop(link)
                return
            if problem == "":
                # What each side sent past the exchange belongs to the other.
                link.inner.outgoing += link.client.incoming
                link.client.incoming.clear()
                link.client.outgoing += link.inner.incoming
                link.inner.incoming.clear()
                self._start_relay(link)
                self.relay.flush(link, link.client)
                break
        self.relay.flush(link, link.inner)

    def _start_relay(self, link: Link) -> None:
        link.relaying = True
        self.relay.pending.pop(id(link), None)
        log.debug("carrying %s to Work Queue (%s)", link.peer, self.inner_paths[link.manager])


def _name_our_end(sock: socket.socket, number: int) -> Optional[str]:
    """Give our end of the connection an address Work Queue reads as "localhost:N".

    Work Queue refuses a connection whose peer address getnameinfo cannot name
    (link_accept). An unbound Unix socket's peer address is empty, and glibc then reads
    the name past what accept returned, so whether it can be named would be luck. For a
    Unix address getnameinfo gives "localhost" and the path as the service, which Work
    Queue reads with atoi: a name "N.front", bound in the front's private directory (its
    working directory), makes each connection a worker "localhost:N" of its own, so the
    master tells a task sent again on another connection from one still on the first
    (task_watch's started_on). Returns the name to unlink once connected; None when only an
    abstract name (read as port 0) could be had.
    """
    for attempt in range(FRONT_NAME_ATTEMPTS):
        name = "%d.front" % ((number + attempt * FRONT_NAME_SPACE // FRONT_NAME_ATTEMPTS)
                             % FRONT_NAME_SPACE + 1)
        try:
            sock.bind(name)
            return name
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                break  # not a directory we may write: fall back to the abstract name
    try:
        sock.bind("")
    except OSError:
        pass  # no autobind here: the peer address stays empty
    return None


def _remove_name(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass  # a name left behind is swept with the stale sockets at the next start


def _lines(side: Side, most: int) -> List[bytes]:
    """At most `most` whole lines: past the exchange, the bytes are Work Queue's protocol."""
    lines: List[bytes] = []
    while len(lines) < most:
        end = side.incoming.find(b"\n")
        if end < 0:
            if len(side.incoming) > MAX_LINE:
                raise ValueError("line too long")
            break
        lines.append(bytes(side.incoming[:end]).rstrip(b"\r"))
        del side.incoming[:end + 1]
    return lines
