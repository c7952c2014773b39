"""PlanQK client credentials (issue 11 §2) and PlanQK's newer service API routes (§3): a local
user creates a client on the unix socket, a real HTTP client (Python's http.client) trades its id
and secret at POST /token on the TCP listener for a bearer token (OAuth2 client credentials, RFC
6749 §4.4, as PlanQK's service SDK does it), and calls the PlanQK API with it: submit, status,
result (with HAL links and result files), log as a list of lines. Bad, revoked and foreign
credentials, OAuth2's error answers, the per-address blocking, token expiry, D-Bus and gatewayctl.

Every test that makes authentications fail uses a source address of its own: 20 failures within
a minute block an address for 5 minutes."""
import base64
import json
import os
import subprocess
import time
import urllib.parse

from harness import openapi, procs, users
from harness.registry import free_port
from test_jobs import TERMINAL, JobsBase
from test_remote import NetResponse, RemoteBase, new_address

DOC = openapi.load(os.path.join(procs.source_dir(), "docs", "openapi-planqk.yaml"))
API_DOC = openapi.load(os.path.join(procs.source_dir(), "docs", "openapi.yaml"))

FORM = "application/x-www-form-urlencoded;charset=UTF-8"


class ClientsMixin:
    """Requests on the TCP listener (the helpers of test_remote.RemoteBase) and the token
    endpoint as authlib's OAuth2Client calls it."""
    connection = RemoteBase.connection
    request = RemoteBase.request
    net = RemoteBase.net
    assertNetError = RemoteBase.assertNetError

    def create_client(self, as_user=users.USER, **body):
        r = self.gw.http("POST", "/v1/clients", body, as_user=as_user)
        self.assertEqual(r.status, 201, r.body)
        return r.json

    def fetch_token(self, client_id, secret, form=None, basic=True, source="127.0.0.1", content_type=FORM,
                    headers=None):
        """POST /token: the SDK's request (Basic, form body grant_type=client_credentials)."""
        fields = {"grant_type": "client_credentials"} if form is None else form
        h = {"Content-Type": content_type, "Accept": "application/json", **(headers or {})}
        if basic:
            pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
            h["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        body = fields if isinstance(fields, str) else urllib.parse.urlencode(fields)
        conn = self.connection(source=source)
        try:
            conn.request("POST", "/token", body=body.encode(), headers=h)
            r = conn.getresponse()
            return NetResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace"))
        finally:
            conn.close()

    def assertOAuthError(self, r, status, error):
        self.assertEqual(r.status, status, r)
        self.assertEqual((r.json or {}).get("error"), error, r)
        self.assertIn("error_description", r.json)
        self.assertEqual(r.headers.get("cache-control"), "no-store", r.headers)
        if status == 401:
            self.assertTrue(r.headers.get("www-authenticate", "").startswith("Basic"), r.headers)


class PlanqkClients(ClientsMixin, JobsBase):
    jobs_per_user = 4
    active_jobs_per_user = 8

    @classmethod
    def setUpClass(cls):
        cls.tcp_port = free_port()
        cls.extra_config = {"Listen": {"tcp": f"127.0.0.1:{cls.tcp_port}"}, "Admins": [users.ADMIN]}
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.v = openapi.Validator(DOC)

    def planqk(self, method, template, status, token, job=None, body=None, service=None, file=None):
        """One request to /planqk/SERVICE + TEMPLATE over TCP with TOKEN, checked against
        docs/openapi-planqk.yaml like test_planqk's calls."""
        service = service or self.services["echo"]
        path = "/planqk/" + service + template.replace("{id}", job or "").replace("{file}", file or "")
        r = self.net(method, path, token=token, body=body)
        self.assertEqual(r.status, status, f"{method} {path}: {r}")
        schema = self.v.response_schema(template, method, status)
        if schema is not None and r.headers.get("content-type", "").startswith("application/json"):
            self.assertEqual(self.v.check(schema, r.json), [], f"{method} {path} → {r.body}")
        return r

    def spool(self, job_id):
        return os.path.join(self.gw.state_dir, "jobs", job_id)

    # -- the flow --------------------------------------------------------------------------

    def test_full_flow(self):
        """Create a client on the unix socket, fetch a token over TCP with Basic, submit a
        PlanQK job with it, read status, result (HAL), result files and the log."""
        c = self.create_client(name="laptop")
        self.assertRegex(c["clientId"], r"^gwc_[0-9a-f]{16}$")
        self.assertGreaterEqual(len(c["clientSecret"]), 43)
        self.assertEqual(sorted(c["scope"]), ["pull", "read", "submit"])
        self.assertEqual(c["name"], "laptop")

        r = self.fetch_token(c["clientId"], c["clientSecret"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"access_token", "token_type", "expires_in", "scope"})
        self.assertEqual(r.json["token_type"], "Bearer")
        self.assertEqual(r.json["expires_in"], 3600)
        self.assertEqual(r.json["scope"], "read submit pull")
        self.assertEqual(r.headers.get("cache-control"), "no-store")
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        token = r.json["access_token"]

        svc = self.services["echo"]
        job = self.planqk("POST", "/", 201, token, body={"data": {"n": 7}, "params": {"mode": "x"}}).json
        # the job is the client owner's
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{job['id']}", as_user=users.USER).status, 200)
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{job['id']}", as_user=users.OTHER).status, 404)

        def done():
            s = self.planqk("GET", "/{id}", 200, token, job=job["id"]).json
            return s["status"] in TERMINAL and s
        status = procs.wait_for(done, timeout=60, what="the job to end")
        self.assertEqual(status["status"], "SUCCEEDED")

        # a result file, where a job's result files are kept (the spool's output/)
        out = os.path.join(self.spool(job["id"]), "output")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "histogram.csv"), "wb") as f:
            f.write(b"bin,count\n0,3\n1,4\n")
        os.symlink("/etc/shadow", os.path.join(out, "sneaky"))
        with open(os.path.join(out, "a b%.txt"), "wb") as f:
            f.write(b"odd name")

        res = self.planqk("GET", "/{id}/result", 200, token, job=job["id"]).json
        self.assertEqual({k: v for k, v in res.items() if not k.startswith("_")},
                         {"data": {"n": 7}, "params": {"mode": "x"}})
        base = f"/planqk/{svc}/{job['id']}"
        self.assertEqual(res["_links"], {"self": {"href": base + "/result"}, "status": {"href": base},
                                         "histogram.csv": {"href": base + "/result/histogram.csv"},
                                         "a b%.txt": {"href": base + "/result/a%20b%25.txt"}})
        self.assertEqual(self.net("GET", res["_links"]["a b%.txt"]["href"], token=token).body, "odd name")
        self.assertEqual(res["_embedded"]["status"]["id"], job["id"])
        self.assertEqual(res["_embedded"]["status"]["status"], "SUCCEEDED")

        f = self.planqk("GET", "/{id}/result/{file}", 200, token, job=job["id"], file="histogram.csv")
        self.assertEqual(f.body, "bin,count\n0,3\n1,4\n")
        self.assertEqual(f.headers["content-type"], "application/octet-stream")
        for name in ("sneaky", "nope.txt", ".hidden", "..", "%2e%2e"):
            with self.subTest(file=name):
                self.assertNetError(self.net("GET", f"{base}/result/{name}", token=token), 404, "NotFound")

        log = self.planqk("GET", "/{id}/log", 200, token, job=job["id"]).json
        self.assertIsInstance(log, list)
        self.assertTrue(all(isinstance(x, str) for x in log), log)
        self.assertIn({"n": 7}, [json.loads(x) for x in log if x.startswith("{")])
        self.assertIn("to stderr", log)
        self.assertFalse(any("\n" in x for x in log), log)

        # another user's token sees none of it
        other = self.create_client(users.OTHER)
        t_other = self.fetch_token(other["clientId"], other["clientSecret"]).json["access_token"]
        for tmpl in ("/{id}", "/{id}/result", "/{id}/log", "/{id}/result/histogram.csv"):
            self.assertNetError(self.net("GET", f"/planqk/{svc}" + tmpl.replace("{id}", job["id"]), token=t_other),
                                404, "NotFound")

    def test_log_route_local_and_unfinished(self):
        """The log as lines on the unix socket too, while the job runs, and invalid UTF-8 made valid."""
        svc = self.services["sleep"]
        r = self.gw.http("POST", f"/planqk/{svc}", {"data": {}, "params": {"sleep": 30}}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        jid = r.json["id"]
        try:
            def running():
                r = self.gw.http("GET", f"/planqk/{svc}/{jid}/log", as_user=users.USER)
                self.assertEqual(r.status, 200, r.body)
                return r.json == ["sleeping 30"] and r.json
            procs.wait_for(running, timeout=60, what="the job's first line")
            res = self.gw.http("GET", f"/planqk/{svc}/{jid}/result", as_user=users.USER)
            self.assertEqual(res.status, 409, res.body)
        finally:
            self.gw.http("PUT", f"/planqk/{svc}/{jid}/cancel", as_user=users.USER)

    def test_sdk_token_fetch(self):
        """The token fetch exactly as PlanQK's service SDK does it (planqk/service/auth.py):
        authlib's OAuth2Client over httpx, client_secret_basic; then curl (libcurl) with the
        token on the PlanQK API."""
        try:
            from authlib.integrations.httpx_client import OAuth2Client
        except ImportError:
            self.skipTest("python3-authlib / python3-httpx not installed (scripts/install-deps)")
        c = self.create_client()
        with OAuth2Client(c["clientId"], c["clientSecret"]) as client:
            token = client.fetch_token(f"http://127.0.0.1:{self.tcp_port}/token", grant_type="client_credentials")
        self.assertEqual(token["token_type"], "Bearer")
        self.assertEqual(token["expires_in"], 3600)
        p = subprocess.run(["curl", "-sS", "-f", "-H", f"Authorization: Bearer {token['access_token']}",
                            "-H", "Content-Type: application/json", "-d", '{"data": {"n": 1}}',
                            f"http://127.0.0.1:{self.tcp_port}/planqk/{self.services['echo']}"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["status"], "PENDING")
        # curl's own Basic (-u) at the token endpoint works too
        p = subprocess.run(["curl", "-sS", "-f", "-u", f"{c['clientId']}:{c['clientSecret']}",
                            "-d", "grant_type=client_credentials", f"http://127.0.0.1:{self.tcp_port}/token"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(json.loads(p.stdout)["access_token"].startswith("gwt_"))

    def test_token_form_credentials(self):
        """client_id and client_secret as form fields (RFC 6749 §2.3.1) work as Basic does."""
        c = self.create_client()
        r = self.fetch_token(c["clientId"], c["clientSecret"], basic=False,
                             form={"grant_type": "client_credentials", "client_id": c["clientId"],
                                   "client_secret": c["clientSecret"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.net("GET", "/v1/jobs", token=r.json["access_token"]).status, 200)

    def test_token_errors(self):
        c = self.create_client()
        src = new_address()
        for form, content_type, status, error in (
                ({"grant_type": "password"}, FORM, 400, "unsupported_grant_type"),
                ({"grant_type": "authorization_code", "code": "x"}, FORM, 400, "unsupported_grant_type"),
                ({}, FORM, 400, "invalid_request"),
                ("grant_type=client_credentials&grant_type=client_credentials", FORM, 400, "invalid_request"),
                ("grant_type=client%ZZcredentials", FORM, 400, "invalid_request"),
                ("grant_type=client_credentials%00", FORM, 400, "invalid_request"),
                ({"grant_type": "client_credentials"}, "application/json", 400, "invalid_request"),
                ({"grant_type": "client_credentials", "scope": "admin"}, FORM, 400, "invalid_scope")):
            with self.subTest(form=form, content_type=content_type):
                r = self.fetch_token(c["clientId"], c["clientSecret"], form=form, content_type=content_type, source=src)
                self.assertOAuthError(r, status, error)
        # both Basic and the form's secret: one method only
        r = self.fetch_token(c["clientId"], c["clientSecret"], source=src,
                             form={"grant_type": "client_credentials", "client_secret": c["clientSecret"]})
        self.assertOAuthError(r, 400, "invalid_request")
        # no credentials at all
        r = self.fetch_token("", "", basic=False, source=src)
        self.assertOAuthError(r, 401, "invalid_client")
        # none of the above were guesses: the address is not blocked
        self.assertEqual(self.fetch_token(c["clientId"], c["clientSecret"], source=src).status, 200)
        # other methods: not anonymous on TCP, not allowed on the unix socket
        self.assertNetError(self.net("GET", "/token", source=src), 401, "Unauthenticated")
        self.assertError(self.gw.http("GET", "/token", as_user=users.USER), 405, "MethodNotAllowed")

    def test_wrong_secret_and_unknown_client(self):
        c = self.create_client()
        src = new_address()
        for cid, secret in ((c["clientId"], c["clientSecret"][:-1] + ("A" if c["clientSecret"][-1] != "A" else "B")),
                            (c["clientId"], ""), ("gwc_0000000000000000", c["clientSecret"]), ("x:y", "z")):
            with self.subTest(client=cid, secret=secret):
                self.assertOAuthError(self.fetch_token(cid, secret, source=src), 401, "invalid_client")
        r = self.fetch_token(c["clientId"], c["clientSecret"], basic=False, source=src,
                             headers={"Authorization": "Basic !!!notbase64"})
        self.assertOAuthError(r, 401, "invalid_client")
        self.assertEqual(self.fetch_token(c["clientId"], c["clientSecret"], source=src).status, 200)

    def test_failed_client_authentications_block_address(self):
        c = self.create_client()
        bad, good = new_address(), new_address()
        for i in range(20):
            self.assertOAuthError(self.fetch_token(c["clientId"], f"wrong{i}", source=bad), 401, "invalid_client")
        # blocked now, even with the right secret, and for every route
        r = self.fetch_token(c["clientId"], c["clientSecret"], source=bad)
        self.assertNetError(r, 429, "LimitExceeded")
        self.assertTrue(240 <= int(r.headers["retry-after"]) <= 300, r.headers)
        self.assertNetError(self.net("GET", "/v1/status", source=bad), 429, "LimitExceeded")
        # other addresses are served
        self.assertEqual(self.fetch_token(c["clientId"], c["clientSecret"], source=good).status, 200)

    def test_scopes(self):
        c = self.create_client(scope=["read"])
        self.assertEqual(c["scope"], ["read"])
        r = self.fetch_token(c["clientId"], c["clientSecret"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["scope"], "read")
        t = r.json["access_token"]
        self.assertNetError(self.net("POST", f"/planqk/{self.services['echo']}", token=t, body={"data": {}}),
                            403, "AccessDenied")
        self.assertEqual(self.net("GET", "/v1/jobs", token=t).status, 200)
        # a token cannot ask for more than its client has, but for less
        src = new_address()
        r = self.fetch_token(c["clientId"], c["clientSecret"], source=src,
                             form={"grant_type": "client_credentials", "scope": "read submit"})
        self.assertOAuthError(r, 400, "invalid_scope")
        full = self.create_client()
        r = self.fetch_token(full["clientId"], full["clientSecret"], form={"grant_type": "client_credentials",
                                                                           "scope": "read"})
        self.assertEqual(r.json["scope"], "read", r)

    def test_revoked_client(self):
        c = self.create_client()
        t = self.fetch_token(c["clientId"], c["clientSecret"]).json["access_token"]
        self.assertEqual(self.net("GET", "/v1/jobs", token=t).status, 200)
        r = self.gw.http("DELETE", f"/v1/clients/{c['clientId']}", as_user=users.USER)
        self.assertEqual(r.status, 204, r.body)
        src = new_address()
        self.assertOAuthError(self.fetch_token(c["clientId"], c["clientSecret"], source=src), 401, "invalid_client")
        # what it was given is revoked with it
        self.assertNetError(self.net("GET", "/v1/jobs", token=t, source=src), 401, "Unauthenticated")
        self.assertError(self.gw.http("DELETE", f"/v1/clients/{c['clientId']}", as_user=users.USER), 404, "NotFound")

    def test_client_tokens_bounded(self):
        """A client keeps at most 100 live tokens (the oldest make room); they are the owner's
        tokens, listed with their client, but do not count towards the owner's 100."""
        c = self.create_client(users.OTHER)
        conn = self.connection()
        tokens = []
        try:
            auth = base64.b64encode(f"{c['clientId']}:{c['clientSecret']}".encode()).decode()
            for _ in range(101):
                conn.request("POST", "/token", body=b"grant_type=client_credentials",
                             headers={"Content-Type": FORM, "Authorization": "Basic " + auth})
                r = conn.getresponse()
                body = r.read()
                self.assertEqual(r.status, 200, body)
                tokens.append(json.loads(body)["access_token"])
        finally:
            conn.close()
        self.assertNetError(self.net("GET", "/v1/jobs", token=tokens[0], source=new_address()), 401, "Unauthenticated")
        self.assertEqual(self.net("GET", "/v1/jobs", token=tokens[1]).status, 200)
        self.assertEqual(self.net("GET", "/v1/jobs", token=tokens[-1]).status, 200)
        listed = self.gw.http("GET", "/v1/tokens", as_user=users.OTHER).json["tokens"]
        self.assertEqual(len([t for t in listed if t.get("clientId") == c["clientId"]]), 100)
        self.assertEqual(self.gw.http("POST", "/v1/tokens", {}, as_user=users.OTHER).status, 201)
        # removing the client takes all of them
        self.assertEqual(self.gw.http("DELETE", f"/v1/clients/{c['clientId']}", as_user=users.OTHER).status, 204)
        listed = self.gw.http("GET", "/v1/tokens", as_user=users.OTHER).json["tokens"]
        self.assertEqual([t for t in listed if t.get("clientId")], [])

    def test_clients_are_private(self):
        c = self.create_client(users.USER)
        mine = self.gw.http("GET", "/v1/clients", as_user=users.USER)
        self.assertEqual(mine.status, 200, mine.body)
        listed = [x for x in mine.json["clients"] if x["clientId"] == c["clientId"]]
        self.assertEqual(len(listed), 1)
        self.assertEqual(set(listed[0]), {"clientId", "name", "scope", "createdAt", "lastUsedAt"})
        self.assertIsNone(listed[0]["lastUsedAt"])
        self.assertNotIn(c["clientSecret"], mine.body)
        # another user neither sees nor removes it
        theirs = self.gw.http("GET", "/v1/clients", as_user=users.OTHER)
        self.assertNotIn(c["clientId"], theirs.body)
        self.assertError(self.gw.http("DELETE", f"/v1/clients/{c['clientId']}", as_user=users.OTHER), 404, "NotFound")
        # stored only as a hash
        db = os.path.join(self.gw.state_dir, "state.db")
        dump = subprocess.run(["sqlite3", db, ".dump clients"], capture_output=True, text=True).stdout
        self.assertIn(c["clientId"], dump)
        self.assertNotIn(c["clientSecret"], dump)
        # use is noted
        self.assertEqual(self.fetch_token(c["clientId"], c["clientSecret"]).status, 200)
        mine = self.gw.http("GET", "/v1/clients", as_user=users.USER)
        self.assertIsNotNone([x for x in mine.json["clients"] if x["clientId"] == c["clientId"]][0]["lastUsedAt"])
        # an admin (polkit org.gatewayd.manage-tokens) removes it
        r = self.gw.http("DELETE", f"/v1/clients/{c['clientId']}", as_user=users.ADMIN)
        self.assertEqual(r.status, 204, r.body)
        self.assertNotIn(c["clientId"], self.gw.http("GET", "/v1/clients", as_user=users.USER).body)

    def test_client_validation(self):
        for body in ({"scope": []}, {"scope": ["admin"]}, {"name": ""}, {"name": 3}, {"name": "a\nb"},
                     {"name": "x" * 129}, {"bogus": 1}, ["scope"]):
            with self.subTest(body=body):
                self.assertError(self.gw.http("POST", "/v1/clients", body, as_user=users.USER), 400, "InvalidArgument")
        self.assertEqual(self.gw.http("POST", "/v1/clients", {}, as_user=users.USER).status, 201)

    def test_clients_only_local(self):
        c = self.create_client()
        t = self.fetch_token(c["clientId"], c["clientSecret"]).json["access_token"]
        for method, path in (("POST", "/v1/clients"), ("GET", "/v1/clients"), ("DELETE", f"/v1/clients/{c['clientId']}")):
            with self.subTest(method=method, path=path):
                self.assertNetError(self.net(method, path, token=t, body={} if method == "POST" else None),
                                    403, "AccessDenied")
                self.assertNetError(self.net(method, path), 401, "Unauthenticated")

    def test_health_anonymous(self):
        svc = self.services["echo"]
        for path in (f"/planqk/{svc}/", f"/planqk/{svc}"):
            r = self.net("GET", path)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json, {"status": "Service is up and running"})
        # the rest of the PlanQK API is not anonymous
        self.assertNetError(self.net("POST", f"/planqk/{svc}/", body={"data": {}}), 401, "Unauthenticated")
        self.assertNetError(self.net("GET", f"/planqk/{svc}/00000000-0000-0000-0000-000000000000/log"),
                            401, "Unauthenticated")

    def test_dbus_and_gatewayctl(self):
        p = self.gw.gatewayctl("client", "create", "--name=ci", "--scope=read,submit", "-q", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        cid, secret = p.stdout.split()
        self.assertTrue(cid.startswith("gwc_"), p.stdout)
        r = self.fetch_token(cid, secret)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["scope"], "read submit")
        p = self.gw.gatewayctl("client", "list", "--json=short", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        listed = {x["clientId"]: x for x in json.loads(p.stdout)}
        self.assertEqual(listed[cid]["name"], "ci")
        self.assertEqual(listed[cid]["scope"], ["read", "submit"])
        self.assertGreater(listed[cid]["lastUsedUsec"], 0)
        p = self.gw.gatewayctl("client", "list", as_user=users.USER)
        self.assertIn(cid, p.stdout)
        self.assertNotIn(secret, p.stdout)

        p, data = self.gw.call("CreateClient", "s", '{"scope": ["read"], "name": "bus"}', as_user=users.OTHER)
        self.assertEqual(p.returncode, 0, p.stderr)
        created = json.loads(data[0])
        self.assertEqual(created["scope"], ["read"])
        p, data = self.gw.call("ListClients", as_user=users.OTHER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(created["clientId"], [x[0] for x in data[0]])
        self.assertNotIn(cid, [x[0] for x in data[0]])
        p, err = self.gw.gdbus_call("RemoveClient", cid, as_user=users.OTHER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NotFound", p.stderr)
        p, err = self.gw.gdbus_call("CreateClient", '{"scope": ["nope"]}', as_user=users.OTHER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.InvalidArgument", p.stderr)
        p, err = self.gw.gdbus_call("RemoveClient", created["clientId"], as_user=users.ADMIN)
        self.assertIsNone(err, p.stderr)

        p = self.gw.gatewayctl("client", "rm", cid, as_user=users.OTHER)
        self.assertNotEqual(p.returncode, 0)
        p = self.gw.gatewayctl("client", "rm", cid, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertOAuthError(self.fetch_token(cid, secret, source=new_address()), 401, "invalid_client")


class ClientTokenExpiry(ClientsMixin, RemoteBase):
    """ClientTokenExpiry: the tokens POST /token hands out end on time."""

    @classmethod
    def listen_config(cls):
        return {**super().listen_config(), "ClientTokenExpiry": 2}

    def test_token_expires(self):
        c = self.create_client()
        r = self.fetch_token(c["clientId"], c["clientSecret"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["expires_in"], 2)
        t = r.json["access_token"]
        self.assertEqual(self.net("GET", "/v1/jobs", token=t).status, 200)
        src = new_address()

        def refused():
            r = self.net("GET", "/v1/jobs", token=t, source=src)
            return r.status == 401 and r
        r = procs.wait_for(refused, timeout=10, what="the client's token to expire")
        self.assertNetError(r, 401, "Unauthenticated")
        self.assertIn("expired", r.json["error"]["message"])
        # a new one is there for the asking
        r = self.fetch_token(c["clientId"], c["clientSecret"])
        self.assertEqual(self.net("GET", "/v1/jobs", token=r.json["access_token"]).status, 200)
