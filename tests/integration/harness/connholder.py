#!/usr/bin/env python3
"""Holds many connections to gatewayd's unix socket, for test_connections. Runs as the user
whose connections gatewayd counts (through runuser), so it is a separate program; stdlib only.

    connholder.py SOCKET

Commands on stdin, one answer line each on stdout:

    open N          connect N more sockets (nothing is sent on them) -> "opened N"
                    (a connect that does not finish within 5 s ends the batch: "opened K stuck")
    wait-eof K T    wait up to T seconds until the server closed at least K of them
                    -> "eof E reset R open O"  (R: closed with ECONNRESET instead of EOF)
    status          -> "eof E reset R open O"
    request WHICH   GET /v1/status on the oldest or newest connection still open (WHICH: oldest,
                    newest) -> "status 200" / "eof"
    partial WHICH   send the start of a request, no end of headers -> "sent"
    close           close all and exit -> "closed"
"""
import os
import resource
import selectors
import socket
import struct
import sys
import time


class Holder:
    def __init__(self, path):
        self.path = path
        self.sel = selectors.EpollSelector()
        self.open = {}          # fd -> socket, in connect order (dicts keep insertion order)
        self.eof = 0
        self.reset = 0

    def connect(self, n):
        for i in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            # Blocking, so that a full listen queue is waited for (as most clients do), but not
            # forever (a nonblocking connect would fail at once with EAGAIN).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 5, 0))
            try:
                s.connect(self.path)
            except (socket.timeout, BlockingIOError):
                s.close()
                return f"opened {i} stuck"
            s.setblocking(False)
            self.open[s.fileno()] = s
            self.sel.register(s, selectors.EVENT_READ)
        return f"opened {n}"

    def _drop(self, s, reset):
        self.sel.unregister(s)
        del self.open[s.fileno()]
        s.close()
        if reset:
            self.reset += 1
        else:
            self.eof += 1

    def poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                self._drop(s, reset=True)
                continue
            if not data:
                self._drop(s, reset=False)
            # Unsolicited data would be a bug in the server; the test sees it as "still open".

    def status(self):
        return f"eof {self.eof} reset {self.reset} open {len(self.open)}"

    def wait(self, done, timeout):
        deadline = time.monotonic() + timeout
        self.poll(0)
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.poll(left)
        return self.status()

    def pick(self, which):
        self.poll(0)
        if not self.open:
            return None
        socks = list(self.open.values())
        return socks[0] if which == "oldest" else socks[-1]

    def partial(self, which):
        s = self.pick(which)
        if s is None:
            return "eof"
        s.send(b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\n")
        return "sent"

    def request(self, which):
        s = self.pick(which)
        if s is None:
            return "eof"
        self.sel.unregister(s)
        s.settimeout(10)
        try:
            s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    del self.open[s.fileno()]
                    s.close()
                    self.eof += 1
                    return "eof"
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            while len(body) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            return "status " + head.split(b" ")[1].decode()
        except OSError as e:
            return f"error {e}"
        finally:
            if s.fileno() in self.open:
                s.setblocking(False)
                self.sel.register(s, selectors.EVENT_READ)

    def close(self):
        for s in list(self.open.values()):
            self.sel.unregister(s)
            s.close()
        self.open.clear()


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    h = Holder(sys.argv[1])
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "open":
            out = h.connect(int(cmd[1]))
        elif cmd[0] == "wait-eof":
            k = int(cmd[1])
            out = h.wait(lambda: h.eof + h.reset >= k, float(cmd[2]))
        elif cmd[0] == "status":
            h.poll(0)
            out = h.status()
        elif cmd[0] == "request":
            out = h.request(cmd[1])
        elif cmd[0] == "partial":
            out = h.partial(cmd[1])
        elif cmd[0] == "close":
            h.close()
            print("closed", flush=True)
            return 0
        else:
            out = f"unknown command {cmd[0]}"
        print(out, flush=True)
    h.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
