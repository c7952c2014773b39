"""Remote access (issue 11 §1 and the gatewayd tokens of §2): TCP and TLS listeners, configured
("Listen", "TLS") or passed by socket activation (FileDescriptorName tcp/tls). No peer
credentials there: a request proves an identity with a token a local user created on the unix
socket, or it is anonymous and may only use AnonymousRoutes. Real TLS (a test CA made with
openssl), real clients (Python's http.client and ssl, bound to chosen loopback source
addresses, so that several "hosts" talk to gatewayd), real polkitd for the local side.

Every test that makes authentications fail uses a source address of its own: 20 failures within
a minute block an address for 5 minutes."""
import http.client
import itertools
import json
import os
import signal
import socket
import ssl
import subprocess
import time

from harness import procs, users
from harness.bus import PrivateBus
from harness.gatewayd import Gatewayd, GatewaydTestCase
from harness.registry import TestCA, free_port
from harness.stack import StackTestCase, spec

# Source addresses handed out one per test that needs its own (127.0.0.1 is the shared one).
_addresses = (f"127.0.{a}.{b}" for a, b in itertools.product(range(11, 250), range(2, 250)))


def new_address():
    return next(_addresses)


class NetResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body.strip() else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class RemoteBase(StackTestCase):
    connections_per_address = 4
    connections_per_user = 6

    @classmethod
    def setUpClass(cls):
        cls.tmp = procs.TempDir(prefix="gatewayd-remote-")
        cls.ca = TestCA(cls.tmp.path)
        cls.tcp_port = free_port()
        cls.tls_port = free_port()
        if cls.mode == "socket":
            cls.listen = [("tcp", f"127.0.0.1:{cls.tcp_port}"), ("tls", f"127.0.0.1:{cls.tls_port}")]
        cls.config = {
            "TLS": {"certificate": cls.ca.cert, "key": cls.ca.key},
            "ConnectionsPerAddress": cls.connections_per_address,
            "ConnectionsPerUser": cls.connections_per_user,
            "Admins": [users.ADMIN],
            **cls.listen_config(),
        }
        try:
            super().setUpClass()
        except BaseException:
            cls.tmp.cleanup()
            raise

    @classmethod
    def listen_config(cls):
        return {"Listen": {"tcp": f"127.0.0.1:{cls.tcp_port}", "tls": f"127.0.0.1:{cls.tls_port}"}}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.tmp.cleanup()

    # -- clients ------------------------------------------------------------------------------

    def tls_context(self):
        ctx = ssl.create_default_context(cafile=self.ca.ca)
        return ctx

    def connection(self, tls=False, source="127.0.0.1", timeout=10):
        if tls:
            return http.client.HTTPSConnection("127.0.0.1", self.tls_port, context=self.tls_context(),
                                               source_address=(source, 0), timeout=timeout)
        return http.client.HTTPConnection("127.0.0.1", self.tcp_port, source_address=(source, 0), timeout=timeout)

    def request(self, conn, method, path, token=None, body=None, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        return NetResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace"))

    def net(self, method, path, token=None, tls=False, source="127.0.0.1", body=None, headers=None):
        """One request on a fresh connection."""
        conn = self.connection(tls=tls, source=source)
        try:
            return self.request(conn, method, path, token=token, body=body, headers=headers)
        finally:
            conn.close()

    def create_token(self, as_user=users.USER, **body):
        r = self.gw.http("POST", "/v1/tokens", body, as_user=as_user)
        self.assertEqual(r.status, 201, r.body)
        return r.json

    def assertNetError(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertEqual((r.json or {}).get("error", {}).get("code"), code, r)


class Remote(RemoteBase):
    """Listeners configured with "Listen" (gatewayd binds them)."""

    def test_anonymous(self):
        for tls in (False, True):
            with self.subTest(tls=tls):
                r = self.net("GET", "/v1/status", tls=tls)
                self.assertEqual(r.status, 200, r)
                self.assertIn("version", r.json)
                # PlanQK's health route is anonymous too (404 only because there is no such service).
                r = self.net("GET", "/planqk/no-such-service/", tls=tls)
                self.assertNetError(r, 404, "NotFound")
                for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/services"), ("GET", "/v1/tokens"),
                                     ("POST", "/v1/tokens"), ("GET", "/v1/images"), ("GET", "/no/such/route"),
                                     ("POST", "/v1/services")):
                    r = self.net(method, path, tls=tls)
                    self.assertNetError(r, 401, "Unauthenticated")
                    self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer"), r.headers)

    def test_anonymous_refusals_do_not_block(self):
        """Only bad credentials count as failed authentications, not their absence."""
        src = new_address()
        conn = self.connection(source=src)
        try:
            for _ in range(25):
                self.assertNetError(self.request(conn, "GET", "/v1/jobs"), 401, "Unauthenticated")
            self.assertEqual(self.request(conn, "GET", "/v1/status").status, 200)
        finally:
            conn.close()

    def test_tokens_per_user_bounded(self):
        created = []
        try:
            for _ in range(101):
                r = self.gw.http("POST", "/v1/tokens", {"expiresIn": 600}, as_user=users.ADMIN)
                if r.status != 201:
                    break
                created.append(r.json["id"])
            self.assertError(r, 429, "LimitExceeded")
            self.assertLessEqual(len(created), 100)
        finally:
            for tid in created:
                self.gw.http("DELETE", f"/v1/tokens/{tid}", as_user=users.ADMIN)
        self.create_token(users.ADMIN)

    def test_plain_http_on_tls_port_is_refused(self):
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as s:
            s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
            data = s.recv(4096)
            self.assertNotIn(b"HTTP/1.1 200", data)

    def test_token_create_shape(self):
        t = self.create_token()
        self.assertRegex(t["id"], r"^[0-9a-f]{16}$")
        self.assertTrue(t["token"].startswith("gwt_" + t["id"] + "_"), t)
        # 256 bits of secret, base64url
        self.assertGreaterEqual(len(t["token"][len("gwt_") + 17:]), 43)
        self.assertEqual(sorted(t["scope"]), ["pull", "read", "submit"])
        days = (time.mktime(time.strptime(t["expiresAt"][:19], "%Y-%m-%dT%H:%M:%S")) - time.mktime(time.gmtime())) / 86400
        self.assertAlmostEqual(days, 30, delta=1)
        # listed without the secret, only to its owner
        r = self.gw.http("GET", "/v1/tokens", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        mine = [x for x in r.json["tokens"] if x["id"] == t["id"]]
        self.assertEqual(len(mine), 1)
        self.assertNotIn("token", mine[0])
        self.assertNotIn(t["token"][len("gwt_") + 17:], r.body)
        r = self.gw.http("GET", "/v1/tokens", as_user=users.OTHER)
        self.assertNotIn(t["id"], r.body)
        # stored only as a hash
        db = os.path.join(self.gw.state_dir, "state.db")
        dump = subprocess.run(["sqlite3", db, ".dump tokens"], capture_output=True, text=True).stdout
        self.assertIn(t["id"], dump)
        self.assertNotIn(t["token"][len("gwt_") + 17:], dump)
        # validation
        for body in ({"expiresIn": 0}, {"expiresIn": "1"}, {"expiresIn": 10 ** 10}, {"scope": []},
                     {"scope": ["admin"]}, {"bogus": 1}):
            r = self.gw.http("POST", "/v1/tokens", body, as_user=users.USER)
            self.assertError(r, 400, "InvalidArgument")
        t = self.create_token(expiresIn=3600, scope=["read"])
        self.assertEqual(t["scope"], ["read"])

    def test_token_acts_as_user(self):
        svc = self.create(self.name("remote"))["name"]
        t_user = self.create_token(users.USER)["token"]
        t_other = self.create_token(users.OTHER)["token"]
        for tls in (False, True):
            with self.subTest(tls=tls):
                # a job submitted over the network belongs to the token's user
                r = self.net("POST", f"/v1/services/{svc}/jobs", token=t_user, tls=tls, body={"data": {}})
                self.assertEqual(r.status, 201, r)
                job = r.json["id"]
                self.assertEqual(self.gw.http("GET", f"/v1/jobs/{job}", as_user=users.USER).status, 200)
                self.assertEqual(self.gw.http("GET", f"/v1/jobs/{job}", as_user=users.OTHER).status, 404)
                # and the network sees what the user would see
                r = self.net("GET", f"/v1/jobs/{job}", token=t_user, tls=tls)
                self.assertEqual(r.status, 200, r)
                r = self.net("GET", f"/v1/jobs/{job}", token=t_other, tls=tls)
                self.assertNetError(r, 404, "NotFound")
                r = self.net("GET", "/v1/jobs", token=t_other, tls=tls)
                self.assertEqual(r.status, 200, r)
                self.assertNotIn(job, r.body)
                r = self.net("GET", "/v1/services", token=t_user, tls=tls)
                self.assertEqual(r.status, 200, r)
                self.assertIn(svc, r.body)
                # ordinary users are no admins over the network either
                r = self.net("POST", "/v1/services", token=t_user, tls=tls, body=spec(self.name()))
                self.assertNetError(r, 403, "AccessDenied")
                # tokens cannot make tokens, nor list or revoke them
                for method, path in (("POST", "/v1/tokens"), ("GET", "/v1/tokens"), ("DELETE", "/v1/tokens/0123456789abcdef")):
                    r = self.net(method, path, token=t_user, tls=tls)
                    self.assertNetError(r, 403, "AccessDenied")

    def test_keep_alive_and_token_per_request(self):
        """One connection, several requests, each judged by its own credential."""
        t_user = self.create_token(users.USER)["token"]
        conn = self.connection(tls=True)
        try:
            for _ in range(3):
                r = self.request(conn, "GET", "/v1/jobs", token=t_user)
                self.assertEqual(r.status, 200, r)
                r = self.request(conn, "GET", "/v1/jobs")
                self.assertNetError(r, 401, "Unauthenticated")
        finally:
            conn.close()

    def test_admins_list(self):
        """Admin operations of network callers: gatewayd's Admins list, not polkit."""
        t_admin = self.create_token(users.ADMIN)["token"]
        t_root = self.create_token("root")["token"]
        name = self.name("net-admin")
        r = self.net("POST", "/v1/services", token=t_admin, tls=True, body=spec(name))
        self.assertEqual(r.status, 201, r)
        self.assertTrue(self.exists(name))
        # root's token is not root: root is not in Admins
        r = self.net("DELETE", f"/v1/services/{name}", token=t_root, tls=True)
        self.assertNetError(r, 403, "AccessDenied")
        r = self.net("DELETE", f"/v1/services/{name}", token=t_admin, tls=True)
        self.assertEqual(r.status, 204, r)
        # an admin token without every scope is not enough for admin routes
        t_admin_read = self.create_token(users.ADMIN, scope=["read"])["token"]
        r = self.net("POST", "/v1/services", token=t_admin_read, body=spec(self.name()))
        self.assertNetError(r, 403, "AccessDenied")

    def test_scopes(self):
        svc = self.create(self.name("scoped"))["name"]
        read = self.create_token(scope=["read"])["token"]
        submit = self.create_token(scope=["submit"])["token"]
        pull = self.create_token(scope=["pull"])["token"]
        self.assertEqual(self.net("GET", "/v1/jobs", token=read).status, 200)
        self.assertNetError(self.net("POST", f"/v1/services/{svc}/jobs", token=read, body={}), 403, "AccessDenied")
        self.assertNetError(self.net("POST", "/v1/images/pull", token=read, body={"image": "x/y:1"}), 403, "AccessDenied")
        self.assertNetError(self.net("GET", "/v1/jobs", token=submit), 403, "AccessDenied")
        r = self.net("POST", f"/v1/services/{svc}/jobs", token=submit, body={"data": {}})
        self.assertEqual(r.status, 201, r)
        self.assertNetError(self.net("PUT", f"/v1/jobs/{r.json['id']}/cancel", token=read), 403, "AccessDenied")
        self.assertNetError(self.net("POST", f"/v1/services/{svc}/jobs", token=pull, body={}), 403, "AccessDenied")
        # pull passes the scope check (and then fails on the reference, not on authorization)
        r = self.net("POST", "/v1/images/pull", token=pull, body={"image": "not a reference"})
        self.assertNotIn(r.status, (401, 403), r)

    def test_bad_tokens(self):
        src = new_address()
        t = self.create_token()
        good = t["token"]
        tid, secret = good[len("gwt_"):].split("_", 1)
        forged = f"gwt_{tid}_" + ("A" if secret[0] != "A" else "B") + secret[1:]
        for bad in (forged, f"gwt_{'0' * 16}_{secret}", "gwt_garbage", "gwt_"):
            with self.subTest(token=bad[:24]):
                r = self.net("GET", "/v1/jobs", token=bad, source=src, tls=True)
                self.assertNetError(r, 401, "Unauthenticated")
        self.assertEqual(self.net("GET", "/v1/jobs", token=good, source=src).status, 200)
        # revoked
        r = self.gw.http("DELETE", f"/v1/tokens/{tid}", as_user=users.USER)
        self.assertEqual(r.status, 204, r.body)
        self.assertNetError(self.net("GET", "/v1/jobs", token=good, source=src), 401, "Unauthenticated")
        self.assertEqual(self.gw.http("DELETE", f"/v1/tokens/{tid}", as_user=users.USER).status, 404)
        # expired
        short = self.create_token(expiresIn=1)["token"]
        expires = time.time() + 1.0
        self.assertEqual(self.net("GET", "/v1/jobs", token=short, source=src).status, 200)
        time.sleep(max(0.0, expires - time.time()) + 0.05)
        deadline = time.monotonic() + 5
        while True:
            r = self.net("GET", "/v1/jobs", token=short, source=src)
            if r.status == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertNetError(r, 401, "Unauthenticated")

    def test_revoke_others(self):
        t = self.create_token(users.USER)
        tid = t["id"]
        # someone else's token does not exist for them
        r = self.gw.http("DELETE", f"/v1/tokens/{tid}", as_user=users.OTHER)
        self.assertError(r, 404, "NotFound")
        self.assertEqual(self.net("GET", "/v1/jobs", token=t["token"]).status, 200)
        # an admin (polkit org.gatewayd.manage-tokens via the test rule) revokes it
        r = self.gw.http("DELETE", f"/v1/tokens/{tid}", as_user=users.ADMIN)
        self.assertEqual(r.status, 204, r.body)
        self.assertNetError(self.net("GET", "/v1/jobs", token=t["token"], source=new_address()), 401, "Unauthenticated")
        # root too
        t = self.create_token(users.OTHER)
        self.assertEqual(self.gw.http("DELETE", f"/v1/tokens/{t['id']}").status, 204)

    def test_failed_authentications_block_address(self):
        bad_src, good_src = new_address(), new_address()
        good = self.create_token()["token"]
        conn = self.connection(source=bad_src)
        try:
            for i in range(20):
                r = self.request(conn, "GET", "/v1/jobs", token=f"gwt_{'0' * 16}_{i:043d}")
                self.assertNetError(r, 401, "Unauthenticated")
            # blocked now: even a good token, even anonymous routes, on any connection, on TLS too
            r = self.request(conn, "GET", "/v1/jobs", token=good)
            self.assertNetError(r, 429, "LimitExceeded")
            retry = int(r.headers["retry-after"])
            self.assertTrue(240 <= retry <= 300, retry)
        finally:
            conn.close()
        self.assertNetError(self.net("GET", "/v1/status", source=bad_src, tls=True), 429, "LimitExceeded")
        # other addresses are served
        self.assertEqual(self.net("GET", "/v1/jobs", token=good, source=good_src).status, 200)
        self.assertEqual(self.net("GET", "/v1/jobs", token=good, source=good_src, tls=True).status, 200)
        # and the unix socket, of course
        self.assertEqual(self.gw.http("GET", "/v1/jobs", as_user=users.USER).status, 200)

    def test_connections_per_address(self):
        src, other = new_address(), new_address()
        held = []
        try:
            for _ in range(self.connections_per_address):
                c = self.connection(source=src)
                self.assertEqual(self.request(c, "GET", "/v1/status").status, 200)
                held.append(c)
            # one more from the same address is closed at once
            c = self.connection(source=src)
            held.append(c)
            with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
                self.request(c, "GET", "/v1/status")
            # another address is not affected
            self.assertEqual(self.net("GET", "/v1/status", source=other).status, 200)
        finally:
            for c in held:
                c.close()
        # closing frees the address's share
        deadline = time.monotonic() + 10
        while True:
            try:
                r = self.net("GET", "/v1/status", source=src)
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.assertEqual(r.status, 200)

    def test_connections_per_identity(self):
        """ConnectionsPerUser counts a network identity's connections, from every address."""
        token = self.create_token(users.OTHER)["token"]
        held = []
        try:
            for i in range(self.connections_per_user):
                c = self.connection(source=new_address(), tls=i % 2 == 1)
                self.assertEqual(self.request(c, "GET", "/v1/jobs", token=token).status, 200)
                held.append(c)
            c = self.connection(source=new_address())
            held.append(c)
            r = self.request(c, "GET", "/v1/jobs", token=token)
            self.assertNetError(r, 429, "LimitExceeded")
            # anonymous requests are not that identity's
            self.assertEqual(self.net("GET", "/v1/status", source=new_address()).status, 200)
            # nor are other users'
            t2 = self.create_token(users.USER)["token"]
            self.assertEqual(self.net("GET", "/v1/jobs", token=t2, source=new_address()).status, 200)
        finally:
            for c in held:
                c.close()

    def test_sighup_reloads_certificate(self):
        def serial():
            with socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as s:
                with self.tls_context().wrap_socket(s, server_hostname="127.0.0.1") as ts:
                    return ts.getpeercert()["serialNumber"]

        before = serial()
        # A new certificate from the same CA, written over the configured files.
        new_dir = os.path.join(self.tmp.path, "renewed")
        os.makedirs(new_dir)
        key, csr, cert, ext = (os.path.join(new_dir, n) for n in ("key.pem", "csr.pem", "cert.pem", "ext"))
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", key, "-out", csr, "-subj", "/CN=renewed"], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca.ca, "-CAkey",
                        os.path.join(os.path.dirname(self.ca.ca), "ca.key"), "-CAcreateserial",
                        "-out", cert, "-days", "2", "-extfile", ext], check=True, capture_output=True)
        # Replace atomically (key first would mismatch a handshake in between; SIGHUP reads both).
        os.replace(cert, self.ca.cert)
        os.replace(key, self.ca.key)
        os.kill(self.gw.pid(), signal.SIGHUP)
        procs.wait_for(lambda: serial() != before, timeout=10, what="the new certificate")
        after = serial()
        self.assertNotEqual(after, before)
        # a reload with broken files keeps the certificate in use
        with open(self.ca.key, "w") as f:
            f.write("not a key\n")
        os.kill(self.gw.pid(), signal.SIGHUP)
        procs.wait_for(lambda: "Keeping the previous TLS certificate" in self.gw.stderr_text(), timeout=10,
                       what="the failed reload")
        self.assertEqual(serial(), after)
        self.assertEqual(self.net("GET", "/v1/status", tls=True).status, 200)

    def test_dbus_and_gatewayctl(self):
        """The same tokens through D-Bus (Manager.CreateToken/ListTokens/RevokeToken) and
        gatewayctl token create|list|revoke."""
        p = self.gw.gatewayctl("token", "create", "--scope=read", "--expires-in=2h", "-q", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        token = p.stdout.strip()
        self.assertTrue(token.startswith("gwt_"), p.stdout)
        tid = token[len("gwt_"):len("gwt_") + 16]
        self.assertEqual(self.net("GET", "/v1/jobs", token=token, tls=True).status, 200)
        self.assertNetError(self.net("POST", "/v1/images/pull", token=token, body={"reference": "x/y:1"}),
                            403, "AccessDenied")
        p = self.gw.gatewayctl("token", "list", "--json=short", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = {t["id"]: t for t in json.loads(p.stdout)}
        self.assertEqual(listed[tid]["scope"], ["read"])
        self.assertAlmostEqual((listed[tid]["expiresUsec"] - listed[tid]["createdUsec"]) / 1e6, 7200, delta=2)
        p = self.gw.gatewayctl("token", "list", as_user=users.USER)
        self.assertIn(tid, p.stdout)
        self.assertNotIn(token[len("gwt_") + 17:], p.stdout)

        # D-Bus
        p, data = self.gw.call("CreateToken", "s", '{"scope": ["submit"]}', as_user=users.OTHER)
        self.assertEqual(p.returncode, 0, p.stderr)
        created = json.loads(data[0])
        self.assertEqual(created["scope"], ["submit"])
        p, data = self.gw.call("ListTokens", as_user=users.OTHER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(created["id"], [t[0] for t in data[0]])
        self.assertNotIn(tid, [t[0] for t in data[0]])
        p, err = self.gw.gdbus_call("RevokeToken", tid, as_user=users.OTHER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NotFound", p.stderr)
        p, err = self.gw.gdbus_call("CreateToken", '{"scope": ["nope"]}', as_user=users.OTHER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.InvalidArgument", p.stderr)
        p, err = self.gw.gdbus_call("RevokeToken", created["id"], as_user=users.ADMIN)
        self.assertIsNone(err, p.stderr)

        p = self.gw.gatewayctl("token", "revoke", tid, as_user=users.OTHER)
        self.assertNotEqual(p.returncode, 0)
        p = self.gw.gatewayctl("token", "revoke", tid, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNetError(self.net("GET", "/v1/jobs", token=token, source=new_address()), 401, "Unauthenticated")

    def test_unix_socket_unchanged(self):
        """Peer credentials still decide on the unix socket: no token needed, none honoured."""
        t = self.create_token(users.OTHER)
        r = self.gw.http("GET", "/v1/tokens", as_user=users.USER,
                         headers={"Authorization": f"Bearer {t['token']}"})
        self.assertEqual(r.status, 200, r.body)
        self.assertNotIn(t["id"], r.body)
        r = self.gw.http("GET", "/v1/tokens", as_user=users.OTHER)
        self.assertIn(t["id"], r.body)
        r = self.gw.http("GET", "/v1/jobs", headers={"Authorization": "Bearer gwt_forged"}, as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)


class RemoteActivated(RemoteBase):
    """The same listeners passed by socket activation (systemd-socket-activate with
    --fdname=http:tcp:tls), as gatewayd-tcp.socket and gatewayd-tls.socket pass them."""
    mode = "socket"

    @classmethod
    def listen_config(cls):
        return {}

    def test_activated_listeners(self):
        # The first connection (on the TCP socket) starts gatewayd.
        r = self.net("GET", "/v1/status")
        self.assertEqual(r.status, 200, r)
        self.assertNetError(self.net("GET", "/v1/jobs", tls=True), 401, "Unauthenticated")
        t = self.create_token(users.USER)["token"]
        for tls in (False, True):
            r = self.net("GET", "/v1/jobs", token=t, tls=tls)
            self.assertEqual(r.status, 200, r)
        self.assertIn("passed by the service manager", self.gw.stderr_text())


class RemoteConfig(GatewaydTestCase):
    """Bad remote-access configuration stops the start, naming the key."""

    def test_invalid_configuration_refused(self):
        with PrivateBus() as bus:
            gw = Gatewayd(bus=bus)
            try:
                ca = TestCA(gw.tmp.path)
                other = TestCA(os.path.join(gw.tmp.path, "other"))
                port = free_port()
                cases = [
                    ({"Listen": {"tcp": "localhost:8080"}}, "Listen.tcp"),
                    ({"Listen": {"tcp": "127.0.0.1:0"}}, "Listen.tcp"),
                    ({"Listen": {"tls": "[::1]"}}, "Listen.tls"),
                    ({"Listen": {"tls": f"127.0.0.1:{port}"}}, "TLS"),
                    ({"Listen": {"tls": f"127.0.0.1:{port}"},
                      "TLS": {"certificate": ca.cert, "key": ca.key + ".missing"}}, "TLS.key"),
                    ({"Listen": {"tls": f"127.0.0.1:{port}"},
                      "TLS": {"certificate": ca.key, "key": ca.key}}, "TLS.certificate"),
                    ({"Listen": {"tls": f"127.0.0.1:{port}"},
                      "TLS": {"certificate": ca.cert, "key": other.key}}, "TLS.key"),
                    ({"AnonymousRoutes": ["/v1/status"]}, "AnonymousRoutes"),
                    ({"ConnectionsPerAddress": 0}, "ConnectionsPerAddress"),
                    ({"TokenExpiry": "40:00:00:00", "TokenExpiryMax": "30:00:00:00"}, "TokenExpiry"),
                ]
                os.makedirs(gw.runtime_dir, exist_ok=True)
                for config, key in cases:
                    with self.subTest(config=config):
                        gw.write_config(config)
                        try:
                            p = subprocess.run(gw.argv(), capture_output=True, text=True, timeout=10,
                                               env=bus.env())
                        except subprocess.TimeoutExpired:
                            self.fail("gatewayd started with an invalid configuration")
                        self.assertNotEqual(p.returncode, 0)
                        self.assertIn(key, p.stderr)
            finally:
                gw.stop()
