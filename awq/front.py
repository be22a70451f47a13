"""The front: what strangers reach instead of Work Queue.

Work Queue (CCTools 8) checks a worker's password inside its own loop, one
connection at a time, waiting up to its short timeout for each answer: a
connection that says nothing stalls the whole master for seconds, and a few
of them starve authenticated workers. The front listens on the public port,
in a child process of its own, and proves the password itself on any number
of connections at once (non-blocking, each bounded in time, a bounded number
pending). Only a connection that proved it is carried to Work Queue, which
listens on a Unix socket only this user reaches, and the front then relays its
bytes both ways.

The password exchange is CCTools' symmetric one (link_auth_password): each
side sends an identification line and a random key, answers with the SHA1 of
"password key", and says "ok" or "failure". The front plays the manager to
the worker and the worker to Work Queue. Without a password (--insecure) or
with TLS (which the front cannot see into) a connection is carried once it
has sent its first bytes: a silent one still never reaches Work Queue.

Refusals are logged at most once per peer per minute, with a count.

This module is the accept/expire loop; the exchange is in awq/front_auth.py, proving a
connection in awq/front_handshake.py, relaying it in awq/front_link.py, and the child
process the master starts in awq/front_process.py.
"""

from __future__ import annotations

import collections
import errno
import logging
import resource
import selectors
import socket
import time
from typing import List, Optional, Sequence, Tuple, Union

from awq.front_auth import (AUTH_LINES, ClientAuth, RefusalLog, ServerAuth, read_password,
                            response_to)
from awq.front_handshake import Handshake
from awq.front_link import Link, Relay, Side, interactive

__all__ = ["AUTH_LINES", "ClientAuth", "Front", "HANDSHAKE_TIMEOUT", "MAX_PENDING",
           "PREVIOUS_FRONT_GONE_WITHIN", "RefusalLog", "ServerAuth", "choose_victim", "listen",
           "raise_open_file_limit", "read_password", "response_to"]

log = logging.getLogger("awq.front")

HANDSHAKE_TIMEOUT = 5.0   # s a connection has to prove the password: Work Queue's own short
#                           timeout, which a real worker on any network meets
MAX_PENDING = 256         # connections proving themselves at once; past it one goes (choose_victim)
# When the front is full, an address holding more than its equal share of the pending
# connections, and more than this part of them, loses its own first: one flooding address
# cannot push out another's worker. The part lets a foreman's host start its workers at once.
PEER_SHARE_FLOOR = 1 / 32
CHUNK = 65536             # bytes read at once while relaying
# A master killed with SIGKILL takes its front with it (PR_SET_PDEATHSIG), but the port is
# free only once the kernel has ended it: a master restarted at once waits this long for it.
PREVIOUS_FRONT_GONE_WITHIN = 1.0


