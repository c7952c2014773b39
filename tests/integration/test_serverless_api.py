"""The serverless gateway's API under /api/v1/ (issue 14, docs/programs.md, docs/openapi-serverless.yaml):
what the qiskit-serverless client sends, built by hand as python-requests builds it (a
multipart/form-data upload with the artifact as a file part, JSON for run and stop), over TCP with
gatewayd tokens (http.client) and over the unix socket with peer credentials. Covers upload → run →
poll → result → logs → stop, the paginated job list and its filters, the statuses, another user's
programs and jobs (404), bad uploads (no artifact, a huge field, a malformed boundary, a hostile
tar) with {"message"} errors, and the ActiveJobsPerUser limit as the gateway's 429."""
import glob
import http.client
import json
import os
import re
import uuid

from harness import openapi, procs, users
from harness.registry import Registry, free_port
from harness.stack import StackTestCase
from harness import images
from test_programs import MAIN_PY, SLEEP_SH, python_layer, tar_of

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
DOC = openapi.load(os.path.join(procs.source_dir(), "docs", "openapi-serverless.yaml"))

# Prints its arguments back as the result, and something to the log.
ECHO_PY = """import json, os
print("echo says hi")
print("PlanQK:Job:Result: " + json.dumps({"args": json.loads(os.environ["ENV_JOB_ARGUMENTS"])}))
"""


def multipart(fields, files, boundary=None):
    """A body as python-requests encodes data= and files= (urllib3's encode_multipart_formdata)."""
    boundary = boundary or uuid.uuid4().hex
    out = b""
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").encode()
        out += (value.encode() if isinstance(value, str) else value) + b"\r\n"
    for name, (filename, data) in files.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{filename}\"\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def two_artifacts(files):
    b = uuid.uuid4().hex
    one = multipart({"title": "x", "entrypoint": "main.py"}, files, boundary=b)[0]
    return one[:-len(f"--{b}--\r\n")] + multipart({}, files, boundary=b)[0], f"multipart/form-data; boundary={b}"


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body.decode(errors="replace")
        try:
            self.json = json.loads(body) if body.strip() else None
        except ValueError:
            self.json = None


def checked(r, method, path):
    """Every answer must be a status the document lists for the route, with a body of its schema."""
    v = openapi.Validator(DOC)
    bare = path.split("?", 1)[0]
    for t in DOC["paths"]:
        if not re.match("^" + re.sub(r"\{[^}]+\}", "[^/]+", t.rstrip("/")) + "/?$", bare.rstrip("/") or "/"):
            continue
        if method.lower() not in DOC["paths"][t]:
            continue
        op = DOC["paths"][t][method.lower()]
        assert str(r.status) in op["responses"], f"{method} {path}: undocumented status {r.status}: {r.body}"
        schema = v.response_schema(t, method, r.status)
        if schema is not None:
            problems = v.check(schema, r.json)
            assert not problems, f"{method} {path} → {r.status} {r.body[:500]}: {problems}"
        return r
    return r


class ServerlessApiTest(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.rprocs = procs.Processes()
        cls.rtmp = procs.TempDir(prefix="gatewayd-serverless-")
        cls.registry = Registry(cls.rprocs, cls.rtmp.path).start()
        images.push_image(cls.registry, "pybox", "1.0", images.Image([(python_layer(), "gzip")]))
        host = cls.registry.host
        cls.tcp_port = free_port()
        cls.config = {
            "Listen": {"tcp": f"127.0.0.1:{cls.tcp_port}"},
            "DefaultImageLocation": host,
            "Locations": {host: {"remotetype": "dockerv2", "authentication": "none", "insecure": True}},
            "WorkerPath": os.path.join(procs.build_dir(), "src", "worker", "gateway-worker"),
            "ProgramImage": f"{host}/pybox:1.0",
            "ProgramArtifactMax": "1M",
            "ImageSizeMax": "48M",
            "ImageFilesMax": 2000,
            "JobsPerUser": 1,
            "ActiveJobsPerUser": 3,
        }
        try:
            super().setUpClass()
            cls.tokens = {u: cls.gw.http("POST", "/v1/tokens", {"scope": ["read", "submit"]}, as_user=u).json["token"]
                          for u in (users.USER, users.OTHER)}
        except BaseException:
            cls._stop_stack(check=False) if hasattr(cls, "gw") else None
            cls.rprocs.stop_all()
            cls.rtmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.rprocs.stop_all()
            cls.rtmp.cleanup()

    # ---- a client over TCP ----

    def api(self, method, path, body=None, user=users.USER, content_type=None, token=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.tcp_port, timeout=60)
        h = {"Authorization": f"Bearer {token or self.tokens[user]}"}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if content_type:
            h["Content-Type"] = content_type
        h.update(headers or {})
        try:
            conn.request(method, "/api/v1/" + path, body=body, headers=h)
            r = conn.getresponse()
            resp = Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()
        return checked(resp, method, "/api/v1/" + path)

    def assertMessage(self, r, status, words=""):
        self.assertEqual(r.status, status, r.body)
        self.assertIsInstance(r.json, dict, r.body)
        self.assertEqual(list(r.json), ["message"], r.body)
        self.assertIn(words, r.json["message"])

    def upload(self, title, files, user=users.USER, status=200, **fields):
        form = {"title": title, "entrypoint": "main.py", "arguments": "{}", "dependencies": "[]", "env_vars": "{}"}
        form.update(fields)
        body, ct = multipart({k: v for k, v in form.items() if v is not None}, files)
        r = self.api("POST", "programs/upload/", body, user=user, content_type=ct)
        self.assertEqual(r.status, status, r.body)
        if status == 200:
            self.addCleanup(self.remove_quietly, title, user)
        return r

    def remove_quietly(self, title, user):
        if self.gw.alive():
            self.gw.http("DELETE", f"/v1/programs/{title}", as_user=user)

    def run_program(self, title, arguments=None, user=users.USER, status=200):
        r = self.api("POST", "programs/run/", {"title": title, "provider": None, "compute_profile": None,
                                               "arguments": json.dumps(arguments or {}),
                                               "config": {"workers": None, "min_workers": 1, "max_workers": 5,
                                                          "auto_scaling": False}}, user=user)
        self.assertEqual(r.status, status, r.body)
        return r

    def wait_status(self, job_id, statuses=TERMINAL, user=users.USER, timeout=60):
        last = {}

        def check():
            last["job"] = self.api("GET", f"jobs/{job_id}/?with_result=false", user=user).json
            return last["job"]["status"] in statuses
        procs.wait_for(check, timeout=timeout, what=f"job {job_id} to reach {statuses}")
        return last["job"]

    def artifact(self, script=ECHO_PY):
        return {"artifact": ("artifact.tar", tar_of([{"name": "main.py", "data": script}], compress=False))}

    # ---- tests ----

    def test_upload_run_poll_result_logs(self):
        r = self.upload("echo", self.artifact(), env_vars='{"GREETING": "hi"}', dependencies='["qiskit==1.2.0", {"qiskit-aer": "0.15.1"}]',
                        description="echoes", version="0.1.0")
        p = r.json
        self.assertEqual(p["title"], "echo")
        self.assertEqual(p["entrypoint"], "main.py")
        self.assertIsNone(p["provider"])
        self.assertEqual(json.loads(p["env_vars"]), {"GREETING": "hi"})
        # (checked against the base image at upload, which has these: test_programs' image)
        self.assertEqual(json.loads(p["dependencies"]), ["qiskit==1.2.0", "qiskit-aer==0.15.1"])
        self.assertEqual((p["description"], p["version"]), ("echoes", "0.1.0"))
        # the client's verify and its function lookups
        self.assertEqual([x["title"] for x in self.api("GET", "programs/").json], ["echo"])
        self.assertEqual([x["title"] for x in self.api("GET", "programs").json], ["echo"])
        self.assertEqual(self.api("GET", "programs/get_by_title/echo").json, self.api("GET", "programs/").json[0])
        self.assertEqual(self.api("GET", "programs/?filter=catalog").json, [])
        self.assertMessage(self.api("GET", "programs/get_by_title/echo?provider=ibm"), 404, "echo")

        job = self.run_program("echo", {"n": 2}).json
        self.assertEqual(job["status"], "QUEUED")
        self.assertEqual(job["program"], p["id"])
        self.assertEqual(json.loads(job["arguments"]), {"n": 2})
        self.assertIsNone(job["result"])
        done = self.wait_status(job["id"])
        self.assertEqual(done["status"], "SUCCEEDED", self.api("GET", f"jobs/{job['id']}/logs/").body)
        self.assertEqual(done["program"], {"id": p["id"], "title": "echo", "provider": None})
        self.assertNotIn("result", done)
        r = self.api("GET", f"jobs/{job['id']}/result/")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.json["result"]), {"args": {"n": 2}})
        self.assertEqual(json.loads(self.api("GET", f"jobs/{job['id']}/").json["result"]), {"args": {"n": 2}})
        self.assertIn("echo says hi", self.api("GET", f"jobs/{job['id']}/logs/").json["logs"])
        # the same job on the native API
        native = self.gw.http("GET", f"/v1/jobs/{job['id']}", as_user=users.USER).json
        self.assertEqual((native["id"], native["program"], native["status"]), (job["id"], "echo", "SUCCEEDED"))
        self.assertMessage(self.api("POST", f"jobs/{job['id']}/stop/", {"service": None}), 200, "already not running")

    def test_stop_statuses_and_limits(self):
        self.upload("sleeper", {"artifact": ("a.tar", tar_of([{"name": "s.sh", "data": SLEEP_SH, "mode": 0o755}],
                                                              compress=False))}, entrypoint="s.sh")
        jobs = [self.run_program("sleeper").json["id"] for _ in range(3)]
        self.wait_status(jobs[0], ("RUNNING",))
        # no result and no log while queued; JobsPerUser 1 keeps the others QUEUED
        self.assertEqual(self.api("GET", f"jobs/{jobs[1]}/").json["status"], "QUEUED")
        self.assertEqual(self.api("GET", f"jobs/{jobs[1]}/result/").status, 204)
        self.assertEqual(self.api("GET", f"jobs/{jobs[1]}/logs/").status, 204)
        # ActiveJobsPerUser 3: the gateway's 429
        self.assertMessage(self.run_program("sleeper", status=429), 429,
                           "Active job limit reached. The maximum allowed is 3.")
        for j in jobs:
            self.assertMessage(self.api("POST", f"jobs/{j}/stop/", {"service": None}), 200, "Job has been stopped.")
        for j in jobs:
            self.assertEqual(self.wait_status(j)["status"], "STOPPED")
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jobs[0]}", as_user=users.USER).json["status"], "CANCELLED")
        self.assertEqual(self.api("GET", f"jobs/{jobs[0]}/result/").status, 204)
        lst = self.api("GET", "jobs/?status=STOPPED&function=sleeper").json
        self.assertEqual(sorted(x["id"] for x in lst["results"]), sorted(jobs))

    def test_pagination_and_filters(self):
        self.upload("pager", self.artifact())
        self.upload("other-fn", self.artifact())
        ids = [self.run_program("pager", {"i": i}).json["id"] for i in range(3)]
        for j in ids:
            self.wait_status(j)
        lone = self.run_program("other-fn").json["id"]
        self.wait_status(lone)

        r = self.api("GET", "jobs/?function=pager&limit=2").json
        self.assertEqual(r["count"], 3)
        self.assertEqual([x["id"] for x in r["results"]], ids[::-1][:2])  # newest first
        self.assertIsNone(r["previous"])
        self.assertRegex(r["next"], r"^http://127\.0\.0\.1:\d+/api/v1/jobs/\?limit=2&offset=2&function=pager$")
        page2 = self.api("GET", r["next"].split("/api/v1/", 1)[1]).json
        self.assertEqual([x["id"] for x in page2["results"]], ids[:1])
        self.assertIsNone(page2["next"])
        self.assertIsNotNone(page2["previous"])
        item = page2["results"][0]
        self.assertEqual(sorted(item), ["compute_profile", "created", "id", "program", "status", "sub_status"])
        self.assertEqual(item["program"]["title"], "pager")

        everything = self.api("GET", "jobs/?limit=100").json
        self.assertGreaterEqual(everything["count"], 4)
        self.assertIn(lone, [x["id"] for x in everything["results"]])
        self.assertEqual(self.api("GET", "jobs/?status=SUCCEEDED&function=other-fn").json["count"], 1)
        self.assertEqual(self.api("GET", "jobs/?status=RUNNING&function=other-fn").json["count"], 0)
        self.assertEqual(self.api("GET", "jobs/?filter=catalog").json["count"], 0)
        self.assertEqual(self.api("GET", "jobs/?filter=serverless&function=pager").json["count"], 3)
        self.assertEqual(self.api("GET", "jobs/?provider=ibm").json["count"], 0)
        self.assertEqual(self.api("GET", "jobs/?function=pager&created_after=2000-01-01T00:00:00Z").json["count"], 3)
        self.assertEqual(self.api("GET", "jobs/?function=pager&created_after=2999-01-01T00:00:00").json["count"], 0)
        self.assertMessage(self.api("GET", "jobs/?created_after=yesterday"), 400, "Datetime")
        self.assertMessage(self.api("GET", "jobs/?filter=everything"), 400, "valid choice")
        self.assertMessage(self.api("GET", "jobs/?limit=-1"), 400, "limit")
        # service jobs are not the serverless API's
        self.assertNotIn(None, [x["program"] for x in everything["results"]])

    def test_other_user_gets_404(self):
        self.upload("mine", self.artifact())
        job = self.run_program("mine").json["id"]
        self.assertMessage(self.api("GET", "programs/get_by_title/mine", user=users.OTHER), 404, "mine")
        self.assertEqual(self.api("GET", "programs/", user=users.OTHER).json, [])
        self.assertMessage(self.run_program("mine", user=users.OTHER, status=404), 404, "mine")
        for method, path in (("GET", f"jobs/{job}/"), ("GET", f"jobs/{job}/result/"), ("GET", f"jobs/{job}/logs/"),
                             ("POST", f"jobs/{job}/stop/")):
            with self.subTest(path=path):
                self.assertMessage(self.api(method, path, {} if method == "POST" else None, user=users.OTHER), 404,
                                   f"Job [{job}] was not found.")
        self.assertNotIn(job, [x["id"] for x in self.api("GET", "jobs/?limit=1000", user=users.OTHER).json["results"]])
        self.wait_status(job)

    def test_unix_socket_peer_credentials(self):
        body, ct = multipart({"title": "local", "entrypoint": "main.py"}, self.artifact())
        r = self.gw.http("POST", "/api/v1/programs/upload/", body, as_user=users.USER, content_type=ct)
        self.assertEqual(r.status, 200, r.body)
        self.addCleanup(self.remove_quietly, "local", users.USER)
        self.assertEqual(self.gw.http("GET", "/v1/programs/local", as_user=users.USER).json["uid"], users.uid_of(users.USER))
        r = self.gw.http("GET", "/api/v1/programs/get_by_title/local", as_user=users.OTHER)
        self.assertEqual(r.status, 404, r.body)
        self.assertEqual(list(r.json), ["message"])
        # the title is the caller's: uploading it again updates it, as in the gateway
        r = self.gw.http("POST", "/api/v1/programs/upload/", body, as_user=users.USER, content_type=ct)
        self.assertEqual(r.status, 200, r.body)

    def test_upload_again_replaces(self):
        """An upload of a title the caller has updates that program (entrypoint, arguments, env,
        artifact): a job that runs keeps the upload it started with, later runs (one queued
        behind it included: JobsPerUser 1) run the new one, and the earlier upload's squashfs
        goes once no job of the program is unfinished. Another user's upload of the same title
        is a program of their own."""
        old_py = ("import json, os, time\ntime.sleep(float(os.environ['WAIT']))\n"
                  "print('PlanQK:Job:Result: ' + json.dumps({'v': 1, 'own': open('/program/own.txt').read(),"
                  " 'args': json.loads(os.environ['ENV_JOB_ARGUMENTS']), 'new': os.environ.get('NEW')}))\n")
        new_py = old_py.replace("'v': 1", "'v': 2")
        squashfs = lambda: sorted(glob.glob(os.path.join(self.gw.state_dir, "programs", "*", "*.squashfs")))
        before = squashfs()
        r = self.upload("again", {"artifact": ("a.tar", tar_of([{"name": "main.py", "data": old_py},
                                                                 {"name": "own.txt", "data": "old"}], compress=False))},
                        arguments='{"a": 1}', env_vars='{"WAIT": "2"}')
        first = self.api("GET", "programs/get_by_title/again").json
        (old_layer,) = set(squashfs()) - set(before)
        a = self.run_program("again").json["id"]
        self.wait_status(a, ("RUNNING",))
        r = self.upload("again", {"artifact": ("b.tar", tar_of([{"name": "new.py", "data": new_py},
                                                                 {"name": "own.txt", "data": "new"}], compress=False))},
                        entrypoint="new.py", arguments='{"b": 2}', env_vars='{"WAIT": "0", "NEW": "yes"}')
        self.assertEqual((r.json["id"], r.json["title"], r.json["entrypoint"]), (first["id"], "again", "new.py"), r.body)
        self.assertEqual(self.api("GET", "programs/get_by_title/again").json["entrypoint"], "new.py")
        self.assertEqual([p["title"] for p in self.api("GET", "programs/").json].count("again"), 1)
        self.assertIn(old_layer, squashfs())   # its job runs
        b = self.run_program("again").json["id"]
        results = {}
        for job in (a, b):
            self.assertEqual(self.wait_status(job)["status"], "SUCCEEDED")
            results[job] = json.loads(self.api("GET", f"jobs/{job}/result/").json["result"])
        self.assertEqual(results[a], {"v": 1, "own": "old", "args": {"a": 1}, "new": None})
        self.assertEqual(results[b], {"v": 2, "own": "new", "args": {"b": 2}, "new": "yes"})
        procs.wait_for(lambda: old_layer not in squashfs(), timeout=10, what="the earlier upload's squashfs removed")
        self.assertEqual(len(set(squashfs()) - set(before)), 1, squashfs())
        # the same title for someone else: their own program
        r = self.upload("again", self.artifact(), user=users.OTHER)
        self.assertNotEqual(r.json["id"], first["id"])
        self.assertEqual(self.api("GET", "programs/get_by_title/again").json["entrypoint"], "new.py")

    def test_bad_uploads(self):
        art = self.artifact()
        outside = os.path.join(self.gw.state_dir, "escaped")
        uploads = os.path.join(self.gw.state_dir, "programs", ".uploads")
        cases = [
            ("no artifact", *multipart({"title": "x", "entrypoint": "main.py"}, {}), 400, "artifact"),
            ("two artifacts", *two_artifacts(art), 400, "two file parts"),
            ("huge field", *multipart({"title": "x", "entrypoint": "main.py", "description": "d" * 200000}, art),
             400, "too long"),
            ("repeated field", b"--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n"
             b"--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\ny\r\n--b--\r\n",
             "multipart/form-data; boundary=b", 400, "repeated"),
            ("truncated", multipart({"title": "x"}, art, boundary="tb")[0][:-10], "multipart/form-data; boundary=tb",
             400, "truncated"),
            ("no boundary", multipart({"title": "x"}, art)[0], "multipart/form-data", 400, "boundary"),
            ("bad boundary", multipart({"title": "x"}, art)[0], "multipart/form-data; boundary=\"a\"b", 400, "boundary"),
            ("wrong boundary", multipart({"title": "x"}, art, boundary="one")[0], "multipart/form-data; boundary=two",
             400, "boundary"),
            ("not multipart", b'{"title": "x"}', "application/json", 415, "multipart/form-data"),
            ("file not artifact", *multipart({"title": "x", "entrypoint": "main.py"},
                                             {"code": ("a.tar", art["artifact"][1])}), 400, "'artifact', not 'code'"),
            ("artifact not a file", *multipart({"title": "x", "entrypoint": "main.py", "artifact": "text"}, {}),
             400, "no 'artifact' part"),
            ("bad title", *multipart({"title": "a b", "entrypoint": "main.py"}, art), 400, "title"),
            # no UTF-8: the program's JSON would be unreadable (for an admin's listing too)
            ("description not UTF-8", *multipart({"title": "x", "entrypoint": "main.py", "description": b"caf\xe9"}, art),
             400, "description: not valid UTF-8"),
            ("entrypoint not UTF-8", *multipart({"title": "x", "entrypoint": b"m\xc0\xa1in.py"}, art),
             400, "entrypoint: not valid UTF-8"),
            ("bad env_vars", *multipart({"title": "x", "entrypoint": "main.py", "env_vars": "{"}, art), 400, "env_vars"),
            ("bad dependencies", *multipart({"title": "x", "entrypoint": "main.py", "dependencies": "{}"}, art),
             400, "dependencies"),
            ("null version", *multipart({"title": "x", "entrypoint": "main.py", "dependencies": '[{"a": null}]'}, art),
             400, "version of 'a'"),
            # no ProgramImages here: a program cannot name an image (test_program_image has more)
            ("image", *multipart({"title": "x", "image": "docker.io/x:1"}, {}), 403, "cannot name an image"),
            ("provider", *multipart({"title": "x", "entrypoint": "main.py", "provider": "ibm"}, art), 404, "Provider [ibm] was not found."),
            ("hostile tar", *multipart({"title": "x", "entrypoint": "main.py"},
                                       {"artifact": ("a.tar", tar_of([{"name": "main.py"},
                                                                      {"name": "../../escaped", "data": "x"}]))}),
             400, "outside"),
        ]
        for name, body, ct, status, words in cases:
            with self.subTest(name):
                r = self.api("POST", "programs/upload/", body, content_type=ct)
                self.assertMessage(r, status, words)
                self.assertEqual(self.api("GET", "programs/get_by_title/x").status, 404)
        # past ProgramArtifactMax: 413 in the same shape
        big, ct = multipart({"title": "big", "entrypoint": "main.py"}, {"artifact": ("a.tar", os.urandom((1 << 20) + 1))})
        # (curl: gatewayd answers 413 from the Content-Length and closes while the body is still
        # being sent, which http.client reports as a broken pipe)
        self.assertMessage(self.gw.http("POST", "/api/v1/programs/upload/", big, as_user=users.USER, content_type=ct), 413)
        self.assertFalse(os.path.exists(outside))
        # (the 413's upload file goes when its connection is done with, which may be just after
        # the answer was read)
        procs.wait_for(lambda: os.listdir(uploads) == [], timeout=30, what="no upload file left")
        # errors of the server itself are in the gateway's shape too
        self.assertMessage(self.api("GET", "nothing/here/"), 404)
        r = self.api("GET", "programs/", token="gwt_forged")
        self.assertMessage(r, 401)
        self.assertIn("Bearer", r.headers.get("www-authenticate", ""))
        self.assertMessage(self.api("POST", "programs/run/", b"{", content_type="application/json"), 400)
        self.assertMessage(self.api("POST", "programs/run/", {"arguments": "{}"}), 400, "title")
        self.assertMessage(self.api("POST", "programs/run/", {"title": "nope"}), 404, "nope")
        self.assertServing()

    def test_nul_escapes_in_json_text_fields(self):
        """JSON texts inside the gateway's requests (the upload's arguments, env_vars and
        dependencies fields, the run's "arguments" string) are client JSON like any body:
        "\\u0000" in a string or key is 400, as everywhere else (issue 8 §7), not cut short."""
        art = self.artifact()
        for field, text in (("env_vars", '{"A\\u0000B": "x"}'), ("env_vars", '{"A": "x\\u0000y"}'),
                            ("arguments", '{"k\\u0000": 1}'), ("dependencies", '["qiskit\\u0000==9"]'),
                            ("dependencies", '[{"qiskit\\u0000x": "1.0"}]')):
            with self.subTest(field=field, text=text):
                body, ct = multipart({"title": "nul", "entrypoint": "main.py", field: text}, art)
                self.assertMessage(self.api("POST", "programs/upload/", body, content_type=ct), 400, "\\u0000")
                self.assertEqual(self.api("GET", "programs/get_by_title/nul").status, 404)
        self.upload("nulrun", art)
        for args in ('{"k\\u0000x": 1}', '{"k": "a\\u0000b"}'):
            with self.subTest(arguments=args):
                r = self.api("POST", "programs/run/", {"title": "nulrun", "arguments": args})
                self.assertMessage(r, 400, "\\u0000")
        self.assertEqual(self.api("GET", "jobs/?function=nulrun").json["count"], 0)
        self.assertServing()

    def test_scopes(self):
        """Over TCP the routes need the native routes' scopes: reading "read", the rest "submit"."""
        self.upload("scoped", self.artifact())
        token = self.gw.http("POST", "/v1/tokens", {"scope": ["read"]}, as_user=users.USER).json["token"]
        self.assertEqual(self.api("GET", "programs/", token=token).status, 200)
        self.assertMessage(self.api("POST", "programs/run/", {"title": "scoped"}, token=token), 403, "scope")
        body, ct = multipart({"title": "scoped2", "entrypoint": "main.py"}, self.artifact())
        self.assertMessage(self.api("POST", "programs/upload/", body, content_type=ct, token=token), 403, "scope")
        self.assertEqual(self.api("GET", "programs/get_by_title/scoped2").status, 404)

    def test_failed_job_odd_log_and_big_arguments(self):
        """A job that fails has no result (204) and is FAILED; a log that is not UTF-8 still makes
        JSON; arguments over 100 KiB are 413, arguments as an object are taken too."""
        script = "import sys\nsys.stdout.buffer.write(b'bad \\xff\\xfe bytes\\n')\nsys.stdout.flush()\nsys.exit(3)\n"
        self.upload("failing", self.artifact(script))
        job = self.run_program("failing").json["id"]
        self.assertEqual(self.wait_status(job)["status"], "FAILED")
        self.assertEqual(self.api("GET", f"jobs/{job}/result/").status, 204)
        self.assertIsNone(self.api("GET", f"jobs/{job}/").json["result"])
        logs = self.api("GET", f"jobs/{job}/logs/").json["logs"]
        self.assertIn("bad \ufffd\ufffd bytes", logs)
        self.assertEqual(self.api("GET", "jobs/?status=FAILED&function=failing").json["count"], 1)
        self.assertMessage(self.api("GET", f"jobs/{job}/?with_result=maybe"), 400, "with_result")
        self.assertMessage(self.run_program("failing", {"x": "y" * (101 * 1024)}, status=413), 413)
        r = self.api("POST", "programs/run/", {"title": "failing", "arguments": {"k": 1}})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.json["arguments"]), {"k": 1})
        self.assertEqual(self.wait_status(r.json["id"])["status"], "FAILED")
        self.assertMessage(self.api("POST", "programs/run/", {"title": "failing", "arguments": "[1]"}), 400, "arguments")
