"""Custom tokens (issue 11 §2, the Qiskit serverless gateway's custom_token): a bearer token that
is not one of gatewayd's own is verified against the site's token service. The service is a real
HTTP server written here (Python's http.server in a thread) that speaks the protocol of
facts/qiskit-serverless.md: POST tokenUrl {"apiToken": TOKEN} → {"userId", "id"}; GET
verificationUrl with "Authorization: <id>" → an object whose configured fields must be truthy.
It counts what it is asked, can be stopped (down) and can hang (slow).

The same server also plays a container registry that never answers: jobs wait PENDING for their
image for as long as a test needs, so that JobsPerUser and ActiveJobsPerUser can be watched.

External users without a local account of their name act as localUser (gwtest-other) and keep
their jobs and limits to themselves."""
import collections
import http.server
import json
import os
import socket
import struct
import threading
import time
import uuid

from harness import openapi, procs, users
from harness.registry import free_port
from harness.stack import spec
from test_remote import RemoteBase, new_address

JOBS_DOC = openapi.load(os.path.join(procs.source_dir(), "docs", "openapi-jobs.yaml"))
PLANQK_DOC = openapi.load(os.path.join(procs.source_dir(), "docs", "openapi-planqk.yaml"))
SLOW_HOLD = 8.0         # how long the service sits on a "slow" token (gatewayd gives up after 5 s)


class TokenService:
    """The site's token service (and a registry that hangs)."""

    def __init__(self):
        self.port = free_port()
        self.tokens = {}            # token → (userId, id)
        self.verifications = {}     # id → answer of the verification URL
        self.counts = collections.Counter()     # ("login"|"verify", token or id) → requests
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.server = None
        self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def add(self, user, verified=True, answer=None, prefix="tok-"):
        """A token of USER; its verification answer is ANSWER or the default (verified or not)."""
        token, access = prefix + uuid.uuid4().hex, "acc-" + uuid.uuid4().hex
        self.tokens[token] = (user, access)
        self.verifications[access] = answer if answer is not None else \
            {"is_valid": verified, "some": {"nested": {"field": 1}}}
        return token

    def count(self, kind, key):
        with self.lock:
            return self.counts[(kind, key)]

    def start(self):
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body):
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass    # gatewayd gave up on a slow answer

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(n))
                except ValueError:
                    return self.reply(400, {"detail": "bad request"})
                token = body.get("apiToken") if isinstance(body, dict) else None
                if self.path != "/login" or self.headers.get("Content-Type") != "application/json" \
                        or not isinstance(token, str):
                    return self.reply(400, {"detail": "bad request"})
                with service.lock:
                    service.counts[("login", token)] += 1
                    n = service.counts[("login", token)]
                if token.startswith("reset-always-") or (token.startswith("reset-once-") and n == 1):
                    # the connection reset before an answer (SO_LINGER 0: RST)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if token.startswith("slow-"):
                    service.release.wait(SLOW_HOLD)
                    return self.reply(500, {"detail": "too late"})
                if token.startswith("broken-"):
                    return self.reply(200, {"no": "user"})
                if token not in service.tokens:
                    return self.reply(401, {"detail": "Invalid token"})
                user, access = service.tokens[token]
                self.reply(200, {"userId": user, "id": access, "ttl": 1209600})

            def do_GET(self):
                if self.path.startswith("/v2"):
                    # the registry that never answers: pulls (and the jobs behind them) wait
                    service.release.wait(120)
                    return self.reply(503, {"errors": []})
                access = self.headers.get("Authorization", "")
                with service.lock:
                    service.counts[("verify", access)] += 1
                if self.path != "/verify" or access not in service.verifications:
                    return self.reply(401, {"detail": "Invalid access id"})
                self.reply(200, service.verifications[access])

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def close(self):
        self.release.set()
        self.stop()


