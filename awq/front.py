"""The front: what strangers reach instead of Work Queue.

Work Queue (CCTools 8) checks a worker's password inside its own loop, one
connection at a time, waiting up to its short timeout for each answer: a
connection that says nothing stalls the whole master for seconds, and a few
of them starve authenticated workers. The front listens on the public port,
in a child process of its own, and proves the password itself on any number
of connections at once (non-blocking, each bounded in time, a bounded number
pending). Only a connection that proved it is carried to Work Queue, which
listens on loopback, and the front then relays its bytes both ways.

The password exchange is CCTools' symmetric one (link_auth_password): each
side sends an identification line and a random key, answers with the SHA1 of
"password key", and says "ok" or "failure". The front plays the manager to
the worker and the worker to Work Queue. Without a password (--insecure) or
with TLS (which the front cannot see into) a connection is carried once it
has sent its first bytes: a silent one still never reaches Work Queue.

Refusals are logged at most once per peer per minute, with a count.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import logging
import os
import resource
import secrets
import selectors
import signal
import socket
import time
from typing import Callable, Dict, List, Optional, Set, Tuple

log = logging.getLogger("awq.front")

HANDSHAKE_TIMEOUT = 5.0   # s a connection has to prove the password: Work Queue's own short
#                           timeout, which a real worker on any network meets
MAX_PENDING = 256         # connections proving themselves at once; past it the oldest goes
REFUSAL_WINDOW = 60.0     # s: one log line per peer per window, the rest counted
MAX_LINE = 1024           # CCTools' longest authentication line
CHUNK = 65536             # bytes read at once while relaying
# A master killed with SIGKILL takes its front with it (PR_SET_PDEATHSIG), but the port is
# free only once the kernel has ended it: a master restarted at once waits this long for it.
PREVIOUS_FRONT_GONE_WITHIN = 1.0
# The front leaves as soon as it sees the master's pipe close; past this it is killed.
FRONT_STOP_WAIT = 5.0
MAX_BUFFERED = 4 << 20    # bytes held for a slow side before the other side is not read

IDENT = b"auth password sha1"
AUTH_LINES = 4            # lines each side sends in the exchange
KEY_LENGTH = 64           # CCTools sends 64 characters of random key


def response_to(password: bytes, key: bytes) -> bytes:
    """The answer that proves the password for a peer's key (SHA1 of "password key", hex)."""
    return hashlib.sha1(password + b" " + key).hexdigest().encode()


def read_password(path: str) -> bytes:
    """The password as CCTools reads the file: all of it, up to a NUL byte."""
    with open(path, "rb") as handle:
        return handle.read().split(b"\0", 1)[0]


class RefusalLog:
    """One line per peer per window: the first refusal at once, later ones as a count."""

    def __init__(self, window: float = REFUSAL_WINDOW,
                 clock: Callable[[], float] = time.monotonic,
                 emit: Callable[[str], None] = log.warning) -> None:
        self.window = window
        self.clock = clock
        self.emit = emit
        # peer -> [window start, refusals since the line, last reason]
        self.peers: Dict[str, List] = {}

    def refused(self, peer: str, reason: str) -> None:
        now = self.clock()
        entry = self.peers.get(peer)
        if entry is not None and now - entry[0] < self.window:
            entry[1] += 1
            entry[2] = reason
            return
        if entry is not None and entry[1]:
            self._summarise(peer, entry)
        self.peers[peer] = [now, 0, reason]
        self.emit("refused a connection from %s: %s (further refusals from it are counted, "
                  "one line a minute)" % (peer, reason))

    def tick(self, final: bool = False) -> None:
        """Say what each peer whose window ended did since its line; forget quiet peers."""
        now = self.clock()
        for peer, entry in list(self.peers.items()):
            if final or now - entry[0] >= self.window:
                if entry[1]:
                    self._summarise(peer, entry)
                del self.peers[peer]

    def _summarise(self, peer: str, entry: List) -> None:
        self.emit("refused %d more connections from %s in the last %d s (the last: %s)"
                  % (entry[1], peer, min(int(self.clock() - entry[0]), int(self.window)),
                     entry[2]))


