"""A TCP proxy between the terminal and PostgreSQL that drops connections on cue (S07).

It reads the client's side of the wire protocol (a type byte and a length per
message, after the untyped start-up packet) to see each simple query ('Q') and
each statement parsed ('P'), so a test can cut a connection:

- ``cut_on(b"INSERT INTO payouts")``: mid-transaction, before that statement is
  forwarded (the database aborts the transaction when the connection ends);
- ``cut_commit("before")``: the COMMIT never reaches the database;
- ``cut_commit("after")``: the COMMIT is forwarded and the database answers, but
  the answer is swallowed and the connection cut: the commit landed, and the
  terminal cannot know it;
- ``drop_all()``: every connection at once (what a restart of the database does
  to its clients), and ``down()``/``up()``: refuse connections meanwhile.

Connect with ``sslmode=disable`` and ``gssencmode=disable`` so the protocol is
readable. Each action fires once, on the first connection that reaches it.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy.engine import make_url

_SPECIAL_REQUESTS = (80877103, 80877104)  # SSLRequest, GSSENCRequest


def _read_exact(sock: socket.socket, size: int) -> bytes:
    """Read exactly ``size`` bytes, or raise ConnectionError at the end of the stream."""
    chunks = []
    while size:
        chunk = sock.recv(min(size, 65536))
        if not chunk:
            raise ConnectionError("closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_message(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read one typed message: its type byte and its whole bytes (header included)."""
    header = _read_exact(sock, 5)
    (length,) = struct.unpack("!I", header[1:])
    return header[:1], header + _read_exact(sock, length - 4)


def _query_text(kind: bytes, message: bytes) -> bytes:
    """Return the SQL a 'Q' or 'P' message carries (empty for others)."""
    body = message[5:]
    if kind == b"Q":
        return body.rstrip(b"\0")
    if kind == b"P":
        _name, _, rest = body.partition(b"\0")
        return rest.partition(b"\0")[0]
    return b""


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: PgProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = socket.create_connection(proxy.upstream)
        for sock in (client, self.server):
            # Messages are relayed one by one: without this, Nagle's algorithm holds
            # each small one back for the peer's delayed ACK (40 ms a round trip).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.swallow = False
        self.closed = False

    def close(self) -> None:
        """Close both sides (a client then sees its connection drop)."""
        self.closed = True
        for sock in (self.client, self.server):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.proxy._forget(self)

    def run(self) -> None:
        """Relay the start-up, then every message, acting on the armed cues."""
        try:
            while True:  # the untyped start-up packets
                head = _read_exact(self.client, 8)
                length, code = struct.unpack("!II", head)
                packet = head + _read_exact(self.client, length - 8)
                self.server.sendall(packet)
                if code not in _SPECIAL_REQUESTS:
                    break
                self.client.sendall(_read_exact(self.server, 1))  # 'N': no encryption
            threading.Thread(target=self._answers, daemon=True).start()
            while True:
                kind, message = _read_message(self.client)
                sql = _query_text(kind, message).lstrip().upper()
                action = self.proxy._action_for(sql)
                if action == "cut":
                    self.close()
                    return
                if action == "swallow":
                    self.swallow = True
                self.server.sendall(message)
        except OSError:
            if not self.closed:
                self.close()

    def _answers(self) -> None:
        """Relay the server's messages; once swallowing, drop the answer and cut."""
        try:
            while True:
                kind, message = _read_message(self.server)
                if self.swallow:
                    if kind == b"Z":  # ReadyForQuery: the COMMIT's answer is complete
                        self.proxy._note("commit answer swallowed")
                        self.close()
                        return
                    continue
                self.client.sendall(message)
        except OSError:
            if not self.closed:
                self.close()


class PgProxy:
    """Listen on a free local port and relay to PostgreSQL; see the module docstring."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.links: set[_Link] = set()
        self.armed: tuple[str, bytes] | None = None
        self.refusing = False
        self.events: list[str] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database_url: str, application_name: str) -> str:
        """Return the database URL through this proxy, readable on the wire."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        url = url.update_query_dict(
            {"sslmode": "disable", "gssencmode": "disable", "application_name": application_name}
        )
        return url.render_as_string(hide_password=False)

    def cut_on(self, sql_prefix: bytes) -> None:
        """Cut the next connection that sends a statement starting so, before sending it."""
        with self.lock:
            self.armed = ("cut", sql_prefix.upper())

    def cut_commit(self, when: str) -> None:
        """Cut the next COMMIT: ``before`` it reaches the database or ``after`` it answers."""
        assert when in ("before", "after")
        with self.lock:
            self.armed = ("cut" if when == "before" else "swallow", b"COMMIT")

    def fired(self) -> bool:
        """Tell whether the armed cut happened."""
        with self.lock:
            return self.armed is None

    def drop_all(self) -> None:
        """Cut every open connection."""
        with self.lock:
            links = list(self.links)
        for link in links:
            link.close()
        self._note(f"dropped {len(links)} connections")

    def down(self) -> None:
        """Cut every connection and refuse new ones, as a database that is restarting."""
        with self.lock:
            self.refusing = True
        self.drop_all()

    def up(self) -> None:
        """Accept connections again."""
        with self.lock:
            self.refusing = False

    def close(self) -> None:
        """Stop listening and cut everything."""
        self.listener.close()
        self.drop_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                refusing = self.refusing
                self.connections += 1
            if refusing:
                client.close()
                continue
            try:
                link = _Link(self, client)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.links.add(link)
            threading.Thread(target=link.run, daemon=True).start()

    def _action_for(self, sql: bytes) -> str | None:
        with self.lock:
            if self.armed is None or not sql.startswith(self.armed[1]):
                return None
            action = self.armed[0]
            self.armed = None
            self.events.append(f"{action} at {sql[:40]!r}")
            return action

    def _forget(self, link: _Link) -> None:
        with self.lock:
            self.links.discard(link)

    def _note(self, event: str) -> None:
        with self.lock:
            self.events.append(event)


@contextmanager
def pg_proxy(database_url: str) -> Iterator[PgProxy]:
    """Run a proxy to the database of a URL until the block ends."""
    url = make_url(database_url)
    proxy = PgProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield proxy
    finally:
        proxy.close()