class Front:
    """The accept/expire loop over one public listening socket; links are proved and relayed
    by the Handshake and the Relay it holds."""

    def __init__(self, public: socket.socket, inner_paths: Union[str, Sequence[str]],
                 password: Optional[bytes], refusals: Optional[RefusalLog] = None,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT, max_pending: int = MAX_PENDING,
                 stop_fd: Optional[int] = None, doorbell_fd: Optional[int] = None) -> None:
        self.public = public
        self.public.setblocking(False)
        self.password = password
        self.refusals = refusals or RefusalLog()
        self.handshake_timeout = handshake_timeout
        self.max_pending = max_pending
        self.selector = selectors.DefaultSelector()
        self.selector.register(public, selectors.EVENT_READ, None)
        self.stop_fd = stop_fd
        if stop_fd is not None:
            self.selector.register(stop_fd, selectors.EVENT_READ, "stop")
        self.relay = Relay(self.selector)
        self.pending = self.relay.pending
        self.handshake = Handshake(self.relay, [inner_paths] if isinstance(inner_paths, str)
                                   else inner_paths, password, self.refusals,
                                   handshake_timeout)
        # Several managers (awq/shards.py): the master sleeps in one of them, so it is told
        # when bytes may have gone to another (one byte per busy turn, dropped when unread).
        self.doorbell = socket.socket(fileno=doorbell_fd) if doorbell_fd is not None else None
        self.running = True
        self.next_tick = 0.0
        self.buffer = bytearray(CHUNK)
        self.view = memoryview(self.buffer)

    def serve(self) -> None:
        while self.running:
            self.run_once(self._timeout())

    def run_once(self, timeout: Optional[float]) -> None:
        served = False
        for key, events in self.selector.select(timeout):
            if key.data == "stop":
                self.running = False  # the master is gone (its end of the pipe closed)
                return
            if key.data is None:
                self._accept()
            else:
                link, side = key.data
                if link.client.closed and (link.inner is None or link.inner.closed):
                    continue
                self._serve_side(link, side, events)
                served = True
        if served and self.doorbell is not None:
            self._ring()
        if self.pending:
            self._expire()
        now = time.monotonic()
        if now >= self.next_tick:  # refusal windows are counted in seconds
            self.next_tick = now + 1.0
            self.refusals.tick()

    def _ring(self) -> None:
        try:
            self.doorbell.send(b"!", socket.MSG_DONTWAIT)  # type: ignore[union-attr]
        except OSError:
            pass  # full: the master has not listened since the last rings, which suffice

    def close(self) -> None:
        self.refusals.tick(final=True)
        for link in list(self.relay.links.values()):
            self.relay.drop(link)
        self.selector.close()
        self.public.close()

    def _timeout(self) -> float:
        if not self.pending:
            return 1.0  # refusal windows are counted in seconds
        oldest = next(iter(self.pending.values()))
        return max(0.0, min(1.0, oldest.deadline - time.monotonic()))

    def _accept(self) -> None:
        for _ in range(64):  # a burst of connections must not starve the relayed ones
            try:
                sock, address = self.public.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("cannot accept a connection: %s", err)
                    return
                raise
            sock.setblocking(False)
            interactive(sock)
            # A worker that vanishes is noticed as Work Queue notices its own (CCTools sets it).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            link = Link(sock, str(address[0]), self.password,
                        time.monotonic() + self.handshake_timeout)
            self.relay.links[id(link)] = link
            self.pending[id(link)] = link
            self.relay.watch(link, link.client)
            if len(self.pending) > self.max_pending:
                victim, reason = choose_victim(list(self.pending.values()), self.max_pending)
                self.handshake.refuse(victim, reason)
            if link.client.outgoing:
                self.relay.flush(link, link.client)

    def _expire(self) -> None:
        now = time.monotonic()
        while self.pending:
            link = next(iter(self.pending.values()))
            if link.deadline > now:
                return
            self.handshake.refuse(link, "did not prove the password within %g s"
                                  % self.handshake_timeout if self.password is not None else
                                  "sent nothing within %g s" % self.handshake_timeout)

    def _serve_side(self, link: Link, side: Side, events: int) -> None:
        try:
            if events & selectors.EVENT_WRITE:
                side.connecting = False
                self.relay.flush(link, side)
            if events & selectors.EVENT_READ and not side.closed:
                self._read(link, side)
        except OSError as err:
            if id(link) in self.pending:
                self.handshake.refuse(link, "connection failed: %s" % err.strerror)
            else:
                self.relay.drop(link)

    def _read(self, link: Link, side: Side) -> None:
        if link.relaying:
            self.relay.pass_on(link, side)
            return
        # One buffer for every read: recv(CHUNK) would allocate CHUNK bytes per message.
        try:
            size = side.sock.recv_into(self.buffer)
        except (BlockingIOError, InterruptedError):
            return  # a wake-up with nothing to read is not an end (as in Relay.pass_on)
        data = self.view[:size]
        if not data:
            self._ended(link, side)
        else:
            self.handshake.received(link, side, data)

    def _ended(self, link: Link, side: Side) -> None:
        """A side closed its end: a refusal while proving, the end of the pair once relayed."""
        if id(link) not in self.pending:
            self.relay.finish(link, side)
        elif side is link.client:
            self.handshake.refuse(link, "closed the connection before proving the password"
                                  if self.password is not None else "closed without a word")
        else:
            log.error("Work Queue closed the front's connection for %s before it was "
                      "carried", link.peer)
            self.relay.drop(link)


def choose_victim(pending: List[Link], max_pending: int) -> Tuple[Link, str]:
    """Which pending connection goes when too many are, and why: the oldest of the address
    that holds the most, if it holds more than its share; else the oldest. One that proved
    the password (waiting for Work Queue) goes last: it is a worker. Pure (no sockets touched)
    so the admission policy can be tested on its own; `pending` is oldest first."""
    unproven = [link for link in pending if not _proven(link)]
    if not unproven:
        return pending[0], "too many connections proving themselves at once"
    held = collections.Counter(link.peer for link in unproven)
    peer, count = held.most_common(1)[0]
    if count > max(1, max_pending * PEER_SHARE_FLOOR, max_pending // len(held)):
        return next(link for link in unproven if link.peer == peer), \
            "too many of its connections proving themselves at once"
    return unproven[0], "too many connections proving themselves at once"


def _proven(link: Link) -> bool:
    """Whether the stranger proved the password (or, without one, spoke): carried already,
    or waiting for its last line."""
    return link.inner is not None or (link.server_auth is not None
                                      and link.server_auth.step >= 3)


def raise_open_file_limit() -> None:
    """Each carried connection holds two descriptors: allow as many as the system lets us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def listen(interface: str, port: int,
           settle: float = PREVIOUS_FRONT_GONE_WITHIN) -> socket.socket:
    """The public socket; OSError names the likely cause when it cannot be had."""
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    deadline = time.monotonic() + settle
    while True:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((interface, port))
            sock.listen(socket.SOMAXCONN)
            return sock
        except OSError as err:
            sock.close()
            if err.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                _explain_listen_failure(err, interface, port)
            time.sleep(0.05)


def _explain_listen_failure(err: OSError, interface: str, port: int) -> None:
    """Raise the one line that names the likely cause."""
    where = "%s:%d" % (interface or "*", port)
    if err.errno == errno.EADDRINUSE:
        raise OSError("port %s is already in use: another alien_work_queue, a foreman of "
                      "alien_wq_worker.sh or another program listens there (choose another "
                      "with --port)" % where)
    if err.errno == errno.EADDRNOTAVAIL:
        raise OSError("cannot listen on %s: no interface of this host has the address %s "
                      "(--interface)" % (where, interface))
    if err.errno == errno.EACCES:
        raise OSError("cannot listen on %s: ports below 1024 need privileges" % where)
    raise OSError("cannot listen on %s: %s" % (where, err.strerror))
