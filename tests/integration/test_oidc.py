"""Sign-in through the site's OpenID Connect provider (issue 14, "Sign-in through the site's
identity provider"; "Authentication": {"oidc": …}). The provider is a real HTTP server written
here: it serves the discovery document and the key set (JWKS), and signs tokens with RSA and EC
keys made by openssl in the test (openssl dgst signs, so the signatures are OpenSSL's, not
ours). Over gatewayd's TCP listener: tokens act as the user their claim names; forged, expired,
not-yet-valid, foreign-issuer, wrong-audience and unknown-key tokens are 401; a rotated key is
picked up; the provider down is 503 while other requests keep being served."""
import base64
import http.server
import json
import os
import subprocess
import threading
import time

from harness import procs, users
from harness.registry import free_port
from test_remote import RemoteBase, new_address

AUDIENCE = "gatewayd-test"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _der_int(data, i):
    """One DER INTEGER at data[i]: (value bytes without sign padding, next index)."""
    assert data[i] == 0x02
    n = data[i + 1]
    v = data[i + 2:i + 2 + n]
    return v.lstrip(b"\0"), i + 2 + n


class Key:
    """A signing key made by openssl, its JWK, and tokens signed with `openssl dgst`."""

    def __init__(self, directory, kind, kid):
        self.kind, self.kid = kind, kid
        self.path = os.path.join(directory, f"{kid}.pem")
        opts = (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if kind == "RSA"
                else ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
        subprocess.run(["openssl", "genpkey", *opts, "-out", self.path], check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", self.path, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        if kind == "RSA":
            modulus = subprocess.run(["openssl", "rsa", "-in", self.path, "-noout", "-modulus"],
                                     check=True, capture_output=True, text=True).stdout.strip().split("=", 1)[1]
            self.jwk = {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                        "n": b64url(bytes.fromhex(modulus)), "e": "AQAB"}
        else:
            point = der[-65:]          # SubjectPublicKeyInfo ends with the uncompressed point
            assert point[0] == 4
            self.jwk = {"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256",
                        "x": b64url(point[1:33]), "y": b64url(point[33:])}
        self.alg = "RS256" if kind == "RSA" else "ES256"

    def sign(self, claims, header=None):
        h = b64url(json.dumps(header or {"alg": self.alg, "typ": "JWT", "kid": self.kid}).encode())
        c = b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.path], input=f"{h}.{c}".encode(),
                             check=True, capture_output=True).stdout
        if self.kind == "EC":             # DER SEQUENCE { r, s } -> r || s (RFC 7518 §3.4)
            i = 2 if sig[1] < 0x80 else 3
            r, i = _der_int(sig, i)
            s, _ = _der_int(sig, i)
            sig = r.rjust(32, b"\0") + s.rjust(32, b"\0")
        return f"{h}.{c}.{b64url(sig)}"


