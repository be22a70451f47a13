"""The password exchange the front plays on both sides, and its rate-limited refusal log.

CCTools' symmetric exchange (link_auth_password): each side sends an identification
line and a random key, answers with the SHA1 of "password key", and says "ok" or
"failure". ServerAuth is the manager's side (towards a stranger), ClientAuth the
worker's (towards Work Queue).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import Callable, Dict, List, Optional, Tuple

log = logging.getLogger("awq.front")

REFUSAL_WINDOW = 60.0     # s: one log line per peer per window, the rest counted
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


class _Exchange:
    """What both sides of CCTools' symmetric exchange start with: the identification line and
    a random key of their own, then the peer's lines fed one by one."""

    def __init__(self, password: bytes) -> None:
        self.password = password
        self.key = secrets.token_hex(KEY_LENGTH // 2).encode()
        self.step = 0

    def opening(self) -> bytes:
        return IDENT + b"\n" + self.key + b"\n"


class ServerAuth(_Exchange):
    """The manager's side of the password exchange, fed the peer's lines one by one."""

    def __init__(self, password: bytes) -> None:
        super().__init__(password)
        self.expected = response_to(password, self.key)

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


class ClientAuth(_Exchange):
    """The worker's side of the exchange, played towards Work Queue."""

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
