"""Many requests at the same moment from one process, for load tests of authorization: run as
the test user (`runuser -u USER -- python3 flood.py MODE JSON`), prints one JSON line with the
outcome of every request.

  dbus  {"address": "unix:path=…", "dest", "path", "iface", "method", "calls": [[str, …], …]}
        a few connections (50 calls each), every call written before the first reply is read
        (as busy clients pipeline them); each call's string arguments are one list in "calls".
        Result: [[error_name or null, message or null], …] in the order of "calls".
  http  {"socket": PATH, "requests": [[method, path, body_text], …]}
        one connection per request, all connected and sent before any answer is read.
        Result: [[status, body_text], …].

Standalone on purpose (stdlib only, no package imports): it runs as another user, who only
needs read access to this file. D-Bus is spoken on the wire since the test machines have no
Python D-Bus binding."""
import json
import os
import selectors
import socket
import struct
import sys

PER_CONNECTION = 50


def _pad(buf, n):
    buf.extend(b"\0" * (-len(buf) % n))


def _string(buf, s):
    _pad(buf, 4)
    b = s.encode()
    buf.extend(struct.pack("<I", len(b)) + b + b"\0")


def _signature(buf, s):
    b = s.encode()
    buf.extend(bytes([len(b)]) + b + b"\0")


def method_call(serial, dest, path, iface, member, args):
    """A little-endian METHOD_CALL message whose body is ARGS, all strings."""
    body = bytearray()
    for a in args:
        _string(body, a)
    fields = bytearray()
    for code, sig, value in ((1, "o", path), (2, "s", iface), (3, "s", member), (6, "s", dest),
                             (8, "g", "s" * len(args))):
        if sig == "g" and not value:
            continue
        _pad(fields, 8)
        fields.append(code)
        _signature(fields, sig)
        (_signature if sig == "g" else _string)(fields, value)
    msg = bytearray(b"l\x01\x00\x01" + struct.pack("<III", len(body), serial, len(fields)))
    msg.extend(fields)
    _pad(msg, 8)
    return bytes(msg + body)


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("bus connection closed")
            self.buf.extend(chunk)

    def line(self):
        while b"\r\n" not in self.buf:
            self.need(len(self.buf) + 1)
        line, _, rest = bytes(self.buf).partition(b"\r\n")
        self.buf = bytearray(rest)
        return line.decode()

    def message(self):
        """(type, reply_serial, error_name, first string of the body or None)."""
        self.need(16)
        if self.buf[0:1] != b"l":
            raise ValueError("big-endian message")  # dbus-daemon answers in our byte order
        mtype = self.buf[1]
        body_len, _, fields_len = struct.unpack_from("<III", self.buf, 4)
        start = 16
        end = start + fields_len
        total = end + (-end % 8) + body_len
        self.need(total)
        raw = bytes(self.buf[:total])
        del self.buf[:total]
        reply_serial = error = sig = None
        pos = start
        while pos < end:
            pos += -pos % 8
            code = raw[pos]
            slen = raw[pos + 1]
            vsig = raw[pos + 2:pos + 2 + slen].decode()
            pos += 3 + slen
            if vsig in ("s", "o"):
                pos += -pos % 4
                (n,) = struct.unpack_from("<I", raw, pos)
                value = raw[pos + 4:pos + 4 + n].decode()
                pos += 5 + n
            elif vsig == "g":
                n = raw[pos]
                value = raw[pos + 1:pos + 1 + n].decode()
                pos += 2 + n
            elif vsig == "u":
                pos += -pos % 4
                (value,) = struct.unpack_from("<I", raw, pos)
                pos += 4
            else:
                raise ValueError(f"header field of type {vsig}")
            if code == 5:
                reply_serial = value
            elif code == 4:
                error = value
            elif code == 8:
                sig = value
        text = None
        body = end + (-end % 8)
        if sig and sig.startswith("s"):
            (n,) = struct.unpack_from("<I", raw, body)
            text = raw[body + 4:body + 4 + n].decode()
        return mtype, reply_serial, error, text


def _dbus_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode() + b"\r\n")
    r = Reader(s)
    line = r.line()
    if not line.startswith("OK"):
        raise RuntimeError(f"bus refused authentication: {line}")
    return s, r


def dbus(spec):
    path = spec["address"].split("unix:path=", 1)[1].split(",", 1)[0]
    calls = spec["calls"]
    # The bus lets one connection wait for at most 128 replies (max_replies_per_connection):
    # spread the calls so that every one of them is really sent.
    conns = []
    for k in range(0, len(calls), PER_CONNECTION):
        s, r = _dbus_connect(path)
        out = bytearray(b"BEGIN\r\n")
        out += method_call(1, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                           "Hello", [])
        for i in range(k, min(k + PER_CONNECTION, len(calls))):
            out += method_call(i + 2, spec["dest"], spec["path"], spec["iface"], spec["method"], calls[i])
        conns.append((s, r, out, min(PER_CONNECTION, len(calls) - k)))
    # Everything is sent before any reply is read.
    for s, _, out, _ in conns:
        s.sendall(out)
    results = {}
    for s, r, _, n in conns:
        got = 0
        while got < n:
            mtype, serial, error, text = r.message()
            if mtype in (2, 3) and serial is not None and serial >= 2:
                results[serial] = [error, text if mtype == 3 else None]
                got += 1
        s.close()
    return [results[i + 2] for i in range(len(calls))]


def http(spec):
    sel = selectors.DefaultSelector()
    socks = []
    for i, (method, path, body) in enumerate(spec["requests"]):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(spec["socket"])
        data = body.encode() if body is not None else b""
        head = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                f"Content-Length: {len(data)}\r\n")
        if body is not None:
            head += "Content-Type: application/json\r\n"
        s.sendall(head.encode() + b"\r\n" + data)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        socks.append(bytearray())
    left = len(socks)
    while left:
        for key, _ in sel.select(timeout=60):
            chunk = key.fileobj.recv(1 << 16)
            if chunk:
                socks[key.data].extend(chunk)
            else:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                left -= 1
    results = []
    for raw in socks:
        head, _, body = bytes(raw).partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head else 0
        results.append([status, body.decode(errors="replace")])
    return results


if __name__ == "__main__":
    mode, arg = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"dbus": dbus, "http": http}[mode](arg)))
