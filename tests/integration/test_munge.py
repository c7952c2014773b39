"""munge identities on the TCP listener (issue 11 §2 "munge", §3 shifterimg login): Shifter's
`authentication` header with a credential made by the real `munge` CLI as the test users, decoded
by gatewayd against real munged instances with private keys and sockets:

  main     the "Authentication" munged (key K)
  sibling  a second munged with key K (platform "sibling"): munged's replay caches are per
           daemon, so a credential used on one is fresh to the other; gatewayd's own cache is not
  foreign  a munged with another key: its credentials are forgeries here
  down     a munged the test stops and starts again (platform "down")
  hung     a socket that accepts and never answers (platform "hung")

Requests follow shifterimg's wire rules (docs/shifter-api.md): a fresh credential per request,
POST pulls with `Content-type: application/json` and an empty body without ACLs. The private
registry is a real docker-registry behind htpasswd; `shifterimg login` credentials travel in the
credential's payload {"authorized_locations": {LOCATION|"default": "user:password"}}.

Every test that makes authentications fail uses a source address of its own (20 failures within a
minute block an address)."""
import concurrent.futures
import http.client
import itertools
import json
import os
import pwd
import time
import unittest
import urllib.parse

from harness import images, munge, openapi, users
from harness.procs import Processes, TempDir, source_dir
from harness.registry import Registry, free_port
from harness.stack import StackTestCase

SYSTEM = "mycluster"
DOC = openapi.load(os.path.join(source_dir(), "docs", "openapi-shifter.yaml"))
IN_FLIGHT = {"MISSING", "INIT", "PENDING", "PULLING", "EXAMINATION", "CONVERSION", "TRANSFER"}
SECRET = "s3cr:et-%d" % os.getpid()      # a password with a ':' (Shifter's worker would mangle it)

_addresses = (f"127.0.{a}.{b}" for a, b in itertools.product(range(151, 200), range(2, 250)))


def escape(s):
    return urllib.parse.quote(s, safe="-._~")


class Answer:
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


