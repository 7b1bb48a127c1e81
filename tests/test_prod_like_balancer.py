"""The one address in front of two replicas (deploy/run_prod_like.py's TcpBalancer):
connections alternate between the replicas that accept them, a dead replica is skipped
(nothing is refused while one is up), and a replica that comes back gets connections again."""
import socket
import socketserver
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))
from run_prod_like import TcpBalancer  # noqa: E402

from shared.broker import free_port  # noqa: E402


class _Replica:
    """A tiny HTTP server answering its own name."""

    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port
        self.server: socketserver.TCPServer | None = None

    def start(self) -> "_Replica":
        name = self.name.encode()

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(name), name))

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _ask(port: int) -> str:
    # a new connection each time (a kept-alive one stays with its replica, as behind any balancer)
    return httpx.get(f"http://127.0.0.1:{port}/", timeout=5, headers={"Connection": "close"}).text


def test_round_robin_skips_a_dead_replica_and_takes_it_back():
    a, b = _Replica("a", free_port()).start(), _Replica("b", free_port()).start()
    lb = TcpBalancer(free_port(), [a.port, b.port]).start()
    try:
        assert sorted(_ask(lb.port) for _ in range(4)) == ["a", "a", "b", "b"]
        b.stop()
        assert [_ask(lb.port) for _ in range(5)] == ["a"] * 5
        b = _Replica("b", b.port).start()
        time.sleep(lb.DOWN_S + 0.2)  # skipped for DOWN_S after it refused, then tried again
        assert "b" in {_ask(lb.port) for _ in range(4)}
        a.stop()
        b.stop()
        with socket.create_connection(("127.0.0.1", lb.port), timeout=5) as s:  # nobody up: closed, not hung
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            assert s.recv(100) == b""
    finally:
        lb.stop()