class ServerAuth:
    """The manager's side of the password exchange, fed the peer's lines one by one."""

    def __init__(self, password: bytes) -> None:
        self.password = password
        self.key = secrets.token_hex(KEY_LENGTH // 2).encode()
        self.expected = response_to(password, self.key)
        self.step = 0

    def opening(self) -> bytes:
        return IDENT + b"\n" + self.key + b"\n"

    def feed(self, line: bytes) -> Tuple[bytes, Optional[str]]:
        """What to send back, and why the peer is refused (None: go on, "" : done)."""
        self.step += 1
        if self.step == 1:
            return b"", (None if line == IDENT else "does not use password authentication "
                         "(no password, or not a Work Queue worker)")
        if self.step == 2:
            return response_to(self.password, line) + b"\n", None
        if self.step == 3:
            if not secrets.compare_digest(line, self.expected):
                return b"failure\n", "presented the wrong password"
            return b"ok\n", None
        if line != b"ok":
            return b"", "refused our password (its password file differs)"
        return b"", ""


class ClientAuth:
    """The worker's side of the exchange, played towards Work Queue."""

    def __init__(self, password: bytes) -> None:
        self.password = password
        self.key = secrets.token_hex(KEY_LENGTH // 2).encode()
        self.step = 0

    def opening(self) -> bytes:
        return IDENT + b"\n" + self.key + b"\n"

    def feed(self, line: bytes) -> Tuple[bytes, Optional[str]]:
        self.step += 1
        if self.step == 1:
            return b"", (None if line == IDENT else "Work Queue did not ask for the password")
        if self.step == 2:
            return response_to(self.password, line) + b"\n", None
        if self.step == 3:
            if not secrets.compare_digest(line, response_to(self.password, self.key)):
                return b"", "Work Queue has another password"
            return b"ok\n", None
        return b"", ("" if line == b"ok" else "Work Queue refused the front's password")


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
        if self.server_auth:
            self.client.outgoing += self.server_auth.opening()


class Front:
    """The accept/prove/relay loop over one public listening socket."""

    def __init__(self, public: socket.socket, inner_address: Tuple[str, int],
                 password: Optional[bytes], refusals: Optional[RefusalLog] = None,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT, max_pending: int = MAX_PENDING,
                 stop_fd: Optional[int] = None) -> None:
        self.public = public
        self.public.setblocking(False)
        self.inner_address = inner_address
        self.password = password
        self.refusals = refusals or RefusalLog()
        self.handshake_timeout = handshake_timeout
        self.max_pending = max_pending
        self.selector = selectors.DefaultSelector()
        self.selector.register(public, selectors.EVENT_READ, None)
        self.stop_fd = stop_fd
        if stop_fd is not None:
            self.selector.register(stop_fd, selectors.EVENT_READ, "stop")
        self.pending: "collections.OrderedDict[int, Link]" = collections.OrderedDict()
        self.links: Dict[int, Link] = {}
        self.running = True
        self.next_tick = 0.0
        self.buffer = bytearray(CHUNK)
        self.view = memoryview(self.buffer)

    # -- the loop

    def serve(self) -> None:
        while self.running:
            self.run_once(self._timeout())

    def run_once(self, timeout: Optional[float]) -> None:
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
        if self.pending:
            self._expire()
        now = time.monotonic()
        if now >= self.next_tick:  # refusal windows are counted in seconds
            self.next_tick = now + 1.0
            self.refusals.tick()

    def close(self) -> None:
        self.refusals.tick(final=True)
        for link in list(self.links.values()):
            self._drop(link)
        self.selector.close()
        self.public.close()

    def _timeout(self) -> float:
        if not self.pending:
            return 1.0  # refusal windows are counted in seconds
        oldest = next(iter(self.pending.values()))
        return max(0.0, min(1.0, oldest.deadline - time.monotonic()))

    # -- accepting and proving

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
            _interactive(sock)
            # A worker that vanishes is noticed as Work Queue notices its own (CCTools sets it).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            link = Link(sock, str(address[0]), self.password,
                        time.monotonic() + self.handshake_timeout)
            self.links[id(link)] = link
            self.pending[id(link)] = link
            self._watch(link, link.client)
            if len(self.pending) > self.max_pending:
                _, oldest = self.pending.popitem(last=False)
                self._refuse(oldest, "too many connections proving themselves at once")
            if link.client.outgoing:
                self._flush(link, link.client)

    def _expire(self) -> None:
        now = time.monotonic()
        while self.pending:
            link = next(iter(self.pending.values()))
            if link.deadline > now:
                return
            self._refuse(link, "did not prove the password within %g s" % self.handshake_timeout
                         if self.password is not None else
                         "sent nothing within %g s" % self.handshake_timeout)

    def _refuse(self, link: Link, reason: str) -> None:
        self.refusals.refused(link.peer, reason)
        self._drop(link)

    def _serve_side(self, link: Link, side: Side, events: int) -> None:
        try:
            if events & selectors.EVENT_WRITE:
                side.connecting = False
                self._flush(link, side)
            if events & selectors.EVENT_READ and not side.closed:
                self._read(link, side)
        except OSError as err:
            if id(link) in self.pending:
                self._refuse(link, "connection failed: %s" % err.strerror)
            else:
                self._drop(link)

    def _read(self, link: Link, side: Side) -> None:
        # One buffer for every read: recv(CHUNK) would allocate CHUNK bytes per message.
        size = side.sock.recv_into(self.buffer)
        data = self.view[:size]
        if not data:
            if id(link) in self.pending:
                if side is link.client:
                    self._refuse(link, "closed the connection before proving the password"
                                 if self.password is not None else "closed without a word")
                else:
                    log.error("Work Queue closed the front's connection for %s before it was "
                              "carried", link.peer)
                    self._drop(link)
            else:
                self._finish(link, side)
            return
        if link.relaying:
            other = link.inner if side is link.client else link.client
            assert other is not None
            if not other.outgoing and not other.connecting:
                # Most messages pass at once: no buffer, no change to what the selector watches.
                try:
                    sent = other.sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                if sent == len(data):
                    return
                data = data[sent:]
            other.outgoing += data
            self._flush(link, other)
            return
        side.incoming += data
        if side is link.inner:
            self._proving_inner(link)
        elif link.inner is None:
            self._proving_client(link)
        elif len(link.client.incoming) > MAX_BUFFERED:  # proved; waits for Work Queue's end
            self._drop(link)

    def _lines(self, side: Side, most: int) -> List[bytes]:
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

    def _proving_client(self, link: Link) -> None:
        if link.server_auth is None:
            self._carry(link)  # no password: it spoke, which a silent stranger does not
            return
        try:
            lines = self._lines(link.client, AUTH_LINES - link.server_auth.step)
        except ValueError:
            self._refuse(link, "sent a line longer than any in the password exchange")
            return
        for line in lines:
            reply, problem = link.server_auth.feed(line)
            link.client.outgoing += reply
            if problem:
                self._flush(link, link.client)
                self._refuse(link, problem)
                return
            if problem == "":
                self._carry(link)
                break
        self._flush(link, link.client)

    def _carry(self, link: Link) -> None:
        """The stranger proved itself (or spoke): connect to Work Queue on loopback."""
        family = socket.AF_INET6 if ":" in self.inner_address[0] else socket.AF_INET
        inner = socket.socket(family, socket.SOCK_STREAM)
        inner.setblocking(False)
        _interactive(inner)
        err = inner.connect_ex(self.inner_address)
        if err not in (0, errno.EINPROGRESS):
            inner.close()
            log.error("cannot reach Work Queue at %s:%d: %s", self.inner_address[0],
                      self.inner_address[1], os.strerror(err))
            self._drop(link)
            return
        link.inner = Side(inner)
        link.inner.connecting = err != 0
        # Work Queue accepts only inside wait(), which the master calls at least once a second
        # with nothing queued: the deadline now covers reaching it too. The latest deadline
        # goes last, so the pending are still in deadline order.
        link.deadline = time.monotonic() + self.handshake_timeout + 1.0
        self.pending.move_to_end(id(link))
        if link.client_auth is None:
            link.inner.outgoing += link.client.incoming
            link.client.incoming.clear()
            self._start_relay(link)
        else:
            link.inner.outgoing += link.client_auth.opening()
        self._watch(link, link.inner)
        self._watch(link, link.client)
        self._flush(link, link.inner)

    def _proving_inner(self, link: Link) -> None:
        assert link.inner is not None and link.client_auth is not None
        try:
            lines = self._lines(link.inner, AUTH_LINES - link.client_auth.step)
        except ValueError:
            log.error("Work Queue sent an unexpected line to the front")
            self._drop(link)
            return
        for line in lines:
            reply, problem = link.client_auth.feed(line)
            link.inner.outgoing += reply
            if problem:
                log.error("the front cannot hand %s to Work Queue: %s", link.peer, problem)
                self._drop(link)
                return
            if problem == "":
                # What each side sent past the exchange belongs to the other.
                link.inner.outgoing += link.client.incoming
                link.client.incoming.clear()
                link.client.outgoing += link.inner.incoming
                link.inner.incoming.clear()
                self._start_relay(link)
                self._flush(link, link.client)
                break
        self._flush(link, link.inner)

    def _start_relay(self, link: Link) -> None:
        link.relaying = True
        self.pending.pop(id(link), None)
        log.debug("carrying %s to Work Queue", link.peer)

    # -- relaying

    def _flush(self, link: Link, side: Side) -> None:
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
        self._watch(link, side)
        other = link.inner if side is link.client else link.client
        if other is not None and not other.closed:
            self._watch(link, other)

    def _watch(self, link: Link, side: Side) -> None:
        """Read a side unless the other is backed up; write it while it has bytes waiting."""
        if side.closed:
            return
        other = link.inner if side is link.client else link.client
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

    def _finish(self, link: Link, side: Side) -> None:
        """One side closed: hand over what the other still has to say to it, then close both."""
        other = link.inner if side is link.client else link.client
        if other is not None and other.outgoing and not other.closed:
            try:
                # One try, without blocking: a peer that does not read must not stall the
                # front, and what fits in its socket buffer is what a direct close would pass.
                other.sock.send(other.outgoing)
            except OSError:
                pass
        self._drop(link)

    def _drop(self, link: Link) -> None:
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


def _interactive(sock: socket.socket) -> None:
    """No Nagle delay: Work Queue's messages are small and answered (CCTools sets the same)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


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


def run_child(public: socket.socket, inner_address: Tuple[str, int],
              password_file: Optional[str], stop_fd: int) -> None:
    """The front's process: serve until the master's pipe closes; never returns."""
    code = 0
    try:
        raise_open_file_limit()
        password = read_password(password_file) if password_file else None
        front = Front(public, inner_address, password, stop_fd=stop_fd)
        front.serve()
        front.close()
    except BaseException as err:  # the master must hear of it: workers can no longer reach it
        log.error("the front stopped: %s: %s; stopping the master", type(err).__name__, err)
        try:
            os.kill(os.getppid(), signal.SIGTERM)
        except OSError:
            pass
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


class FrontProcess:
    """The master's handle on its front child: started forked, stopped by PID."""

    def __init__(self, pid: int, stop_write_fd: int, address: Tuple[str, int]) -> None:
        self.pid = pid
        self.stop_write_fd = stop_write_fd
        self.address = address
        self.stopping = False

    def wait_for_exit(self) -> None:
        """Block until the front has ended (reaped here, or by Work Queue's process module)."""
        while True:
            try:
                pid, _ = os.waitpid(self.pid, 0)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid:
                return

    def stop(self, timeout: float = FRONT_STOP_WAIT) -> None:
        """Close the pipe the front watches, wait for it a bounded time, then kill it."""
        self.stopping = True
        if self.stop_write_fd >= 0:
            os.close(self.stop_write_fd)
            self.stop_write_fd = -1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return  # reaped already (Work Queue's process module reaps any child)
            if pid:
                return
            time.sleep(0.01)
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (OSError, ChildProcessError):
            pass


def start_front(public: socket.socket, inner_address: Tuple[str, int],
                password_file: Optional[str], keep_fds: Tuple[int, ...] = ()) -> FrontProcess:
    """Fork the front; the child keeps only the public socket, the pipe and the log's fds."""
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            # A TERM or INT for the whole group (systemd's default KillMode, a Ctrl-C, a
            # killpg) is the master's to handle: it saves its table and then closes the pipe
            # that ends us. Ending first would look like a front that died under it.
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_IGN)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _die_with_parent(parent)
            os.close(write_fd)
            keep = {0, 1, 2, public.fileno(), read_fd} | set(keep_fds)
            _close_all_but(keep)
            _reopen_log_files()
        except BaseException:
            os._exit(1)
        run_child(public, inner_address, password_file, read_fd)
    os.close(read_fd)
    return FrontProcess(pid, write_fd, public.getsockname()[:2])


def _die_with_parent(parent: int) -> None:
    """End with the master even when a child it forked still holds the pipe's other end."""
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the pipe alone says the master is gone
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(0)


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _reopen_log_files() -> None:
    """The master's log file, reopened by name: the master rotates it, the front follows."""
    import logging.handlers
    for logger in (logging.getLogger("awq"), logging.getLogger()):
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler):
                follower = logging.handlers.WatchedFileHandler(handler.baseFilename)
                follower.setFormatter(handler.formatter)
                logger.removeHandler(handler)
                logger.addHandler(follower)


def _close_all_but(keep: Set[int]) -> None:
    """Work Queue's loopback listener, the master's lock and the rest are not the front's."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass

