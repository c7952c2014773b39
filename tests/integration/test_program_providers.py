"""Providers' shared programs (docs/programs.md "Providers", config ProgramProviders): a provider's
admins upload, replace and remove its programs, its users see and run them, everyone else gets 404;
a run is a job of the caller (its uid inside, its job list), the program's layer is shared. The
provider "acme" has the admins "@gatewayd-admin" (gwtest-admin is a member) and the user
gwtest-user; gwtest-other belongs to no provider. Programs run on a busybox image from a real
docker-registry; native API, /api/v1/ (multipart uploads over the unix socket), D-Bus and
gatewayctl; configurations with bad providers are refused at start."""
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse

from harness import images, procs, users
from harness.bus import PrivateBus
from harness.gatewayd import Gatewayd, GatewaydTestCase
from harness.registry import free_port
from test_programs import ProgramsStackBase, tar_of
from test_serverless_api import multipart

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN")

# Who runs it and what it reads: the entrypoint is the uploader's only (0700) and the data file
# too (0600) in the artifact; the provider's users run and read them all the same.
RUN_SH = """#!/bin/sh
echo "PlanQK:Job:Result: {\\"uid\\": $(id -u), \\"data\\": \\"$(cat /program/data.txt)\\", \\"args\\": $ENV_JOB_ARGUMENTS}"
"""


def artifact(data="shared", compress=True):
    return tar_of([{"name": "run.sh", "data": RUN_SH, "mode": 0o700},
                   {"name": "data.txt", "data": data, "mode": 0o600}], compress=compress)


