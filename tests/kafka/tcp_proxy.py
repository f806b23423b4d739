"""A TCP proxy on 127.0.0.1 that a test can cut: the broker seen through it goes away (every
connection is closed, new ones are refused) and comes back.

Run as a process (``python tcp_proxy.py LISTEN_PORT TARGET_PORT``) and controlled by signals,
so that the proxy's own threads never compete with the test for the GIL: SIGUSR1 cuts,
SIGUSR2 restores, SIGTERM stops. ``ProxyProcess`` does that from a test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time


class _Proxy:
    def __init__(self, port: int, target: int):
        self.port, self.target = port, target
        self.lock = threading.Lock()
        self.conns: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.up = threading.Event()

    def listen(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            if self.listener is not None:
                try:  # wakes the thread blocked in accept(): close() alone would not free the port
                    self.listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self.listener.close()
                self.listener = None
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()

    def restore(self) -> None:
        with self.lock:
            if self.listener is None:
                self.listen()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self.conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main(port: int, target: int) -> None:  # pragma: no cover - runs in the proxy process
    proxy = _Proxy(port, target)
    proxy.listen()
    signal.signal(signal.SIGUSR1, lambda *_: proxy.cut())
    signal.signal(signal.SIGUSR2, lambda *_: proxy.restore())
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("ready", flush=True)
    while True:
        time.sleep(3600)


class ProxyProcess:
    """``python tcp_proxy.py`` listening on ``port`` for the broker at ``target``."""

    def __init__(self, port: int, target: int):
        self.proc = subprocess.Popen([sys.executable, __file__, str(port), str(target)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def cut(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)

    def restore(self) -> None:
        self.proc.send_signal(signal.SIGUSR2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
