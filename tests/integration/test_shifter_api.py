"""Shifter's image gateway API under /api/ (docs/shifter-api.md, docs/openapi-shifter.yaml),
spoken by a client of our own that follows shifterimg's wire rules (CI cannot fetch Shifter):
GET/POST to /api/<mode>/<system>/<type>/<tag>/ with the type and tag percent-escaped, an
`authentication` header, `Content-type: application/json` and an empty body (Content-Length 0)
on pulls without ACLs, and a body that counts only when Content-Type is exactly
`application/json` and its length equals Content-Length. Real docker-registry, polkitd and test
users; the caller is the unix socket peer."""
import json
import os
import pwd
import re
import subprocess
import time
import unittest
import urllib.parse

from harness import images, openapi, users
from harness.procs import Processes, TempDir, source_dir
from harness.registry import Proxy, Registry
from harness.stack import StackTestCase

DOC = openapi.load(os.path.join(source_dir(), "docs", "openapi-shifter.yaml"))
ROUTES_C = os.path.join(source_dir(), "src", "gatewayd", "http-api.c")
SYSTEM = "mycluster"
RECORD_KEYS = {"id", "system", "itype", "tag", "status", "userACL", "groupACL", "ENV", "ENTRY", "WORKDIR",
               "LABELS", "last_pull", "status_message"}
# shifterimg polls while the status is one of these (shifterimg.c).
IN_FLIGHT = {"MISSING", "INIT", "PENDING", "PULLING", "EXAMINATION", "CONVERSION", "TRANSFER"}

# One HTTP/1.1 exchange on the unix socket, as shifterimg's libcurl sends it; prints what the
# client would make of the answer. Runs as the test user (runuser), so it is plain source.
CLIENT = r'''
import json, socket, sys
sock, method, path = sys.argv[1:4]
body = sys.stdin.buffer.read()
head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\nauthentication: MUNGE:placeholder:\r\n"
if method == "POST":
    head += f"Content-type: application/json\r\nContent-Length: {len(body)}\r\n"
s = socket.socket(socket.AF_UNIX)
s.settimeout(120)
s.connect(sock)
s.sendall(head.encode() + b"\r\n" + body)
data = b""
while b"\r\n\r\n" not in data:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
raw_head, _, rest = data.partition(b"\r\n\r\n")
lines = raw_head.decode("latin-1").split("\r\n")
status = int(lines[0].split()[1])
headers = {}
for l in lines[1:]:
    k, _, v = l.partition(":")
    headers[k.strip().lower()] = v.strip()
length = headers.get("content-length")
if length is not None:
    while len(rest) < int(length):
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
# shifterimg.c: the body counts only with Content-Type exactly application/json and exactly
# Content-Length bytes (no chunked encoding).
usable = (headers.get("content-type") == "application/json" and length is not None
          and "transfer-encoding" not in headers and len(rest) == int(length))
print(json.dumps({"status": status, "headers": headers, "body": rest.decode("utf-8", "replace"), "usable": usable}))
'''


class Answer:
    def __init__(self, d):
        self.status = d["status"]
        self.headers = d["headers"]
        self.body = d["body"]
        self.usable = d["usable"]
        self.json = json.loads(self.body) if self.body else None


def escape(s):
    """curl_easy_escape: everything but unreserved characters."""
    return urllib.parse.quote(s, safe="-._~")


