"""gateway-proxy (issue 12, "Tokens and the access proxy"): lab access tokens minted by gatewayd
for an instance's owner, checked by a real gateway-proxy on every new connection, which asks
gatewayd about the instance and forwards HTTP — and, for a member's tcp port, a WebSocket
bridged to it — inside the instance's network namespace. Forged, expired and foreign tokens are
401 before anything reaches a member, WebSocket upgrades too; renewing a token leaves open
connections alone; deleting the instance ends them and its tokens stop working at once.
Members are real busybox servers in real lab instances (see test_labs)."""
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import threading
import time

from harness import images, procs, users
from harness.registry import free_port
from harness.proxy import WithProxy
from test_labs import WEB_CMD, InstancesBase

TOKEN_LIFETIME = 8


def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def raw_request(port, target, headers=None, timeout=10):
    """One request on a fresh connection: (status, headers, body, socket-left-open or None)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    h = {"Host": "lab.example", **(headers or {})}
    s.sendall((f"GET {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    fields = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    if status == 101:
        return status, fields, rest, s
    length = int(fields.get("content-length", "-1"))
    while length < 0 or len(rest) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    s.close()
    return status, fields, rest.decode(errors="replace"), None


def ws_headers():
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), "Sec-WebSocket-Protocol": "binary"}


def ws_send(s, payload, opcode=2):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        length = bytes([0x80 | n])
    elif n < 65536:
        length = bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        length = bytes([0x80 | 127]) + struct.pack(">Q", n)
    head = bytes([0x80 | opcode]) + length
    s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def ws_recv(s, pending=b""):
    """One frame from the server: (opcode, payload, what is left), or (None, b"", b"") at EOF."""
    buf = pending
    while True:
        if len(buf) >= 2:
            n = buf[1] & 0x7f
            off = 2
            if n == 126 and len(buf) >= 4:
                n, off = struct.unpack(">H", buf[2:4])[0], 4
            elif n == 127 and len(buf) >= 10:
                n, off = struct.unpack(">Q", buf[2:10])[0], 10
            if n < 126 or off > 2:
                if len(buf) >= off + n:
                    return buf[0] & 0x0f, buf[off:off + n], buf[off + n:]
        chunk = s.recv(65536)
        if not chunk:
            return None, b"", b""
        buf += chunk


class LabProxy(WithProxy, InstancesBase):
    @classmethod
    def setUpClass(cls):
        cls.extra_config = {"LabTokenLifetime": TOKEN_LIFETIME, "LabInstancesPerUser": 4}
        super().setUpClass()
        try:
            echo = images.Layer().busybox(("sh", "nc", "cat"))
            images.push_image(cls.registry, "labs/echo", "1", images.Image([(echo, "gzip")]))
            cls.proxied = cls._put_lab(cls, "proxied", [
                {"name": "web", "image": cls.web_ref, "command": WEB_CMD, "ports": [{"port": 8080, "kind": "http"}]},
                {"name": "echo", "image": f"{cls.registry.host}/labs/echo:1",
                 "command": ["/bin/nc", "-ll", "-p", "7000", "-e", "/bin/cat"], "ports": [{"port": 7000, "kind": "tcp"}]}])
            cls.start_proxy("--log-level=debug")
        except BaseException:
            cls.tearDownClass()
            raise

    def running_instance(self, as_user=users.USER):
        inst = self.start(self.proxied, as_user=as_user)
        self.await_state(inst["id"], ("RUNNING",), as_user=as_user)
        self.assertIn("access", inst)
        return inst

    def fresh_token(self, inst, as_user=users.USER):
        r = self.gw.http("POST", f"/v1/lab-instances/{inst['id']}/token", as_user=as_user)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def fetch(self, target, **kw):
        return raw_request(self.proxy_port, target, **kw)

    def await_page(self, token, member="web", path="/"):
        def fetched():
            status, _, body, _ = self.fetch(f"/{token}/{member}{path}")
            return body if status == 200 else None
        return procs.wait_for(fetched, timeout=20, what=f"{member} answering through the proxy")

    def test_token_shape_and_http(self):
        inst = self.running_instance()
        access = inst["access"]
        self.assertEqual(set(access["members"]), {"web", "echo"})
        self.assertEqual(access["members"]["web"], f"/{access['token']}/web/")
        index = self.read_member_file(inst["id"], "web", "www/index.html")
        self.assertEqual(self.await_page(access["token"]), index)
        # The member sees the path after /<token>/<member>.
        self.assertEqual(self.await_page(access["token"], path="/index.html"), index)
        status, _, _, _ = self.fetch(f"/{access['token']}/web/no-such-page")
        self.assertEqual(status, 404)

    def test_refusals(self):
        inst = self.running_instance()
        token = self.fresh_token(inst)["token"]
        self.await_page(token)
        h, c, sig = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))
        forged_claims = _b64(json.dumps(dict(claims, uid=0)).encode())
        other_key = _b64(hmac.new(os.urandom(32), f"{h}.{c}".encode(), hashlib.sha256).digest())
        cases = {
            "tampered claims": f"{h}.{forged_claims}.{sig}",
            "another key": f"{h}.{c}.{other_key}",
            "alg none": _b64(b'{"alg":"none"}') + f".{c}.",
            "garbage": "garbage",
        }
        for what, bad in cases.items():
            with self.subTest(what):
                status, _, body, _ = self.fetch(f"/{bad}/web/")
                self.assertEqual(status, 401, body)
                status, _, _, s = self.fetch(f"/{bad}/echo/", headers=ws_headers())
                self.assertEqual(status, 401)
                self.assertIsNone(s)
        # a member the instance does not have, and no token at all
        self.assertEqual(self.fetch(f"/{token}/nosuch/")[0], 401)
        self.assertEqual(self.fetch("/")[0], 404)
        # Another user's instance: its token works for it and only it; this user's token does
        # not open it (its members are other processes in another namespace).
        other = self.running_instance(as_user=users.OTHER)
        other_index = self.read_member_file(other["id"], "web", "www/index.html")
        mine_index = self.read_member_file(inst["id"], "web", "www/index.html")
        self.assertEqual(self.await_page(other["access"]["token"]), other_index)
        self.assertEqual(self.await_page(token), mine_index)
        self.assertNotEqual(other_index, mine_index)
        # Others cannot mint tokens for it, nor ask what the proxy asks.
        self.assertEqual(self.gw.http("POST", f"/v1/lab-instances/{inst['id']}/token", as_user=users.OTHER).status, 404)
        self.assertEqual(self.gw.http("GET", f"/v1/lab-instances/{inst['id']}/access", as_user=users.USER).status, 403)
        r = self.gw.http("GET", f"/v1/lab-instances/{inst['id']}/access", as_user="root")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["uid"], users.uid_of(users.USER))

    def test_gatewayd_in_its_own_mount_namespace(self):
        """Under systemd gatewayd has a mount namespace of its own (PrivateMounts=yes): the
        instances' namespace files are bind mounts only it sees. A proxy that cannot see them
        (here: its runtime directory's labs/ hidden under an empty tmpfs in a private mount
        namespace) reaches the members through gatewayd's /proc/PID/root."""
        inst = self.running_instance()
        token = inst["access"]["token"]
        index = self.read_member_file(inst["id"], "web", "www/index.html")
        labs = os.path.join(self.gw.runtime_dir, "labs")
        port = free_port()
        proxy = self.pprocs.start(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs tmpfs {labs} && exec {os.path.join(procs.build_dir(), 'src/proxy/gateway-proxy')} "
             f"--listen=127.0.0.1:{port} --state-dir={self.gw.state_dir} --gatewayd-socket={self.gw.socket_path}"])
        self.addCleanup(self.pprocs.stop, proxy)

        def page():
            try:
                status, _, body, _ = raw_request(port, f"/{token}/web/")
            except OSError:
                return None
            return body if status == 200 else None
        self.assertEqual(procs.wait_for(page, timeout=20, what="the member through the hidden namespace"), index)

    def test_expired_token(self):
        inst = self.running_instance()
        token = self.fresh_token(inst)["token"]
        self.await_page(token)
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        time.sleep(max(0.0, claims["exp"] - time.time()) + 0.2)
        deadline = time.monotonic() + 5
        while self.fetch(f"/{token}/web/")[0] != 401 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.fetch(f"/{token}/web/")[0], 401)
        self.assertEqual(self.fetch(f"/{token}/echo/", headers=ws_headers())[0], 401)

    def open_bridge(self, token):
        def opened():
            status, fields, rest, s = self.fetch(f"/{token}/echo/", headers=ws_headers())
            if status != 101:
                return None
            self.assertEqual(fields.get("sec-websocket-protocol"), "binary")
            return s, rest
        return procs.wait_for(opened, timeout=20, what="the echo member's bridge")

    def echo(self, s, pending, payload):
        ws_send(s, payload)
        got = b""
        while len(got) < len(payload):
            op, data, pending = ws_recv(s, pending)
            self.assertIsNotNone(op, "the bridge closed")
            self.assertEqual(op, 2)
            got += data
        self.assertEqual(got, payload)
        return pending

    def test_websocket_bridge_renewal_and_delete(self):
        inst = self.running_instance()
        first = self.fresh_token(inst)["token"]
        s, pending = self.open_bridge(first)
        try:
            s.settimeout(10)
            pending = self.echo(s, pending, b"hello through the proxy")
            pending = self.echo(s, pending, os.urandom(70000))
            # A renewed token: another string, the open connection goes on, both tokens work.
            second = self.fresh_token(inst)["token"]
            self.assertNotEqual(first, second)
            pending = self.echo(s, pending, b"still here")
            self.assertEqual(self.await_page(second), self.await_page(first))
            # Deleting the instance ends the connection and every token at once.
            r = self.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=users.USER)
            self.assertEqual(r.status, 204, r.body)
            while True:
                op, _, pending = ws_recv(s, pending)
                if op is None or op == 8:
                    break
        finally:
            s.close()
        for token in (first, second):
            self.assertEqual(self.fetch(f"/{token}/web/")[0], 401)

    def test_websocket_bridge_stream_under_back_pressure(self):
        # 8 MiB through the bridge and back while the reader takes small bites: the member's bytes
        # go by splice() while nothing is queued and through the queue when the client lags
        # (a header or data the client did not take); both ways they arrive whole and in order.
        inst = self.running_instance()
        s, pending = self.open_bridge(self.fresh_token(inst)["token"])
        s.settimeout(30)
        data = os.urandom(8 << 20)
        sender = threading.Thread(target=lambda: [ws_send(s, data[o:o + 65536]) for o in range(0, len(data), 65536)])
        sender.start()
        got, buf = bytearray(), bytearray(pending)
        try:
            while len(got) < len(data):
                frame = _parse_frame(buf)
                if frame is None:
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "the bridge closed")
                    buf += chunk
                    continue
                op, payload, used = frame
                self.assertEqual(op, 2)
                got += payload
                del buf[:used]
        finally:
            sender.join()
            s.close()
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())


def _parse_frame(buf):
    """(opcode, payload, bytes used) of the first whole server frame in buf, or None."""
    if len(buf) < 2:
        return None
    n, off = buf[1] & 0x7f, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, off = struct.unpack(">H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, off = struct.unpack(">Q", buf[2:10])[0], 10
    if len(buf) < off + n:
        return None
    return buf[0] & 0x0f, bytes(buf[off:off + n]), off + n