@unittest.skipUnless(munge.available(), "munge is not installed (scripts/install-deps)")
class Munge(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.mprocs = Processes()
        cls.tmp = TempDir(prefix="gatewayd-munge-")
        d = cls.tmp.path
        try:
            cls.main = munge.Munged(cls.mprocs, os.path.join(d, "main")).start()
            cls.sibling = munge.Munged(cls.mprocs, os.path.join(d, "sibling"))
            os.makedirs(cls.sibling.dir, mode=0o755)
            with open(cls.main.key, "rb") as src:
                fd = os.open(cls.sibling.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, src.read())
                os.close(fd)
            cls.sibling.start()
            cls.foreign = munge.Munged(cls.mprocs, os.path.join(d, "foreign")).start()
            cls.down = munge.Munged(cls.mprocs, os.path.join(d, "down"))
            os.makedirs(cls.down.dir, mode=0o755)
            with open(cls.main.key, "rb") as src:
                fd = os.open(cls.down.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, src.read())
                os.close(fd)
            cls.down.start()
            cls.hung = munge.HungMunged(os.path.join(d, "hung.sock"))

            cls.registry = Registry(cls.mprocs, os.path.join(d, "reg")).start()
            cls.private = Registry(cls.mprocs, os.path.join(d, "private"), auth=("htpasswd", {"alice": SECRET}))
            os.makedirs(cls.private.tmpdir)
            cls.private.start()
            cls.busybox_digest, _ = images.push_image(cls.registry, "test/busybox", "latest", images.busybox_image())
            for repo in ("acl", "expire"):
                images.push_image(cls.registry, f"test/{repo}", "1", images.Image(
                    [(images.Layer().busybox().file(f"etc/{repo}", f"{repo}\n"), "gzip")]))
            cls.private_digest, _ = images.push_image(cls.private, "team/app", "1", images.Image(
                [(images.Layer().busybox().file("etc/secret-app", "private\n"), "gzip")]))

            cls.port = free_port()
            loc = {"remotetype": "dockerv2", "authentication": "http", "insecure": True}
            local = {"accesstype": "local"}
            cls.config = {
                "Listen": {"tcp": f"127.0.0.1:{cls.port}"},
                "Authentication": {"munge": {"socket": cls.main.socket}},
                "DefaultImageLocation": cls.registry.host,
                "Locations": {cls.registry.host: loc, cls.private.host: dict(loc)},
                "DefaultPlatform": SYSTEM,
                "Platforms": {
                    SYSTEM: {**local, "admins": [users.OTHER]},
                    "sibling": {**local, "mungeSocketPath": cls.sibling.socket},
                    "down": {**local, "mungeSocketPath": cls.down.socket},
                    "hung": {**local, "mungeSocketPath": cls.hung.path},
                },
            }
            super().setUpClass()
        except BaseException:
            cls._cleanup_components()
            raise

    @classmethod
    def _cleanup_components(cls):
        if getattr(cls, "hung", None):
            cls.hung.close()
        cls.mprocs.stop_all()
        cls.tmp.cleanup()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._cleanup_components()

    # -- the client -------------------------------------------------------------------------------

    def request(self, method, path, cred=None, body=b"", source="127.0.0.1", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, source_address=(source, 0), timeout=30)
        h = {"Accept": "*/*", **(headers or {})}
        if cred is not None:
            h["authentication"] = cred
        if method == "POST":
            h["Content-type"] = "application/json"
        try:
            conn.request(method, path, body=body if method == "POST" else None, headers=h)
            r = conn.getresponse()
            return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace"))
        finally:
            conn.close()

    def api(self, mode, system=SYSTEM, tag=None, user=users.USER, body=b"", payload=b"", cred=None, **kw):
        """One shifterimg request with a fresh credential of USER (munged of the platform)."""
        path = f"/api/{mode}/{system}/" + (f"docker/{escape(tag)}/" if tag is not None else "")
        if cred is None:
            cred = self.main.encode(user, payload)
        return self.request("POST" if mode == "pull" else "GET", path, cred, body, **kw)

    def pull_until_done(self, tag, user=users.USER, body=b"", payload=b""):
        deadline = time.monotonic() + 120
        while True:
            r = self.api("pull", tag=tag, user=user, body=body, payload=payload)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers["content-type"], "application/json")
            if r.json["status"] not in IN_FLIGHT:
                return r.json
            self.assertLess(time.monotonic(), deadline, r)
            time.sleep(0.2)     # shifterimg polls every 0.5 s; there is no event to await

    def assertDocumented(self, r, template="/api/list/{system}", method="get"):
        """The answer's status and body are those docs/openapi-shifter.yaml gives."""
        v = openapi.Validator(DOC)
        self.assertEqual(v.check(v.response_schema(template, method, str(r.status)), r.json), [], r)

    def assertUnauthenticated(self, r, words):
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json["error"]["code"], "Unauthenticated", r)
        self.assertIn(words, r.json["error"]["message"])
        self.assertDocumented(r)

    def assertServing(self):
        self.assertEqual(self.gw.http("GET", "/v1/status").status, 200)
        r = self.api("list")
        self.assertEqual(r.status, 200, r)

    # -- tests ------------------------------------------------------------------------------------

    def test_pull_lookup_list_as_the_credentials_user(self):
        tag = f"{self.registry.host}/test/busybox:latest"
        rec = self.pull_until_done(tag)
        self.assertEqual(rec["status"], "READY", rec)
        self.assertEqual(rec["id"], self.busybox_digest.split(":")[1])
        self.assertIsInstance(rec["last_pull"], float)

        r = self.api("lookup", tag=tag, user=users.OTHER)
        self.assertEqual((r.status, r.json["id"]), (200, rec["id"]), r)
        r = self.api("list")
        self.assertEqual(r.status, 200, r)
        self.assertIn(rec["id"], [x["id"] for x in r.json["list"]])
        # the native API too: the credential's user is the caller
        r = self.request("GET", "/v1/status", self.main.encode(users.USER))
        self.assertEqual(r.status, 200, r)
        # no credential: anonymous, and /api/ is not among the AnonymousRoutes
        self.assertUnauthenticated(self.request("GET", f"/api/list/{SYSTEM}/"), "Authentication required")

    def test_private_image_acl_for_munge_users(self):
        tag = f"{self.registry.host}/test/acl:1"
        admin_uid = users.uid_of(users.ADMIN)
        user = pwd.getpwnam(users.USER)
        rec = self.pull_until_done(tag, body=json.dumps({"allowed_uids": str(admin_uid)}).encode())
        self.assertEqual(rec["status"], "READY", rec)
        # the puller is the credential's uid and gid (Shifter's _make_acl adds them)
        self.assertEqual(sorted(rec["userACL"]), sorted([user.pw_uid, admin_uid]))
        self.assertEqual(rec["groupACL"], [user.pw_gid])
        for who in (users.USER, users.ADMIN):
            r = self.api("lookup", tag=tag, user=who)
            self.assertEqual((r.status, r.json.get("id")), (200, rec["id"]), (who, r))
        r = self.api("lookup", tag=tag, user=users.OTHER)
        self.assertEqual(r.status, 404, r)
        r = self.api("list", user=users.OTHER)
        self.assertNotIn(rec["id"], [x["id"] for x in r.json["list"]])

    def test_platform_admins_expire(self):
        tag = f"{self.registry.host}/test/expire:1"
        rec = self.pull_until_done(tag)
        self.assertEqual(rec["status"], "READY", rec)
        # not in the platform's admins (nor in Admins): refused as Shifter refuses
        for who in (users.USER, users.ADMIN):
            r = self.api("expire", tag=tag, user=who)
            self.assertEqual((r.status, r.json), (200, {"status": False}), (who, r))
            r = self.api("autoexpire", user=who)
            self.assertEqual((r.status, r.json), (200, {"status": False}), (who, r))
        self.assertEqual(self.api("lookup", tag=tag).status, 200)
        # gwtest-other is in Platforms.mycluster.admins: by the credential's user name
        r = self.api("expire", tag=tag, user=users.OTHER)
        self.assertEqual((r.status, r.json), (200, {"status": True}), r)
        self.assertEqual(self.gw.http("GET", f"/v1/images/{rec['id']}").json["status"], "EXPIRED")
        r = self.api("autoexpire", user=users.OTHER)
        self.assertEqual((r.status, r.json), (200, {"status": []}), r)

    def test_forged_credentials(self):
        source = next(_addresses)
        cases = [
            ("garbage", "garbage", "Malformed munge credential"),
            ("no trailing colon", "MUNGE:AAAA", "Malformed munge credential"),
            ("non-canonical base64", "MUNGE:AB==:", "Malformed munge credential"),
            ("well-formed nonsense", "MUNGE:" + "A" * 100 + ":", "Invalid munge credential"),
            ("another key", self.foreign.encode(users.USER), "Invalid munge credential"),
        ]
        for what, cred, words in cases:
            with self.subTest(what):
                self.assertUnauthenticated(self.api("list", cred=cred, source=source), words)
        self.assertServing()

    def test_expired_credential(self):
        source = next(_addresses)
        cred = self.main.encode(users.USER, ttl=1)
        # The sibling munged (same key) tells when it has expired: it calls it a replay while it
        # is live (it decoded it once), expired after. main never saw it.
        deadline = time.monotonic() + 30
        while self.sibling.status(cred) != 15:
            self.assertLess(time.monotonic(), deadline, "the credential never expired")
            time.sleep(0.1)
        self.assertUnauthenticated(self.api("list", cred=cred, source=source), "Expired munge credential")
        self.assertServing()

    def test_replayed_credential(self):
        source = next(_addresses)
        cred = self.main.encode(users.USER)
        self.assertEqual(self.api("list", cred=cred, source=source).status, 200)
        self.assertUnauthenticated(self.api("list", cred=cred, source=source), "Replayed munge credential")
        # Used once through main: the sibling munged (same key, its own replay cache) would take
        # it, gatewayd's cache does not.
        self.assertUnauthenticated(self.api("list", system="sibling", cred=cred, source=source),
                                   "Replayed munge credential")
        # one munged decoded already (here unmunge): munged's own verdict is a replay too
        cred = self.main.encode(users.USER)
        self.assertEqual(self.main.status(cred), 0)
        self.assertUnauthenticated(self.api("list", cred=cred, source=source), "Replayed munge credential")
        # the sibling serves its platform's routes with its own fresh credentials
        r = self.api("list", system="sibling", cred=self.sibling.encode(users.USER), source=source)
        self.assertEqual(r.status, 200, r)

    def test_munged_down_and_hung(self):
        source = next(_addresses)
        try:
            self.down.stop()
            cred = self.main.encode(users.USER)
            r = self.api("list", system="down", cred=cred, source=source)
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json["error"]["code"], "Unavailable")
            self.assertIn("munged is not available", r.json["error"]["message"])
            self.assertNotIn(self.down.dir, r.body)     # the socket's path is for the log only
            self.assertDocumented(r)
            self.assertServing()
        finally:
            self.down.start()
        # back: the same credential is no replay (munged never decoded it)
        self.assertEqual(self.api("list", system="down", cred=cred, source=source).status, 200)

        # A munged that never answers (a platform's): each request is 503 after the decode
        # timeout. It gets at most 2 of the 4 decode threads, so while 6 requests wait for it the
        # loop serves, munge credentials for the other munged included.
        creds = [self.main.encode(users.USER) for _ in range(6)]
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(creds)) as pool:
            hung = [pool.submit(self.api, "list", system="hung", cred=c, source=source) for c in creds]
            self.assertServing()
            self.assertServing()
            self.assertFalse(any(f.done() for f in hung), "the hung munged answered before others were served")
            answers = [f.result(30) for f in hung]
        for r in answers:
            self.assertEqual(r.status, 503, r)
            self.assertIn("did not answer", r.json["error"]["message"])
            self.assertDocumented(r)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertServing()

    def test_login_credentials_for_a_private_registry(self):
        tag = f"{self.private.host}/team/app:1"
        # without credentials: the registry refuses, Shifter's error shape
        r = self.api("pull", tag=tag)
        self.assertEqual(r.status, 404, r)
        self.assertIn("authentication", r.json["error"])
        # a wrong password
        wrong = json.dumps({"authorized_locations": {self.private.host: "alice:nope"}}).encode()
        r = self.api("pull", tag=tag, payload=wrong)
        self.assertEqual(r.status, 404, r)
        # not "user:password"
        bad = json.dumps({"authorized_locations": {"default": "alice"}}).encode()
        r = self.api("pull", tag=tag, payload=bad)
        self.assertEqual(r.status, 404, r)
        self.assertIn("Unusable login credentials", r.json["error"])

        # shifterimg login for this location: the pull works, as the credential's user
        login = json.dumps({"authorized_locations": {self.private.host: f"alice:{SECRET}"}}).encode()
        rec = self.pull_until_done(tag, payload=login)
        self.assertEqual(rec["status"], "READY", rec)
        self.assertEqual(rec["id"], self.private_digest.split(":")[1])
        # pulled with credentials: private to the puller
        self.assertEqual(rec["userACL"], [users.uid_of(users.USER)])
        self.assertEqual(self.api("lookup", tag=tag, user=users.OTHER).status, 404)
        self.assertEqual(self.api("lookup", tag=tag).status, 200)
        # a "default" login serves every location without one of its own
        login = json.dumps({"authorized_locations": {"default": f"alice:{SECRET}"}}).encode()
        rec = self.pull_until_done(tag, payload=login)
        self.assertEqual(rec["status"], "READY", rec)
        # the secret is in no log line and on no command line
        self.assertNotIn(SECRET, self.gw.stderr_text())
        self.assertEqual([p for p in os.listdir("/proc") if p.isdigit() and self._cmdline_has(p, SECRET)], [])

    @staticmethod
    def _cmdline_has(pid, s):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return s.encode() in f.read()
        except OSError:
            return False


if __name__ == "__main__":
    unittest.main()
