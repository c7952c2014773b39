"""A real Docker registry (Debian's docker-registry, distribution 2.8) on a free 127.0.0.1 port,
optionally behind htpasswd basic auth or bearer-token auth with a token issuer that runs inside the
test process, optionally over TLS with a certificate from a test CA. Also a tiny push client used
by harness.images."""
import base64
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from . import procs


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TestCA:
    """A throwaway CA (openssl) and one server certificate it signed for 127.0.0.1 and localhost:
    ca (the bundle a client trusts), cert and key (for the server)."""

    def __init__(self, tmpdir):
        self.dir = os.path.join(tmpdir, "tls")
        os.makedirs(self.dir, exist_ok=True)
        self.ca = os.path.join(self.dir, "ca.pem")
        self.cert = os.path.join(self.dir, "server.pem")
        self.key = os.path.join(self.dir, "server.key")
        ca_key = os.path.join(self.dir, "ca.key")
        csr = os.path.join(self.dir, "server.csr")
        ext = os.path.join(self.dir, "server.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for argv in (["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", self.ca, "-days", "2",
                      "-subj", "/CN=gatewayd-test-ca"],
                     ["openssl", "req", *ec, "-keyout", self.key, "-out", csr, "-subj", "/CN=127.0.0.1"],
                     ["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial",
                      "-out", self.cert, "-days", "2", "-extfile", ext]):
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class TokenIssuer:
    """A bearer-token service as registries expect one (docker's token auth spec): GET
    /token?service=…&scope=… answers {"token": JWT}. JWTs are RS256-signed with openssl; the
    certificate goes into the x5c header so the registry can check it against its root bundle.
    With users set, requests must carry matching basic credentials."""

    def __init__(self, tmpdir, users=None, service="gatewayd-test", issuer="gatewayd-test-issuer"):
        self.dir = os.path.join(tmpdir, "token")
        os.makedirs(self.dir, exist_ok=True)
        self.users = users
        self.service = service
        self.issuer = issuer
        self.key = os.path.join(self.dir, "key.pem")
        self.cert = os.path.join(self.dir, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                        "-out", self.cert, "-days", "2", "-subj", "/CN=gatewayd-test-token"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"],
                             check=True, stdout=subprocess.PIPE).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests = []
        self.server = None
        self.thread = None

    def mint(self, scope, subject="anonymous"):
        access = []
        if scope:
            for sc in scope.split(" "):
                typ, name, actions = sc.split(":", 2) if sc.count(":") >= 2 else (sc, "", "")
                access.append({"type": typ, "name": name, "actions": actions.split(",") if actions else []})
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self.x5c]}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 600,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = (_b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input,
                             check=True, stdout=subprocess.PIPE).stdout
        return signing_input.decode() + "." + _b64url(sig)

    def start(self):
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(url.query)
                auth = self.headers.get("Authorization")
                issuer.requests.append({"path": url.path, "query": q, "authorization": auth})
                user = "anonymous"
                if issuer.users is not None:
                    ok = False
                    if auth and auth.startswith("Basic "):
                        u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                        ok = issuer.users.get(u) == p
                        user = u
                    if not ok:
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="token"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                token = issuer.mint(" ".join(q.get("scope", [])), user)
                body = json.dumps({"token": token, "access_token": token, "expires_in": 600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()
            self.server = None


class Registry:
    """docker-registry serving a temp directory. auth is None, ("htpasswd", {user: password}) or
    ("token", TokenIssuer). Push access for the harness uses the same credentials. With tls (a
    TestCA) it speaks only HTTPS."""

    def __init__(self, processes, tmpdir, auth=None, storage=None, tls=None):
        self.procs = processes
        self.tmpdir = tmpdir
        self.storage = storage or os.path.join(tmpdir, "registry-storage")
        self.auth = auth
        self.tls = tls
        self.proc = None
        self.port = None

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def _config(self):
        cfg = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.storage}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
        ]
        if self.tls:
            cfg += ["  tls:", f"    certificate: {self.tls.cert}", f"    key: {self.tls.key}"]
        if self.auth and self.auth[0] == "htpasswd":
            path = os.path.join(self.tmpdir, "htpasswd")
            with open(path, "w") as f:
                for u, p in self.auth[1].items():
                    line = subprocess.run(["htpasswd", "-nbB", u, p], check=True, stdout=subprocess.PIPE,
                                          text=True).stdout.strip()
                    f.write(line + "\n")
            cfg += ["auth:", "  htpasswd:", "    realm: gatewayd-test", f"    path: {path}"]
        elif self.auth and self.auth[0] == "token":
            t = self.auth[1]
            cfg += ["auth:", "  token:", f"    realm: {t.realm}", f"    service: {t.service}",
                    f"    issuer: {t.issuer}", f"    rootcertbundle: {t.cert}"]
        return "\n".join(cfg) + "\n"

    def start(self, port=None):
        self.port = port or free_port()
        os.makedirs(self.storage, exist_ok=True)
        cfg = os.path.join(self.tmpdir, f"registry-{self.port}.yml")
        with open(cfg, "w") as f:
            f.write(self._config())
        self.log = open(os.path.join(self.tmpdir, f"registry-{self.port}.log"), "ab")
        self.proc = self.procs.start(["docker-registry", "serve", cfg], stdout=self.log, stderr=self.log)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False
        procs.wait_for(up, timeout=10, what="docker-registry to listen")
        return self

    def stop(self):
        if self.proc:
            self.procs.stop(self.proc)
            self.proc = None
            self.log.close()

    def kill(self):
        """SIGKILL, as a crash would."""
        import signal
        if self.proc:
            self.procs.stop(self.proc, sig=signal.SIGKILL)
            self.proc = None
            self.log.close()

    # ---- push client ----

    def _auth_header(self, repo):
        if not self.auth:
            return None
        if self.auth[0] == "htpasswd":
            u, p = next(iter(self.auth[1].items()))
            return "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
        return "Bearer " + self.auth[1].mint(f"repository:{repo}:pull,push", "harness")

    def request(self, method, path, data=None, headers=None, repo=None, auth=True):
        url = path if path.startswith("http") else f"{self.url}{path}"
        h = dict(headers or {})
        if auth and repo:
            a = self._auth_header(repo)
            if a:
                h["Authorization"] = a
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        context = None
        if self.tls:
            import ssl
            context = ssl.create_default_context(cafile=self.tls.ca)
        return urllib.request.urlopen(req, timeout=60, context=context)

    def blob_exists(self, repo, digest):
        try:
            self.request("HEAD", f"/v2/{repo}/blobs/{digest}", repo=repo).close()
            return True
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return False
            raise

    def push_blob(self, repo, data, digest=None):
        """Monolithic upload: POST to start, PUT with ?digest=. Pass a wrong digest on purpose
        only via corrupt_blob()."""
        import hashlib
        digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()
        if self.blob_exists(repo, digest):
            return digest
        with self.request("POST", f"/v2/{repo}/blobs/uploads/", data=b"", repo=repo) as r:
            loc = r.headers["Location"]
        loc = urllib.parse.urljoin(f"{self.url}/", loc)
        sep = "&" if "?" in loc else "?"
        self.request("PUT", f"{loc}{sep}digest={urllib.parse.quote(digest)}", data=data,
                     headers={"Content-Type": "application/octet-stream"}, repo=repo).close()
        return digest

    def push_manifest(self, repo, ref, body, media_type):
        with self.request("PUT", f"/v2/{repo}/manifests/{ref}", data=body,
                          headers={"Content-Type": media_type}, repo=repo) as r:
            return r.headers.get("Docker-Content-Digest")

    def blob_path(self, digest):
        """Where the filesystem driver keeps a blob (for corrupting it on purpose)."""
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data")