class ProgramProvidersTest(ProgramsStackBase):
    tmp_prefix = "gatewayd-providers-"

    @classmethod
    def push_images(cls):
        images.push_image(cls.registry, "bbox", "1.0", images.Image([(images.Layer().busybox(
            applets=("sh", "id", "cat", "echo", "true")), "gzip")]))

    @classmethod
    def program_config(cls, host):
        cls.tcp_port = free_port()
        return {
            "Listen": {"tcp": f"127.0.0.1:{cls.tcp_port}"},
            "ProgramImage": f"{host}/bbox:1.0",
            "ProgramArtifactMax": "1M",
            "ProgramProviders": {
                "acme": {"admins": ["@" + users.ADMIN_GROUP], "users": [users.USER]},
                "frozen": {"users": [users.USER, users.OTHER]},
            },
        }

    # ---- helpers ----

    def upload(self, title, art=None, provider="acme", as_user=users.ADMIN, status=201, **query):
        q = {"title": title, "entrypoint": "run.sh", **query}
        if provider:
            q["provider"] = provider
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode(q), art or artifact(), as_user=as_user,
                         content_type="application/gzip")
        self.assertEqual(r.status, status, r.body)
        if status == 201:
            self.addCleanup(self.remove_quietly, title, provider, as_user)
        return r

    def path(self, title, provider="acme", suffix=""):
        return f"/v1/programs/{title}{suffix}" + (f"?provider={provider}" if provider else "")

    def remove_quietly(self, title, provider, as_user):
        if self.gw.alive():
            self.gw.http("DELETE", self.path(title, provider), as_user=as_user)

    def run_program(self, title, provider="acme", as_user=users.USER, status=201, arguments=None):
        r = self.gw.http("POST", self.path(title, provider, "/run"), {"arguments": arguments or {}}, as_user=as_user)
        self.assertEqual(r.status, status, r.body)
        return r.json

    def finished(self, job_id, as_user=users.USER):
        def check():
            return self.gw.http("GET", f"/v1/jobs/{job_id}", as_user=as_user).json["status"] in TERMINAL
        procs.wait_for(check, timeout=60, what=f"job {job_id} to end")
        job = self.gw.http("GET", f"/v1/jobs/{job_id}", as_user=as_user).json
        log = self.gw.http("GET", f"/v1/jobs/{job_id}/log", as_user=as_user).body
        self.assertEqual(job["status"], "SUCCEEDED", log)
        return job, self.gw.http("GET", f"/v1/jobs/{job_id}/result", as_user=as_user).json

    def titles(self, as_user, query=""):
        r = self.gw.http("GET", "/v1/programs" + query, as_user=as_user)
        self.assertEqual(r.status, 200, r.body)
        return [(p["provider"], p["title"]) for p in r.json["programs"]]

    # ---- native API ----

    def test_admin_uploads_users_run_as_themselves(self):
        p = self.upload("hello", arguments=json.dumps({"n": 1})).json
        self.assertEqual((p["provider"], p["title"], p["uid"]), ("acme", "hello", users.uid_of(users.ADMIN)))
        self.assertEqual(self.gw.http("POST", "/v1/programs?title=x", b"", as_user=users.ADMIN).status, 400)
        # its users (and admins) see it; a non-member does not
        for u in (users.USER, users.ADMIN):
            self.assertIn(("acme", "hello"), self.titles(u))
            self.assertEqual(self.titles(u, "?provider=acme"), [("acme", "hello")])
            self.assertEqual(self.gw.http("GET", self.path("hello"), as_user=u).json, p)
        self.assertNotIn(("acme", "hello"), self.titles(users.OTHER))
        self.assertEqual(self.titles(users.OTHER, "?provider=acme"), [])
        self.assertError(self.gw.http("GET", self.path("hello"), as_user=users.OTHER), 404, "NotFound", "hello")
        self.assertError(self.gw.http("POST", self.path("hello", suffix="/run"), {}, as_user=users.OTHER), 404, "NotFound")
        # not the caller's own program: without the provider it is not found
        self.assertEqual(self.gw.http("GET", "/v1/programs/hello", as_user=users.ADMIN).status, 404)

        # a run is the caller's job: its uid inside, its job list; files readable though the
        # artifact gave them to the uploader only
        job = self.run_program("hello", arguments={"n": 2})
        self.assertEqual((job["program"], job["programProvider"], job["uid"]), ("hello", "acme", users.uid_of(users.USER)))
        _, result = self.finished(job["id"])
        self.assertEqual(result, {"uid": users.uid_of(users.USER), "data": "shared", "args": {"n": 2}})
        mine = [j["id"] for j in self.gw.http("GET", "/v1/jobs", as_user=users.USER).json["jobs"]]
        self.assertIn(job["id"], mine)
        self.assertNotIn(job["id"], [j["id"] for j in self.gw.http("GET", "/v1/jobs", as_user=users.ADMIN).json["jobs"]])
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{job['id']}", as_user=users.OTHER).status, 404)
        job = self.run_program("hello", as_user=users.ADMIN)
        self.assertEqual(self.finished(job["id"], as_user=users.ADMIN)[1]["uid"], users.uid_of(users.ADMIN))

    def test_only_admins_manage(self):
        self.upload("managed")
        # users of the provider: 403; anyone else: 404, as if nothing were there
        for u, status, code in ((users.USER, 403, "AccessDenied"), (users.OTHER, 404, "NotFound")):
            with self.subTest(user=u):
                self.assertError(self.upload("managed", as_user=u, status=status, replace="true"), status, code)
                self.assertError(self.upload("new-one", as_user=u, status=status), status, code)
                self.assertError(self.gw.http("DELETE", self.path("managed"), as_user=u), status, code)
        self.assertError(self.upload("x", provider="nobody", status=404), 404, "NotFound", "nobody")
        self.assertError(self.upload("x", provider="a/b", status=404), 404, "NotFound")
        # a provider without admins: nobody uploads (its users are not admins)
        self.assertError(self.upload("x", provider="frozen", status=404), 404, "NotFound", "frozen")
        self.assertError(self.upload("x", provider="frozen", as_user=users.USER, status=403), 403, "AccessDenied")
        self.assertEqual(self.titles(users.USER, "?provider=acme"), [("acme", "managed")])
        # an admin replaces it (same id), and removes it
        before = self.gw.http("GET", self.path("managed"), as_user=users.USER).json
        self.assertError(self.upload("managed", status=409), 409, "AlreadyExists", "acme")
        after = self.upload("managed", artifact("v2"), replace="true").json
        self.assertEqual(after["createdAt"], before["createdAt"])
        self.assertEqual(self.finished(self.run_program("managed")["id"])[1]["data"], "v2")
        self.assertEqual(self.gw.http("DELETE", self.path("managed"), as_user=users.ADMIN).status, 204)
        self.assertEqual(self.gw.http("GET", self.path("managed"), as_user=users.USER).status, 404)

    def test_same_title_own_and_provider(self):
        """Titles are unique per user for own programs and per provider for shared ones."""
        self.upload("dup", artifact("provider's"))
        self.upload("dup", artifact("admin's own"), provider=None)
        self.upload("dup", artifact("user's own"), provider=None, as_user=users.USER)
        self.assertEqual(self.titles(users.ADMIN), [(None, "dup"), ("acme", "dup")])
        self.assertEqual(self.titles(users.USER), [(None, "dup"), ("acme", "dup")])
        for provider, as_user, data in (("acme", users.USER, "provider's"), (None, users.USER, "user's own"),
                                        (None, users.ADMIN, "admin's own"), ("acme", users.ADMIN, "provider's")):
            with self.subTest(provider=provider, user=as_user):
                job = self.run_program("dup", provider=provider, as_user=as_user)
                self.assertEqual(self.finished(job["id"], as_user=as_user)[1]["data"], data)
        # removing one leaves the others
        self.assertEqual(self.gw.http("DELETE", "/v1/programs/dup", as_user=users.ADMIN).status, 204)
        self.assertEqual(self.titles(users.ADMIN), [("acme", "dup")])
        self.assertEqual(self.titles(users.USER), [(None, "dup"), ("acme", "dup")])

    def test_rows_survive_a_restart(self):
        self.upload("kept")
        self.upload("kept", provider=None, as_user=users.USER)
        job = self.run_program("kept")
        self.finished(job["id"])
        self.gw.restart()
        self.assertEqual(self.titles(users.USER), [(None, "kept"), ("acme", "kept")])
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{job['id']}", as_user=users.USER).json["programProvider"], "acme")
        self.assertError(self.upload("kept", status=409), 409, "AlreadyExists")

    # ---- the serverless gateway's API ----

    def api(self, method, path, body=None, as_user=users.USER, content_type="application/json"):
        return self.gw.http(method, "/api/v1/" + path, body, as_user=as_user, content_type=content_type)

    def api_upload(self, fields, as_user=users.ADMIN):
        form = {"entrypoint": "run.sh", "arguments": "{}", "dependencies": "[]", "env_vars": "{}", **fields}
        body, ct = multipart(form, {"artifact": ("artifact.tar", artifact(compress=False))})
        return self.api("POST", "programs/upload/", body, as_user=as_user, content_type=ct)

    def assertMessage(self, r, status, words=""):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(list(r.json), ["message"], r.body)
        self.assertIn(words, r.json["message"])

    def test_serverless_api(self):
        r = self.api_upload({"title": "fn", "provider": "acme"})
        self.assertEqual(r.status, 200, r.body)
        self.addCleanup(self.remove_quietly, "fn", "acme", users.ADMIN)
        self.assertEqual((r.json["provider"], r.json["title"]), ("acme", "fn"))
        # the gateway's "provider/title" convention; both at once, or two slashes, are refused
        r = self.api_upload({"title": "acme/fn2"})
        self.assertEqual((r.status, r.json["provider"], r.json["title"]), (200, "acme", "fn2"), r.body)
        self.addCleanup(self.remove_quietly, "fn2", "acme", users.ADMIN)
        self.assertMessage(self.api_upload({"title": "acme/fn3", "provider": "acme"}), 400, "Provider defined in title")
        self.assertMessage(self.api_upload({"title": "a/b/c"}), 400, "one slash")
        self.assertMessage(self.api_upload({"title": "/fn"}), 400, "with both")
        self.assertMessage(self.api("POST", "programs/run/", {"title": "acme/"}), 400, "with both")
        self.assertMessage(self.api("POST", "programs/run/", {"title": "ac me/fn"}), 404, "Provider [ac me] was not found.")
        self.assertMessage(self.api_upload({"title": "fn", "provider": "acme"}, as_user=users.USER), 403, "admins")
        self.assertMessage(self.api_upload({"title": "fn", "provider": "acme"}, as_user=users.OTHER), 404,
                           "Provider [acme] was not found.")
        self.assertMessage(self.api_upload({"title": "fn", "provider": "nobody"}), 404, "Provider [nobody] was not found.")
        self.assertEqual(self.api_upload({"title": "mine"}, as_user=users.USER).status, 200)
        self.addCleanup(self.remove_quietly, "mine", None, users.USER)

        def listed(query="", as_user=users.USER):
            r = self.api("GET", "programs/" + query, as_user=as_user)
            self.assertEqual(r.status, 200, r.body)
            return sorted((p["provider"] or "", p["title"]) for p in r.json)
        self.assertEqual(listed(), [("", "mine"), ("acme", "fn"), ("acme", "fn2")])
        self.assertEqual(listed("?filter=serverless"), [("", "mine")])
        self.assertEqual(listed("?filter=catalog"), [("acme", "fn"), ("acme", "fn2")])
        self.assertEqual(listed("?provider=acme"), [("acme", "fn"), ("acme", "fn2")])
        self.assertEqual(listed("?filter=catalog", as_user=users.OTHER), [])
        self.assertEqual(self.api("GET", "programs/get_by_title/fn?provider=acme").json["provider"], "acme")
        self.assertMessage(self.api("GET", "programs/get_by_title/fn"), 404, "fn")
        self.assertMessage(self.api("GET", "programs/get_by_title/fn?provider=acme", as_user=users.OTHER), 404, "fn")

        run = {"title": "fn", "provider": "acme", "arguments": json.dumps({"k": 1}), "config": None}
        self.assertMessage(self.api("POST", "programs/run/", run, as_user=users.OTHER), 404, "acme/fn")
        r = self.api("POST", "programs/run/", run)
        self.assertEqual(r.status, 200, r.body)
        r2 = self.api("POST", "programs/run/", {"title": "acme/fn2"})
        self.assertEqual(r2.status, 200, r2.body)
        mine_job = self.api("POST", "programs/run/", {"title": "mine"}).json["id"]
        for j in (r.json["id"], r2.json["id"], mine_job):
            self.finished(j)
        self.assertEqual(json.loads(self.api("GET", f"jobs/{r.json['id']}/result/").json["result"]),
                         {"uid": users.uid_of(users.USER), "data": "shared", "args": {"k": 1}})

        ours = {r.json["id"], r2.json["id"], mine_job}

        def jobs(query):
            """This test's jobs in the listing (other tests' stay listed after their programs)."""
            r = self.api("GET", "jobs/" + query + "&limit=1000")
            self.assertEqual(r.status, 200, r.body)
            return sorted((j["program"]["provider"] or "", j["program"]["title"]) for j in r.json["results"]
                          if j["id"] in ours)
        self.assertEqual(jobs("?provider=acme"), [("acme", "fn"), ("acme", "fn2")])
        self.assertEqual(jobs("?filter=catalog"), [("acme", "fn"), ("acme", "fn2")])
        self.assertEqual(jobs("?filter=serverless"), [("", "mine")])
        self.assertEqual(jobs("?provider=acme&function=fn2"), [("acme", "fn2")])
        self.assertEqual(jobs("?provider=nobody"), [])
        self.assertFalse(ours & {j["id"] for j in self.api("GET", "jobs/?limit=1000", as_user=users.ADMIN).json["results"]})
        self.assertEqual(self.api("GET", f"jobs/{r.json['id']}/").json["program"],
                         {"id": r.json["program"], "title": "fn", "provider": "acme"})

    def test_network_callers(self):
        """Over TCP the provider's lists match the account a credential maps to, as Admins does."""
        self.upload("net")
        tokens = {u: self.gw.http("POST", "/v1/tokens", {"scope": ["read", "submit"]}, as_user=u).json["token"]
                  for u in (users.USER, users.OTHER, users.ADMIN)}

        def call(method, path, user, body=None):
            conn = http.client.HTTPConnection("127.0.0.1", self.tcp_port, timeout=30)
            try:
                h = {"Authorization": f"Bearer {tokens[user]}"}
                if body is not None:
                    h["Content-Type"] = "application/json"
                conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=h)
                r = conn.getresponse()
                return r.status, json.loads(r.read() or b"null")
            finally:
                conn.close()
        status, body = call("GET", "/api/v1/programs/?filter=catalog", users.USER)
        self.assertEqual((status, [(p["provider"], p["title"]) for p in body]), (200, [("acme", "net")]))
        self.assertEqual(call("GET", "/api/v1/programs/?filter=catalog", users.OTHER), (200, []))
        status, body = call("POST", "/api/v1/programs/run/", users.USER, {"title": "net", "provider": "acme"})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.finished(body["id"])[1]["uid"], users.uid_of(users.USER))
        self.assertEqual(call("POST", "/api/v1/programs/run/", users.OTHER, {"title": "acme/net"})[0], 404)
        self.assertEqual(call("DELETE", "/v1/programs/net?provider=acme", users.USER)[0], 403)
        self.assertEqual(call("DELETE", "/v1/programs/net?provider=acme", users.ADMIN)[0], 204)

    # ---- D-Bus and gatewayctl ----

    def test_dbus(self):
        self.upload("bus")
        p, data = self.gw.call("ListPrograms", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(("acme", "bus"), [(x["provider"], x["title"]) for x in json.loads(data[0])])
        p, data = self.gw.call("ListPrograms", as_user=users.OTHER)
        self.assertEqual(json.loads(data[0]), [])
        p, data = self.gw.call("RunProviderProgram", "ssss", "acme", "bus", '{"n": 3}', "", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        job_id = re.sub(r"_([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), data[0].rsplit("/", 1)[1])
        self.assertEqual(self.finished(job_id)[1], {"uid": users.uid_of(users.USER), "data": "shared", "args": {"n": 3}})
        for method, args, user, name in (
                ("RunProviderProgram", ("acme", "bus", "", ""), users.OTHER, "NotFound"),
                ("RunProviderProgram", ("nobody", "bus", "", ""), users.USER, "NotFound"),
                ("RunProgram", ("bus", "", ""), users.ADMIN, "NotFound"),   # not the admin's own
                ("RemoveProviderProgram", ("acme", "bus"), users.USER, "AccessDenied"),
                ("RemoveProviderProgram", ("acme", "bus"), users.OTHER, "NotFound"),
                ("RemoveProgram", ("bus",), users.ADMIN, "NotFound")):
            with self.subTest(method=method, user=user):
                p, err = self.gw.gdbus_call(method, *args, as_user=user)
                self.assertEqual(err, "org.gatewayd.Gateway1.Error." + name, p.stderr)
        p, _ = self.gw.call("RemoveProviderProgram", "ss", "acme", "bus", as_user=users.ADMIN)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.gw.http("GET", self.path("bus"), as_user=users.USER).status, 404)

    def test_gatewayctl(self):
        d = tempfile.mkdtemp(prefix="gatewayd-provider-src-")
        self.addCleanup(shutil.rmtree, d, True)
        src = os.path.join(d, "ctlshared")
        os.makedirs(src)
        with open(os.path.join(src, "run.sh"), "w") as f:
            f.write(RUN_SH)
        with open(os.path.join(src, "data.txt"), "w") as f:
            f.write("ctl")
        os.chmod(d, 0o755)
        os.chmod(src, 0o755)
        os.chmod(os.path.join(src, "run.sh"), 0o755)
        os.chmod(os.path.join(src, "data.txt"), 0o644)

        r = self.gw.gatewayctl("program", "upload", src, "--entrypoint=run.sh", "--provider=acme", as_user=users.USER)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("admins", r.stderr)
        r = self.gw.gatewayctl("program", "upload", src, "--entrypoint=run.sh", "--provider=acme", as_user=users.ADMIN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(self.remove_quietly, "ctlshared", "acme", users.ADMIN)
        r = self.gw.gatewayctl("program", "list", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^PROVIDER\s+TITLE\s+ENTRYPOINT")
        self.assertRegex(r.stdout, r"(?m)^acme\s+ctlshared\s+run\.sh")
        r = self.gw.gatewayctl("program", "list", "--provider=acme", "--json=short", as_user=users.USER)
        self.assertEqual([(p["provider"], p["title"]) for p in json.loads(r.stdout)], [("acme", "ctlshared")])
        r = self.gw.gatewayctl("program", "run", "ctlshared", "--provider=acme", "--arg=n=5", "--wait", "--json=short",
                               as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"uid": users.uid_of(users.USER), "data": "ctl", "args": {"n": 5}})
        r = self.gw.gatewayctl("program", "run", "ctlshared", as_user=users.USER)   # not the user's own
        self.assertNotEqual(r.returncode, 0)
        r = self.gw.gatewayctl("program", "run", "ctlshared", "--provider=acme", as_user=users.OTHER)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("No program 'ctlshared'", r.stderr)
        r = self.gw.gatewayctl("program", "rm", "ctlshared", "--provider=acme", as_user=users.USER)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("HTTP 403", r.stderr)
        r = self.gw.gatewayctl("program", "rm", "ctlshared", "--provider=acme", as_user=users.ADMIN)
        self.assertEqual(r.returncode, 0, r.stderr)


class ProviderMembershipAtStart(ProgramsStackBase):
    """A run is checked when submitted and again when its job's turn comes: with JobsPerUser 1,
    gwtest-other's second run waits behind the first; taken out of the provider's group
    meanwhile, the waiting job fails ACCESS_DENIED instead of running."""
    tmp_prefix = "gatewayd-providers-"
    group = f"gwt-guests-{os.getpid()}"   # its own: the plain and ASan suites run side by side

    @classmethod
    def push_images(cls):
        images.push_image(cls.registry, "bbox", "1.0", images.Image([(images.Layer().busybox(
            applets=("sh", "id", "cat", "echo", "true", "sleep")), "gzip")]))

    @classmethod
    def program_config(cls, host):
        users.ensure_group(cls.group)
        return {"ProgramImage": f"{host}/bbox:1.0", "JobsPerUser": 1,
                "ProgramProviders": {"guests": {"admins": ["@" + users.ADMIN_GROUP], "users": ["@" + cls.group]}}}

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            users.remove_group(cls.group)

    def test_member_taken_out_while_the_job_waits(self):
        users.ensure_user(users.OTHER, groups=(self.group,))
        self.addCleanup(users.remove_from_group, users.OTHER, self.group)
        waiter = tar_of([{"name": "run.sh", "data": "#!/bin/sh\nexec sleep 1000\n", "mode": 0o755}])
        self.post_program(waiter, 201, users.ADMIN, title="waiter", entrypoint="run.sh", provider="guests")
        self.post_program(artifact(), 201, users.ADMIN, title="quick", entrypoint="run.sh", provider="guests")

        def run(title):
            r = self.gw.http("POST", f"/v1/programs/{title}/run?provider=guests", {"arguments": {}}, as_user=users.OTHER)
            self.assertEqual(r.status, 201, r.body)
            return r.json["id"]

        def status(job_id):
            return self.gw.http("GET", f"/v1/jobs/{job_id}", as_user=users.OTHER).json

        first = run("waiter")
        procs.wait_for(lambda: status(first)["status"] == "RUNNING", timeout=60, what="the first run running")
        second = run("quick")
        self.assertEqual(status(second)["status"], "QUEUED")
        users.remove_from_group(users.OTHER, self.group)
        # a new run is refused at once, as for anyone outside the provider
        self.assertEqual(self.gw.http("POST", "/v1/programs/quick/run?provider=guests", {"arguments": {}},
                                      as_user=users.OTHER).status, 404)
        # the waiting one fails when its turn comes
        self.assertEqual(self.gw.http("PUT", f"/v1/jobs/{first}/cancel", as_user=users.OTHER).status, 200)
        procs.wait_for(lambda: status(second)["status"] in TERMINAL, timeout=60, what="the second run's end")
        job = status(second)
        self.assertEqual((job["status"], job["error"]["code"]), ("FAILED", "ACCESS_DENIED"), job)
        self.assertIn("no longer an admin or user of provider guests", job["error"]["message"])
        self.assertIsNone(job["startedAt"], "nothing of it ran")


class ProviderConfigTest(GatewaydTestCase):
    def test_bad_providers_refused_at_start(self):
        with PrivateBus() as bus:
            gw = Gatewayd(bus=bus)
            try:
                cases = [
                    ({"ProgramProviders": []}, "ProgramProviders: expected an object"),
                    ({"ProgramProviders": {"ac me": {}}}, "ProgramProviders.ac me: invalid provider name"),
                    ({"ProgramProviders": {"acme": {"admins": "alice"}}}, "ProgramProviders.acme.admins"),
                    ({"ProgramProviders": {"acme": {"users": [""]}}}, "ProgramProviders.acme.users: entry 0"),
                ]
                os.makedirs(gw.runtime_dir, exist_ok=True)
                for config, words in cases:
                    with self.subTest(config=config):
                        gw.write_config(config)
                        try:
                            p = subprocess.run(gw.argv(), capture_output=True, text=True, timeout=10, env=bus.env())
                        except subprocess.TimeoutExpired:
                            self.fail("gatewayd started with an invalid configuration")
                        self.assertNotEqual(p.returncode, 0)
                        self.assertIn(words, p.stderr)
            finally:
                gw.stop()