class ShifterStack(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.reg_procs = Processes()
        cls.reg_tmp = TempDir()
        try:
            cls.registry = Registry(cls.reg_procs, os.path.join(cls.reg_tmp.path, "reg")).start()
            host = cls.registry.host
            cls.busybox_digest, _ = images.push_image(
                cls.registry, "test/busybox", "latest",
                images.busybox_image(env=["PATH=/bin", "GREETING=hello world"], workdir="/srv"))
            for repo in ("private", "expire", "again"):
                images.push_image(cls.registry, f"test/{repo}", "1", images.Image(
                    [(images.Layer().busybox().file(f"etc/{repo}", f"{repo}\n"), "gzip")]))
            # A slow path to the registry, so that a pull is seen in flight.
            slow = images.Layer().busybox().file("data/random.bin", os.urandom(768 * 1024))
            images.push_image(cls.registry, "test/slow", "1", images.Image([(slow, "none")]))
            cls.proxy = Proxy(cls.registry.port, rate=256 * 1024)
            loc = {"remotetype": "dockerv2", "authentication": "http", "insecure": True}
            cls.config = {
                "DefaultImageLocation": host,
                "Locations": {host: loc, cls.proxy.host: dict(loc)},
                "DefaultPlatform": SYSTEM,
                "Platforms": {
                    # gwtest-other administers mycluster's images through Shifter's "admins".
                    SYSTEM: {"accesstype": "local", "admins": [users.OTHER]},
                    "second": {"accesstype": "local", "admins": ["nosuchuser"]},
                },
            }
            super().setUpClass()
        except BaseException:
            cls.reg_procs.stop_all()
            cls.reg_tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.proxy.stop()
            cls.reg_procs.stop_all()
            cls.reg_tmp.cleanup()

    def setUp(self):
        super().setUp()
        self.v = openapi.Validator(DOC)

    # -- the client ------------------------------------------------------------------------------

    def request(self, method, path, body=b"", as_user=users.USER):
        p = subprocess.run(users.as_user_argv(as_user, ["python3", "-c", CLIENT, self.gw.socket_path, method, path]),
                           input=body, capture_output=True, timeout=150)
        self.assertEqual(p.returncode, 0, p.stderr)
        return Answer(json.loads(p.stdout))

    def api(self, mode, system=SYSTEM, tag=None, body=b"", as_user=users.USER, method=None, itype="docker"):
        path = f"/api/{mode}/{system}/" + (f"{escape(itype)}/{escape(tag)}/" if tag is not None else "")
        method = method or ("POST" if mode == "pull" else "GET")
        return self.request(method, path, body, as_user)

    def check(self, r, template, method, status):
        """The answer has STATUS, is usable by shifterimg and matches the documented schema."""
        self.assertEqual(r.status, status, r.body)
        self.assertTrue(r.usable, f"shifterimg would ignore this body: {r.headers} {r.body!r}")
        self.assertEqual(r.headers["content-type"], "application/json")
        schema = self.v.response_schema(template, method, status)
        self.assertEqual(self.v.check(schema, r.json), [], r.body)
        return r.json

    def check_record(self, rec, raw=None):
        self.assertEqual(set(rec), RECORD_KEYS, rec)
        for k in ("id", "system", "itype", "status", "status_message"):
            self.assertIsInstance(rec[k], str, k)
        self.assertRegex(rec["id"], r"^[0-9a-f]{64}$")
        self.assertEqual(rec["itype"], "docker")
        if rec["status"] != "READY" and rec["ENV"] == "MISSING":  # Shifter's fill-in for "no value yet"
            self.assertEqual(rec["ENTRY"], "MISSING")
        else:
            self.assertIsInstance(rec["ENV"], list)
        for k in ("tag", "ENV"):
            if isinstance(rec[k], list):
                self.assertTrue(all(isinstance(x, str) for x in rec[k]), rec[k])
        self.assertIsInstance(rec["tag"], list)
        for k in ("userACL", "groupACL"):
            self.assertTrue(all(isinstance(x, int) for x in rec[k]), rec[k])
        # shifterimg takes last_pull only as a JSON double (with "." or an exponent), never 0.
        self.assertIsInstance(rec["last_pull"], float)
        self.assertGreater(rec["last_pull"], time.time() - 3600)
        if raw is not None:
            self.assertRegex(raw, r'"last_pull":\s*-?\d+(\.\d+|[eE][-+]?\d+)')

    def pull_until_done(self, tag, body=b"", as_user=users.USER, system=SYSTEM):
        """What `shifterimg pull` does: POST, then re-POST (same body) until the status is
        terminal. Returns the last record."""
        deadline = time.monotonic() + 120
        while True:
            r = self.api("pull", system, tag, body, as_user)
            rec = self.check(r, "/api/pull/{system}/{type}/{tag}", "post", 200)
            self.check_record(rec, r.body)
            if rec["status"] not in IN_FLIGHT:
                return rec
            self.assertLess(time.monotonic(), deadline, rec)
            time.sleep(0.2)  # shifterimg's own polling interval is 0.5 s; nothing to await here

    def lookup_until_ready(self, tag, as_user=users.USER):
        deadline = time.monotonic() + 120
        while True:
            r = self.api("lookup", tag=tag, as_user=as_user)
            if r.status == 200:
                rec = self.check(r, "/api/lookup/{system}/{type}/{tag}", "get", 200)
                self.check_record(rec, r.body)
                return rec
            self.check(r, "/api/lookup/{system}/{type}/{tag}", "get", 404)
            self.assertLess(time.monotonic(), deadline, r.body)
            time.sleep(0.2)

    def assertShifterError(self, r, template, method):
        err = self.check(r, template, method, 404)
        self.assertEqual(set(err), {"status", "error", "message"}, err)
        self.assertEqual(err["status"], 404)
        self.assertIsInstance(err["error"], str)
        self.assertTrue(err["message"].startswith("Not Found: http://localhost/api/"), err)
        return err

    def assertServing(self):
        r = self.gw.http("GET", "/v1/status")
        self.assertEqual(r.status, 200, r.body)


class ShifterApi(ShifterStack):
    def test_pull_lookup_list(self):
        tag = f"{self.registry.host}/test/busybox:latest"
        rec = self.pull_until_done(tag)
        self.assertEqual(rec["status"], "READY", rec)
        self.assertEqual(rec["id"], self.busybox_digest.split(":")[1])
        self.assertEqual(rec["system"], SYSTEM)
        self.assertIn(tag, rec["tag"])
        self.assertEqual((rec["userACL"], rec["groupACL"]), ([], []))
        self.assertEqual(rec["ENV"], ["PATH=/bin", "GREETING=hello world"])
        self.assertEqual(rec["ENTRY"], ["/bin/sh"])
        self.assertEqual(rec["WORKDIR"], "/srv")

        # lookup: by the escaped tag (%3A, %2F), and without a tag (":latest" is Shifter's default)
        got = self.lookup_until_ready(tag)
        self.assertEqual(got["id"], rec["id"])
        self.assertEqual(self.lookup_until_ready(f"{self.registry.host}/test/busybox")["id"], rec["id"])
        # another user sees a public image
        self.assertEqual(self.lookup_until_ready(tag, as_user=users.OTHER)["id"], rec["id"])

        # images: the list shows it with Shifter's fields
        r = self.api("list")
        listing = self.check(r, "/api/list/{system}", "get", 200)
        mine = [x for x in listing["list"] if x["id"] == rec["id"]]
        self.assertEqual(len(mine), 1, listing)
        self.check_record(mine[0])
        self.assertEqual(mine[0]["status"], "READY")
        self.assertIn(tag, mine[0]["tag"])
        # another platform has none of it
        r = self.api("list", system="second")
        self.assertEqual(self.check(r, "/api/list/{system}", "get", 200), {"list": []})

    def test_lookup_unknown_tag_is_404(self):
        for tag in (f"{self.registry.host}/test/nothing:1", "nothing"):
            with self.subTest(tag=tag):
                err = self.assertShifterError(self.api("lookup", tag=tag), "/api/lookup/{system}/{type}/{tag}", "get")
                self.assertIn("not found", err["error"])
        # a registry that has no such image: the pull fails with Shifter's error shape too
        r = self.api("pull", tag=f"{self.registry.host}/test/nothing:1")
        self.assertShifterError(r, "/api/pull/{system}/{type}/{tag}", "post")
        self.assertServing()

    def test_private_pull_visible_to_listed_users_only(self):
        tag = f"{self.registry.host}/test/private:1"
        admin_uid = pwd.getpwnam(users.ADMIN).pw_uid
        user = pwd.getpwnam(users.USER)
        # shifterimg --user=0,ADMIN: ids <= 0 are dropped by the client; we send what it sends
        body = json.dumps({"allowed_uids": str(admin_uid)}).encode()
        rec = self.pull_until_done(tag, body)
        self.assertEqual(rec["status"], "READY", rec)
        # Shifter's _make_acl: the puller's uid and gid are added
        self.assertEqual(sorted(rec["userACL"]), sorted([user.pw_uid, admin_uid]))
        self.assertEqual(rec["groupACL"], [user.pw_gid])

        # the listed user and the puller see it
        for who in (users.USER, users.ADMIN):
            with self.subTest(user=who):
                self.assertEqual(self.lookup_until_ready(tag, as_user=who)["id"], rec["id"])
                listing = self.check(self.api("list", as_user=who), "/api/list/{system}", "get", 200)
                self.assertIn(rec["id"], [x["id"] for x in listing["list"]])
        # anyone else: 404, and not in the list
        r = self.api("lookup", tag=tag, as_user=users.OTHER)
        self.assertShifterError(r, "/api/lookup/{system}/{type}/{tag}", "get")
        listing = self.check(self.api("list", as_user=users.OTHER), "/api/list/{system}", "get", 200)
        self.assertNotIn(rec["id"], [x["id"] for x in listing["list"]])
        # the native API agrees
        self.assertEqual(self.gw.http("GET", f"/v1/images/{rec['id']}", as_user=users.OTHER).status, 404)

    def test_acl_on_a_public_image_keeps_it_public(self):
        # Others use a public image already: a later pull with ACLs does not take it from them.
        tag = f"{self.registry.host}/test/again:1"
        rec = self.pull_until_done(tag, as_user=users.OTHER)
        self.assertEqual((rec["status"], rec["userACL"]), ("READY", []), rec)
        body = json.dumps({"allowed_uids": str(pwd.getpwnam(users.ADMIN).pw_uid)}).encode()
        rec = self.pull_until_done(tag, body)
        self.assertEqual((rec["status"], rec["userACL"], rec["groupACL"]), ("READY", [], []), rec)
        self.assertEqual(self.lookup_until_ready(tag, as_user=users.OTHER)["id"], rec["id"])

    def test_expire_by_admins_only(self):
        tag = f"{self.registry.host}/test/expire:1"
        template = "/api/expire/{system}/{type}/{tag}"
        rec = self.pull_until_done(tag)
        self.assertEqual(rec["status"], "READY", rec)

        # an ordinary user: refused as Shifter refuses ({"status": false}), nothing changes
        for method in ("GET", "POST"):
            r = self.api("expire", tag=tag, method=method)
            self.assertEqual(self.check(r, template, method.lower(), 200), {"status": False})
        self.assertEqual(self.lookup_until_ready(tag)["status"], "READY")
        # nor on a platform whose admins do not list them; autoexpire likewise
        r = self.api("expire", system="second", tag=tag, as_user=users.OTHER)
        self.assertEqual(self.check(r, template, "get", 200), {"status": False})
        r = self.api("autoexpire")
        self.assertEqual(self.check(r, "/api/autoexpire/{system}", "get", 200), {"status": False})

        # in the platform's "admins": expired (GET, as shifterimg sends it)
        r = self.api("expire", tag=tag, as_user=users.OTHER)
        self.assertEqual(self.check(r, template, "get", 200), {"status": True})
        self.assertEqual(self.gw.http("GET", f"/v1/images/{rec['id']}").json["status"], "EXPIRED")
        self.assertShifterError(self.api("lookup", tag=tag), "/api/lookup/{system}/{type}/{tag}", "get")
        listing = self.check(self.api("list"), "/api/list/{system}", "get", 200)
        self.assertNotIn(rec["id"], [x["id"] for x in listing["list"]])
        # already expired: null, as for an unknown image
        r = self.api("expire", tag=tag, as_user=users.OTHER)
        self.assertEqual(self.check(r, template, "get", 200), {"status": None})

        # pulled again, then expired by a polkit admin (gatewayd-admin group)
        again = self.pull_until_done(tag)
        self.assertEqual(again["status"], "READY", again)
        r = self.api("expire", tag=tag, as_user=users.ADMIN, method="POST")
        self.assertEqual(self.check(r, template, "post", 200), {"status": True})
        self.assertEqual(self.gw.http("GET", f"/v1/images/{rec['id']}").json["status"], "EXPIRED")
        r = self.api("expire", tag=f"{self.registry.host}/test/nothing:1", as_user=users.ADMIN)
        self.assertEqual(self.check(r, template, "get", 200), {"status": None})

        # autoexpire for admins: nothing is past ImageExpirationTimeout (not set: never)
        for who in (users.OTHER, users.ADMIN):
            r = self.api("autoexpire", as_user=who)
            self.assertEqual(self.check(r, "/api/autoexpire/{system}", "get", 200), {"status": []})

    def test_queue_shows_pulls_in_flight(self):
        tag = f"{self.proxy.host}/test/slow:1"
        admin_uid = pwd.getpwnam(users.ADMIN).pw_uid
        body = json.dumps({"allowed_uids": [admin_uid]}).encode()
        r = self.api("pull", tag=tag, body=body)
        rec = self.check(r, "/api/pull/{system}/{type}/{tag}", "post", 200)
        self.assertIn(rec["status"], IN_FLIGHT, rec)
        # re-POSTs while it runs answer the same pull's record
        r = self.api("pull", tag=tag, body=body)
        self.assertEqual(self.check(r, "/api/pull/{system}/{type}/{tag}", "post", 200)["id"], rec["id"])

        q = self.check(self.api("queue"), "/api/queue/{system}", "get", 200)
        entries = [x for x in q["list"] if x["image"] == tag]
        self.assertEqual(len(entries), 1, q)
        self.assertIn(entries[0]["status"], IN_FLIGHT)
        # a private pull is not shown to others, nor on another platform
        q = self.check(self.api("queue", as_user=users.OTHER), "/api/queue/{system}", "get", 200)
        self.assertNotIn(tag, [x["image"] for x in q["list"]])
        q = self.check(self.api("queue", system="second"), "/api/queue/{system}", "get", 200)
        self.assertNotIn(tag, [x["image"] for x in q["list"]])

        self.assertEqual(self.pull_until_done(tag, body)["status"], "READY")
        q = self.check(self.api("queue"), "/api/queue/{system}", "get", 200)
        self.assertNotIn(tag, [x["image"] for x in q["list"]])

    def test_unknown_system(self):
        tag = f"{self.registry.host}/test/busybox:latest"
        for mode, template, method in (("list", "/api/list/{system}", "get"),
                                       ("queue", "/api/queue/{system}", "get"),
                                       ("autoexpire", "/api/autoexpire/{system}", "get"),
                                       ("lookup", "/api/lookup/{system}/{type}/{tag}", "get"),
                                       ("pull", "/api/pull/{system}/{type}/{tag}", "post"),
                                       ("expire", "/api/expire/{system}/{type}/{tag}", "get")):
            with self.subTest(mode=mode):
                t = tag if "{tag}" in template else None
                err = self.assertShifterError(self.api(mode, system="nosuchsystem", tag=t, as_user=users.ADMIN),
                                              template, method)
                self.assertIn("nosuchsystem", err["error"])
        self.assertServing()

    def test_bad_input_keeps_serving(self):
        good = f"{self.registry.host}/test/busybox:latest"
        pull = "/api/pull/{system}/{type}/{tag}"
        cases = [
            ("lookup", "custom", good, b""),
            ("pull", "custom", good, b""),
            ("pull", "id", good, b""),
            ("lookup", "docker", "bad$tag", b""),
            ("pull", "docker", "bad tag", b""),
            ("pull", "docker", "a" * 600, b""),
            ("pull", "docker", good, b'{"allowed_uids": '),
            ("pull", "docker", good, b"[1, 2]"),
            ("pull", "docker", good, b'{"allowed_uids": "12,abc"}'),
            ("pull", "docker", good, b'{"allowed_uids": "-5"}'),
            # white space strtoull() skips before a sign: not an id (was uid 1, and 1000)
            ("pull", "docker", good, b'{"allowed_uids": "\\t-18446744073709551615"}'),
            ("pull", "docker", good, b'{"allowed_gids": "\\n1000"}'),
            ("pull", "docker", good, b'{"allowed_gids": {"x": 1}}'),
            ("pull", "docker", good, b'"\xff\xfe"'),
        ]
        for mode, itype, tag, body in cases:
            with self.subTest(mode=mode, itype=itype, tag=tag[:40], body=body):
                r = self.api(mode, tag=tag, itype=itype, body=body)
                template = pull if mode == "pull" else "/api/lookup/{system}/{type}/{tag}"
                self.assertShifterError(r, template, "post" if mode == "pull" else "get")
        # a path without its tag is no route (gatewayd's own 404), the daemon keeps serving
        r = self.request("GET", f"/api/lookup/{SYSTEM}/docker/")
        self.assertEqual(r.status, 404)
        self.assertServing()

    def test_no_collision_with_laborchestrator_routes(self):
        # /api/{docker_images,labs,lab_instances}/ are LabOrchestrator's (http-laborch.c,
        # test_laborch_api): bare JSON arrays, not Shifter's answers nor its not_found.
        for path in ("/api/docker_images/", "/api/labs/", "/api/lab_instances/"):
            with self.subTest(path=path):
                r = self.request("GET", path)
                self.assertEqual(r.status, 200, r.body)
                self.assertIsInstance(r.json, list)


# Routes under /api/ that are not Shifter's: LabOrchestrator's collections
# (docs/openapi-laborch.yaml) and the serverless gateway's /api/v1/ (docs/openapi-serverless.yaml,
# docs/openapi-programs.yaml).
LABORCH = re.compile(r"^/api/(docker_images|lab_docker_images|labs|lab_instances|v1)(/|$)")


def parse_route_table():
    with open(ROUTES_C) as f:
        text = f.read()
    return [(m, p) for m, p in re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"(/api/[^"]*)"\s*,\s*\w+\s*(?:,\s*[\w |]+\s*)?\}', text)
            if not LABORCH.search(p)]


class DocumentMatchesRouteTable(unittest.TestCase):
    """The /api/ routes of http-api.c and docs/openapi-shifter.yaml describe the same API."""

    @staticmethod
    def pattern(template):
        return re.sub(r"/\{tag\}", "/**", re.sub(r"\{(system|type)\}", "*", template)).rstrip("/")

    def test_routes_and_document_agree(self):
        routes = {(m.lower(), p) for m, p in parse_route_table()}
        self.assertGreaterEqual(len(routes), 7, "parsed the route table")
        documented = {(m, self.pattern(t)) for t, item in DOC["paths"].items() for m in item if m != "parameters"}
        self.assertEqual(routes, documented)

    def test_document_is_consistent(self):
        v = openapi.Validator(DOC)
        self.assertEqual(DOC["openapi"][:2], "3.")
        for path, item in DOC["paths"].items():
            for method, op in item.items():
                if method == "parameters":
                    continue
                self.assertIn("200", op["responses"], f"{method} {path}")
                for status in op["responses"]:
                    v.response_schema(path, method, status)
        self.assertEqual(set(DOC["components"]["schemas"]["Record"]["required"]), RECORD_KEYS)