class Proxy:
    """A TCP proxy in front of a registry for fault injection: rate limits what the registry
    sends (so a test can act mid-download) and can answer the first N connections with
    'HTTP 503' (transient failures that must be retried)."""

    def __init__(self, target_port, rate=None, fail_first=0, retry_after=None, status="503 Service Unavailable",
                 cut=None, flip=None):
        # cut: {connection number: bytes}: that connection is dropped after so many bytes of the
        # registry's answer (headers included); flip: {connection number: offset}: the byte at
        # that offset of the answer is inverted (a registry serving other bytes on a retry)
        self.cut = cut or {}
        self.flip = flip or {}
        self.target_port = target_port
        self.status = status
        self.rate = rate
        self.fail_first = fail_first
        self.retry_after = retry_after
        self.connections = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.threads = []
        self.stopping = False
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, c):
        with self.lock:
            self.connections += 1
            n = self.connections
        try:
            if n <= self.fail_first:
                c.recv(65536)
                extra = f"Retry-After: {self.retry_after}\r\n" if self.retry_after is not None else ""
                c.sendall(f"HTTP/1.1 {self.status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                return
            up = threading.Thread(target=self._pump, args=(c, u, None), daemon=True)
            up.start()
            self._pump(u, c, self.rate, self.cut.get(n), self.flip.get(n))
            up.join(timeout=5)
            u.close()
        finally:
            c.close()

    def _pump(self, src, dst, rate, cut=None, flip=None):
        chunk = 16384
        sent = 0
        try:
            while True:
                data = src.recv(chunk)
                if not data:
                    break
                if flip is not None and sent <= flip < sent + len(data):
                    data = bytearray(data)
                    data[flip - sent] ^= 0xFF
                    data = bytes(data)
                if cut is not None and sent + len(data) >= cut:
                    dst.sendall(data[:cut - sent])
                    dst.shutdown(socket.SHUT_RDWR)
                    src.close()
                    return
                sent += len(data)
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        self.sock.close()


class RedirectingFrontend:
    """An HTTP front for a registry that answers every blob GET with '307 Temporary Redirect' to a
    separate 'storage' server on another port (another origin), the way registries hand blobs to
    S3 or a CDN. Everything else is forwarded with the client's headers. The storage server
    records the headers it receives, so tests can check that no Authorization leaked there."""

    def __init__(self, registry):
        self.registry = registry
        self.storage_requests = []
        self.redirects = 0
        front = self

        class Storage(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                front.storage_requests.append(dict(self.headers.items()))
                url = urllib.parse.urlparse(self.path)
                repo = urllib.parse.parse_qs(url.query)["repo"][0]
                digest = url.path.rsplit("/", 1)[1]
                with registry.request("GET", f"/v2/{repo}/blobs/{digest}", repo=repo) as r:
                    body = r.read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Front(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _forward(self, method):
                if method == "GET" and "/blobs/sha256:" in self.path:
                    front.redirects += 1
                    repo, _, digest = self.path[len("/v2/"):].partition("/blobs/")
                    self.send_response(307)
                    self.send_header("Location", f"http://127.0.0.1:{front.storage_port}/storage/{digest}?repo={repo}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                h = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
                req = urllib.request.Request(f"http://{registry.host}{self.path}", method=method, headers=h)
                try:
                    r = urllib.request.urlopen(req, timeout=30)
                except urllib.error.HTTPError as e:
                    r = e
                body = r.read()
                self.send_response(r.status if hasattr(r, "status") else r.code)
                for k in ("Content-Type", "Docker-Content-Digest", "WWW-Authenticate"):
                    if r.headers.get(k):
                        self.send_header(k, r.headers[k])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):
                self._forward("GET")

            def do_HEAD(self):
                self._forward("HEAD")

        self.servers = []
        for handler in (Storage, Front):
            s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            t = threading.Thread(target=s.serve_forever, daemon=True)
            t.start()
            self.servers.append((s, t))
        self.storage_port = self.servers[0][0].server_address[1]
        self.port = self.servers[1][0].server_address[1]

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        for s, t in self.servers:
            s.shutdown()
            s.server_close()
            t.join()
        self.servers = []