class CustomTokenBase(RemoteBase):
    local_user = users.OTHER

    @classmethod
    def setUpClass(cls):
        cls.service = TokenService()
        try:
            super().setUpClass()
        except BaseException:
            cls.service.close()
            raise

    @classmethod
    def listen_config(cls):
        # RemoteBase's hook for the listeners; the token service and the hanging registry go
        # into the configuration beside them.
        custom = {
            "tokenUrl": cls.service.url + "/login",
            "verificationUrl": cls.service.url + "/verify",
            "verificationField": "is_valid;some,nested,field",
        }
        if cls.local_user:
            custom["localUser"] = cls.local_user
        return {
            **super().listen_config(),
            "Authentication": {"customToken": custom},
            "Locations": {"registry.example.org": {"url": cls.service.url, "insecure": True}},
            "JobsPerUser": 1,
            "ActiveJobsPerUser": 2,
            "MaxClusters": 100,
        }

    @classmethod
    def tearDownClass(cls):
        try:
            cls.service.close()     # pulls waiting on the registry fail
            if cls.gw is not None and cls.gw.alive():
                # ... and are over before gatewayd stops (no pull worker outlives the class)
                procs.wait_for(lambda: not cls.pull_workers(), timeout=30, what="the pulls to fail")
        finally:
            super().tearDownClass()

    @classmethod
    def pull_workers(cls):
        """gatewayd's children (here: gateway-worker pulls), zombies included (not reaped yet)."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == cls.gw.pid():
                found.append(pid)
        return found

    def submit(self, svc, token, source="127.0.0.1"):
        return self.net("POST", f"/v1/services/{svc}/jobs", token=token, source=source, body={"data": {}})

    def cancel_all(self, token, ids):
        for job in ids:
            self.net("PUT", f"/v1/jobs/{job}/cancel", token=token)

    def assertDocumented(self, r, method, template, doc=JOBS_DOC):
        """The answer's status is one the OpenAPI document gives for the route."""
        self.assertIn(str(r.status), doc["paths"][template][method]["responses"], (method, template, r))
        if r.status == 401:
            self.assertIn("WWW-Authenticate", doc["components"]["responses"]["Unauthenticated"]["headers"])

    def job_status(self, job):
        r = self.gw.http("GET", f"/v1/jobs/{job}")
        self.assertEqual(r.status, 200, r.body)
        return r.json["status"]