class Provider:
    """The OpenID provider: discovery document and key set over HTTP, with a request counter."""

    def __init__(self):
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/realms/test"
        self.keys = []
        self.requests = {"discovery": 0, "jwks": 0}
        self.slow = threading.Event()
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if provider.slow.is_set():
                    provider.slow_released.wait(10)
                if self.path == "/realms/test/.well-known/openid-configuration":
                    provider.requests["discovery"] += 1
                    body = {"issuer": provider.issuer, "jwks_uri": f"http://127.0.0.1:{provider.port}/realms/test/certs"}
                elif self.path == "/realms/test/certs":
                    provider.requests["jwks"] += 1
                    body = {"keys": [k.jwk for k in provider.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.slow_released = threading.Event()
        self.handler = Handler
        self.server = None
        self.start()

    def start(self):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.server:
            self.slow_released.set()
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()
            self.server = None


class Oidc(RemoteBase):

    @classmethod
    def setUpClass(cls):
        cls.keydir = procs.TempDir(prefix="gatewayd-oidc-")
        cls.rsa = Key(cls.keydir.path, "RSA", "rsa-1")
        cls.ec = Key(cls.keydir.path, "EC", "ec-1")
        cls.rotated = Key(cls.keydir.path, "RSA", "rsa-2")
        cls.unpublished = Key(cls.keydir.path, "RSA", "rsa-x")
        cls.provider = Provider()
        cls.provider.keys = [cls.rsa, cls.ec]
        try:
            super().setUpClass()
        except BaseException:
            cls.provider.stop()
            cls.keydir.cleanup()
            raise

    @classmethod
    def listen_config(cls):
        config = super().listen_config()
        config["Authentication"] = {"oidc": {"issuer": cls.provider.issuer, "audience": AUDIENCE}}
        return config

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.provider.stop()
            cls.keydir.cleanup()

    def claims(self, user=users.USER, **over):
        now = int(time.time())
        c = {"iss": self.provider.issuer, "aud": [AUDIENCE, "account"], "exp": now + 300, "iat": now,
             "nbf": now - 5, "preferred_username": user, "sub": f"sub-{user}"}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def test_tokens_act_as_their_user(self):
        svc = self.create(self.name("oidc"))["name"]
        for key in (self.rsa, self.ec):
            with self.subTest(alg=key.alg):
                t_user = key.sign(self.claims(users.USER))
                t_other = key.sign(self.claims(users.OTHER))
                r = self.net("POST", f"/v1/services/{svc}/jobs", token=t_user, body={"data": {}})
                self.assertEqual(r.status, 201, r)
                job = r.json["id"]
                self.assertEqual(self.gw.http("GET", f"/v1/jobs/{job}", as_user=users.USER).status, 200)
                self.assertEqual(self.gw.http("GET", f"/v1/jobs/{job}", as_user=users.OTHER).status, 404)
                self.assertNetError(self.net("GET", f"/v1/jobs/{job}", token=t_other), 404, "NotFound")
                self.assertEqual(self.net("GET", f"/v1/jobs/{job}", token=t_user, tls=True).status, 200)

    def test_bad_tokens_are_401(self):
        src = new_address()
        now = int(time.time())
        good = self.claims()
        forged = self.rsa.sign(good)
        h, c, s = forged.split(".")
        tampered = f"{h}.{b64url(json.dumps(dict(good, preferred_username=users.ADMIN)).encode())}.{s}"
        cases = {
            "tampered claims": tampered,
            "expired": self.rsa.sign(self.claims(exp=now - 120, iat=now - 600, nbf=now - 600)),
            "not yet valid": self.rsa.sign(self.claims(nbf=now + 600)),
            "no expiry": self.rsa.sign(self.claims(exp=None)),
            "other issuer": self.rsa.sign(self.claims(iss="http://127.0.0.1:1/realms/evil")),
            "other audience": self.rsa.sign(self.claims(aud="someone-else")),
            "unpublished key": self.unpublished.sign(self.claims()),
            "alg none": f"{b64url(json.dumps({'alg': 'none', 'kid': 'rsa-1'}).encode())}.{c}.",
            "HS256 with the public key": self.rsa.sign(good, header={"alg": "HS256", "kid": "rsa-1"}),
            "EC key claims RS256": self.ec.sign(good, header={"alg": "RS256", "kid": "ec-1"}),
            "unknown user": self.rsa.sign(self.claims("no-such-user-oidc")),
            "root": self.rsa.sign(self.claims("root")),
            "garbage": "eyJhbGciOiJSUzI1NiJ9.garbage.garbage",
        }
        for what, token in cases.items():
            with self.subTest(what):
                self.assertNetError(self.net("GET", "/v1/jobs", token=token, source=src), 401, "Unauthenticated")
        self.assertEqual(self.net("GET", "/v1/jobs", token=forged, source=src).status, 200)

    def test_rotated_key_is_fetched_once(self):
        token = self.rotated.sign(self.claims())
        src = new_address()
        # Not published yet: refused (and the keys were looked at again at most once).
        self.assertNetError(self.net("GET", "/v1/jobs", token=token, source=src), 401, "Unauthenticated")
        before = self.provider.requests["jwks"]
        for _ in range(5):
            self.assertNetError(self.net("GET", "/v1/jobs", token=token, source=src), 401, "Unauthenticated")
        self.assertLessEqual(self.provider.requests["jwks"] - before, 1,
                             "made-up key ids must not make gatewayd fetch the keys for every request")
        # The provider rotates (publishing old and new keys side by side, as providers do): once
        # the refresh interval (10 s) has passed, the new key works.
        self.provider.keys = [self.rsa, self.rotated, self.ec]
        deadline = time.monotonic() + 20
        while True:
            # an address per attempt: the refusals until the refresh must not block it
            r = self.net("GET", "/v1/jobs", token=token, source=new_address())
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.provider.keys = [self.rsa, self.ec]
        self.assertEqual(r.status, 200, r)

    def test_provider_down_is_503_and_others_are_served(self):
        token = self.unpublished.sign(self.claims())     # a key gatewayd does not hold: it must ask
        self.provider.stop()
        try:
            deadline = time.monotonic() + 20
            while True:
                r = self.net("GET", "/v1/jobs", token=token, source=new_address())
                if r.status == 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            self.assertNetError(r, 503, "Unavailable")
            # meanwhile tokens with known keys and the unix socket are served
            self.assertEqual(self.net("GET", "/v1/jobs", token=self.rsa.sign(self.claims())).status, 200)
            self.assertEqual(self.gw.http("GET", "/v1/jobs", as_user=users.USER).status, 200)
        finally:
            self.provider.start()

    def test_gatewayd_tokens_still_work(self):
        t = self.create_token(users.USER)["token"]
        self.assertEqual(self.net("GET", "/v1/jobs", token=t).status, 200)