class CustomToken(CustomTokenBase):

    def test_acts_as_same_named_user(self):
        """An external user with a local account of its name is that user."""
        svc = self.create(self.name("ct"))["name"]
        token = self.service.add(users.USER)
        for tls in (False, True):
            with self.subTest(tls=tls):
                r = self.net("GET", "/v1/jobs", token=token, tls=tls)
                self.assertEqual(r.status, 200, r)
        r = self.submit(svc, token)
        self.assertEqual(r.status, 201, r)
        job = r.json["id"]
        try:
            r = self.gw.http("GET", f"/v1/jobs/{job}", as_user=users.USER)
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json["uid"], users.uid_of(users.USER))
            self.assertEqual(self.gw.http("GET", f"/v1/jobs/{job}", as_user=users.OTHER).status, 404)
            # a network identity: local-only routes stay closed, no admin rights
            self.assertNetError(self.net("POST", "/v1/tokens", token=token), 403, "AccessDenied")
            self.assertNetError(self.net("POST", "/v1/services", token=token, body=spec(self.name())),
                                403, "AccessDenied")
        finally:
            self.cancel_all(token, [job])

    def test_external_users_sharing_local_user(self):
        """Two external users mapped to localUser: neither sees the other's jobs, nor does the
        local account itself; the jobs run as localUser."""
        svc = self.create(self.name("ct"))["name"]
        alice, bob = self.service.add("ext-alice"), self.service.add("ext-bob")
        r = self.submit(svc, alice)
        self.assertEqual(r.status, 201, r)
        job = r.json["id"]
        try:
            self.assertEqual(self.net("GET", f"/v1/jobs/{job}", token=alice).status, 200)
            self.assertNetError(self.net("GET", f"/v1/jobs/{job}", token=bob), 404, "NotFound")
            r = self.net("PUT", f"/v1/jobs/{job}/cancel", token=bob)
            self.assertNetError(r, 404, "NotFound")
            self.assertDocumented(r, "put", "/v1/jobs/{id}/cancel")
            r = self.net("GET", "/v1/jobs", token=bob)
            self.assertEqual(r.status, 200, r)
            self.assertNotIn(job, r.body)
            self.assertIn(job, self.net("GET", "/v1/jobs", token=alice).body)
            # PlanQK's surface judges the same way
            self.assertNetError(self.net("GET", f"/planqk/{svc}/{job}", token=bob), 404, "NotFound")
            # the shared account on the unix socket is not alice either
            self.assertEqual(self.gw.http("GET", f"/v1/jobs/{job}", as_user=users.OTHER).status, 404)
            r = self.gw.http("GET", f"/v1/jobs/{job}")     # root sees it, running as localUser
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json["uid"], users.uid_of(users.OTHER))
        finally:
            self.cancel_all(alice, [job])

    def test_system_accounts_are_not_mapped_by_name(self):
        """An external user called root acts as localUser, never as root."""
        svc = self.create(self.name("ct"))["name"]
        token = self.service.add("root")
        r = self.submit(svc, token)
        self.assertEqual(r.status, 201, r)
        try:
            r2 = self.gw.http("GET", f"/v1/jobs/{r.json['id']}")
            self.assertEqual(r2.json["uid"], users.uid_of(users.OTHER), r2.body)
            self.assertEqual(self.gw.http("GET", f"/v1/jobs/{r.json['id']}", as_user=users.OTHER).status, 404)
        finally:
            self.cancel_all(token, [r.json["id"]])

    def test_limits_count_per_external_user(self):
        """JobsPerUser=1 and ActiveJobsPerUser=2 per external user, though both act as one
        account. Jobs wait PENDING for an image from the registry that never answers."""
        svc = self.create(self.name("ct"))["name"]
        alice, bob = self.service.add("lim-alice"), self.service.add("lim-bob")
        jobs = {alice: [], bob: []}
        try:
            for token in (alice, bob):
                for _ in range(2):
                    r = self.submit(svc, token)
                    self.assertEqual(r.status, 201, r)
                    jobs[token].append(r.json["id"])
                # the third unfinished job is one too many for this external user only
                r = self.submit(svc, token)
                self.assertNetError(r, 429, "LimitExceeded")
            # each external user holds one running slot (fair share per external user); the
            # second job of each waits for it
            for token in (alice, bob):
                first, second = jobs[token]
                procs.wait_for(lambda: self.job_status(first) == "PENDING", timeout=10,
                               what="the first job to get its slot")
                self.assertEqual(self.job_status(second), "QUEUED")
            # the local account's own limits are its own too
            r = self.gw.http("POST", f"/v1/services/{svc}/jobs", {"data": {}}, as_user=users.OTHER)
            self.assertEqual(r.status, 201, r.body)
            self.assertEqual(self.gw.http("PUT", f"/v1/jobs/{r.json['id']}/cancel", as_user=users.OTHER).status, 200)
        finally:
            for token, ids in jobs.items():
                self.cancel_all(token, ids)

    def test_connections_per_external_user(self):
        """ConnectionsPerUser counts per external user, not per the account they share."""
        alice, bob = self.service.add("conn-alice"), self.service.add("conn-bob")
        held = []
        try:
            for _ in range(self.connections_per_user):
                c = self.connection(source=new_address())
                held.append(c)
                self.assertEqual(self.request(c, "GET", "/v1/jobs", token=alice).status, 200)
            c = self.connection(source=new_address())
            held.append(c)
            self.assertNetError(self.request(c, "GET", "/v1/jobs", token=alice), 429, "LimitExceeded")
            self.assertEqual(self.net("GET", "/v1/jobs", token=bob, source=new_address()).status, 200)
            own = self.create_token(users.OTHER)["token"]    # the shared account itself
            self.assertEqual(self.net("GET", "/v1/jobs", token=own, source=new_address()).status, 200)
        finally:
            for c in held:
                c.close()

    def test_invalid_token(self):
        src = new_address()
        r = self.net("GET", "/v1/jobs", token="tok-unknown-" + uuid.uuid4().hex, source=src)
        self.assertNetError(r, 401, "Unauthenticated")
        self.assertDocumented(r, "get", "/v1/jobs")
        self.assertIn("refused", r.json["error"]["message"])
        self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer"), r.headers)
        # not printable: refused without asking the service
        r = self.net("GET", "/v1/jobs", headers={"Authorization": "Bearer a\x7fb"}, source=src)
        self.assertNetError(r, 401, "Unauthenticated")

    def test_verification_field_false(self):
        src = new_address()
        for answer, field in (({"is_valid": False, "some": {"nested": {"field": 1}}}, "is_valid"),
                              ({"is_valid": True, "some": {"nested": {"field": 0}}}, "some.nested.field"),
                              ({"is_valid": True, "some": {"nested": {}}}, "some.nested.field"),
                              ({"is_valid": True, "some": "flat"}, "some.nested.field")):
            with self.subTest(answer=answer):
                token = self.service.add("ext-carol", answer=answer)
                r = self.net("GET", "/v1/jobs", token=token, source=src)
                self.assertNetError(r, 401, "Unauthenticated")
                self.assertIn(field, r.json["error"]["message"])

    def test_unusable_answer_is_503(self):
        r = self.net("GET", "/v1/jobs", token="broken-" + uuid.uuid4().hex)
        self.assertNetError(r, 503, "Unavailable")
        self.assertIn("userId", r.json["error"]["message"])

    def test_connection_reset(self):
        """A connection reset before the answer is asked once more; twice is 503."""
        token = self.service.add("ext-ivan", prefix="reset-once-")
        self.assertEqual(self.net("GET", "/v1/jobs", token=token).status, 200)
        self.assertEqual(self.service.count("login", token), 2)
        token = self.service.add("ext-ivan", prefix="reset-always-")
        r = self.net("GET", "/v1/jobs", token=token)
        self.assertNetError(r, 503, "Unavailable")
        self.assertIn("closed the connection", r.json["error"]["message"])
        self.assertEqual(self.service.count("login", token), 2)
        self.assertServing()

    def test_cache(self):
        """Verdicts are cached by the token's hash: a second request within 60 s (and a second
        refusal within 10 s) does not reach the service."""
        token = self.service.add("ext-dave")
        access = self.service.tokens[token][1]
        for _ in range(3):
            self.assertEqual(self.net("GET", "/v1/jobs", token=token).status, 200)
        self.assertEqual(self.service.count("login", token), 1)
        self.assertEqual(self.service.count("verify", access), 1)
        bad = "tok-bad-" + uuid.uuid4().hex
        src = new_address()
        for _ in range(2):
            self.assertNetError(self.net("GET", "/v1/jobs", token=bad, source=src), 401, "Unauthenticated")
        self.assertEqual(self.service.count("login", bad), 1)
        # the token itself is stored nowhere: not in the database
        with open(f"{self.gw.state_dir}/state.db", "rb") as f:
            self.assertNotIn(token.encode(), f.read())

    def test_gatewayd_tokens_never_reach_the_service(self):
        forged = "gwt_" + "0" * 16 + "_" + "A" * 43
        self.assertNetError(self.net("GET", "/v1/jobs", token=forged, source=new_address()), 401, "Unauthenticated")
        self.assertEqual(self.service.count("login", forged), 0)
        # gatewayd's own tokens keep working beside custom tokens
        t = self.create_token(users.USER)["token"]
        self.assertEqual(self.net("GET", "/v1/jobs", token=t).status, 200)
        self.assertEqual(self.service.count("login", t), 0)

    def test_service_down(self):
        token = self.service.add("ext-erin")
        self.service.stop()
        try:
            r = self.net("GET", "/v1/jobs", token=token)
            self.assertNetError(r, 503, "Unavailable")
            self.assertIn("token service", r.json["error"]["message"])
            self.assertDocumented(r, "get", "/v1/jobs")
            r = self.net("GET", "/planqk/any/", token=token)
            self.assertNetError(r, 503, "Unavailable")
            self.assertDocumented(r, "get", "/", PLANQK_DOC)
        finally:
            self.service.start()
        # not cached: the service is asked again once it is back
        self.assertEqual(self.net("GET", "/v1/jobs", token=token).status, 200)

    def test_service_slow(self):
        """A service that does not answer costs its callers a 503 after 5 s; the loop serves the
        unix socket and other TCP clients meanwhile."""
        good = self.service.add("ext-frank")
        self.assertEqual(self.net("GET", "/v1/jobs", token=good).status, 200)   # cached now
        slow = "slow-" + uuid.uuid4().hex
        result = {}

        def slow_request():
            t0 = time.monotonic()
            conn = self.connection(source=new_address(), timeout=20)
            try:
                result["r"] = self.request(conn, "GET", "/v1/jobs", token=slow)
            finally:
                conn.close()
            result["elapsed"] = time.monotonic() - t0

        th = threading.Thread(target=slow_request)
        th.start()
        try:
            procs.wait_for(lambda: self.service.count("login", slow) == 1, timeout=10,
                           what="the slow token to reach the service")
            for _ in range(3):
                t0 = time.monotonic()
                self.assertServing()
                self.assertEqual(self.net("GET", "/v1/jobs", token=good, source=new_address()).status, 200)
                self.assertEqual(self.net("GET", "/v1/status", tls=True).status, 200)
                self.assertLess(time.monotonic() - t0, 2.0)
            self.assertTrue(th.is_alive(), "the slow request was answered early")
        finally:
            th.join(30)
        r = result["r"]
        self.assertNetError(r, 503, "Unavailable")
        self.assertIn("5 s", r.json["error"]["message"])
        self.assertGreater(result["elapsed"], 4.5)
        self.assertLess(result["elapsed"], SLOW_HOLD)

    def test_failed_custom_tokens_block_address(self):
        src, other = new_address(), new_address()
        good = self.service.add("ext-gina")
        conn = self.connection(source=src)
        try:
            for i in range(20):
                r = self.request(conn, "GET", "/v1/jobs", token=f"tok-guess-{i}-{uuid.uuid4().hex}")
                self.assertNetError(r, 401, "Unauthenticated")
            r = self.request(conn, "GET", "/v1/jobs", token=good)
            self.assertNetError(r, 429, "LimitExceeded")
            self.assertDocumented(r, "get", "/v1/jobs")
        finally:
            conn.close()
        self.assertEqual(self.net("GET", "/v1/jobs", token=good, source=other).status, 200)


class CustomTokenNoLocalUser(CustomTokenBase):
    """Without localUser, external users need a local account of their name."""
    local_user = None
    with_polkit = False

    def test_unknown_user_refused(self):
        for user in ("ext-nobody-here", "root", "daemon"):
            with self.subTest(user=user):
                src = new_address()
                r = self.net("GET", "/v1/jobs", token=self.service.add(user), source=src)
                self.assertNetError(r, 403, "AccessDenied")
                self.assertDocumented(r, "get", "/v1/jobs")
                self.assertIn(user, r.json["error"]["message"])
                self.assertIn("local account", r.json["error"]["message"])
        # a known user is fine
        self.assertEqual(self.net("GET", "/v1/jobs", token=self.service.add(users.USER)).status, 200)
