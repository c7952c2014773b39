"""Programs (issue 14, docs/programs.md): a user uploads a tarball of their code with an entrypoint,
and runs it as an ordinary gatewayd job on ProgramImage (a busybox image with the host's
/usr/bin/python3 and the few stdlib files it needs, served by a real docker-registry), with the
program's squashfs at /program. Covers upload → run → result, executable vs Python entrypoints,
another user's view (404), hostile artifacts refused with nothing written outside the program's
place, removal, and the job limits applied to program jobs."""
import gzip
import io
import json
import os
import subprocess
import tarfile
import re
import urllib.parse

from harness import images, openapi, procs, users
from harness.registry import Registry, free_port
from harness.stack import StackTestCase

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN")
PYTHON = "/usr/bin/python3"

# Reads its arguments both ways and prints them back as the PlanQK result.
MAIN_PY = """import json, os
with open("/var/input/arguments.json") as f:
    from_file = json.load(f)
print("hello from", os.getcwd())
print("PlanQK:Job:Result: " + json.dumps({"env": json.loads(os.environ["ENV_JOB_ARGUMENTS"]),
                                          "file": from_file, "job": os.environ["ENV_JOB_ID_GATEWAY"],
                                          "greeting": os.environ.get("GREETING")}))
"""
RUN_SH = """#!/bin/sh
echo "PlanQK:Job:Result: {\\"shell\\": true, \\"args\\": $ENV_JOB_ARGUMENTS}"
"""
SLEEP_SH = """#!/bin/sh
echo started
sleep 60
"""

# save_result as the serverless gateway's client does it (client/qiskit_serverless/core/job.py):
# POST "$ENV_JOB_GATEWAY_HOST/api/v1/jobs/$ENV_JOB_ID_GATEWAY/result/" with the bearer token and
# the form field result=json.dumps(result) — here with the stdlib instead of requests. The
# arguments say what to send; every answer is printed and the last line is the PlanQK result.
SAVE_PY = """import http.client, json, os, socket, urllib.parse
args = json.loads(os.environ["ENV_JOB_ARGUMENTS"])
host = urllib.parse.urlsplit(os.environ["ENV_JOB_GATEWAY_HOST"])
job = os.environ["ENV_JOB_ID_GATEWAY"]
mine = os.environ["ENV_JOB_GATEWAY_TOKEN"]

def post(token=mine, job=job, body=None, ctype="application/x-www-form-urlencoded"):
    if body is None:
        body = urllib.parse.urlencode({"result": json.dumps(args.get("result"))})
    c = http.client.HTTPConnection(host.hostname, host.port or 80, timeout=10)
    c.request("POST", f"/api/v1/jobs/{job}/result/", body=body,
              headers={"Authorization": "Bearer " + token, "Content-Type": ctype})
    r = c.getresponse()
    return [r.status, json.loads(r.read() or "null")]

out = {}
for name in args.get("tries", []):
    if name == "forged":
        out[name] = post(token="0" * 64)
    elif name == "other":
        out[name] = post(token=args["other"])
    elif name == "other-path":
        out[name] = post(job=args["other_job"])
    elif name == "no-token":
        out[name] = post(token="")
    elif name == "json":
        out[name] = post(body=json.dumps({"result": args["result"]}), ctype="application/json")
    elif name == "bad-json":
        out[name] = post(body="result=%7Bnope", ctype="application/x-www-form-urlencoded")
    elif name == "save":
        out[name] = post()
    elif name == "save-again":
        out[name] = post(body=urllib.parse.urlencode({"result": json.dumps({"second": True})}))
for port in args.get("ports", []):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        out[f"port {port}"] = "connected"
    except OSError as e:
        out[f"port {port}"] = type(e).__name__
print("PlanQK:Job:Result: " + json.dumps({"answers": out, "token": mine, "host": os.environ["ENV_JOB_GATEWAY_HOST"]}))
"""

# Runs for a while after printing a marker result (the time a test needs to save one from outside).
WAIT_PY = """import time
print('PlanQK:Job:Result: {"marker": 1}', flush=True)
time.sleep(3)
"""


DOCS = [openapi.load(os.path.join(procs.source_dir(), "docs", n)) for n in ("openapi-programs.yaml", "openapi-jobs.yaml")]


def checked_http(http):
    """Every answer of a documented route must be a status the document lists for it, with a
    body that matches the documented schema and the documented headers."""
    docs = [(doc, openapi.Validator(doc), [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", t) + "/?$"), t)
                                           for t in doc["paths"]]) for doc in DOCS]

    def call(method, path, *args, **kw):
        r = http(method, path, *args, **kw)
        bare = path.split("?", 1)[0]
        for doc, v, templates in docs:
            for rx, t in templates:
                if not rx.match(bare) or method.lower() not in doc["paths"][t]:
                    continue
                op = doc["paths"][t][method.lower()]
                assert str(r.status) in op["responses"], f"{method} {path}: undocumented status {r.status}: {r.body}"
                schema = v.response_schema(t, method, r.status)
                if schema is not None:
                    problems = v.check(schema, r.json)
                    assert not problems, f"{method} {path} → {r.status} {r.body[:500]}: {problems}"
                for h in v.response_headers(t, method, r.status):
                    assert h.lower() in r.headers, f"{method} {path}: no {h} header"
                return r
        return r
    return call


def python_layer():
    """/usr/bin/python3, its libraries and the stdlib files that 'import json, os, sys' loads
    (with site): a few MiB instead of the whole stdlib."""
    probe = ("import json, os, sys, encodings.latin_1, encodings.ascii, http.client, urllib.parse, encodings.idna\n"
             "for m in list(sys.modules.values()):\n"
             "    f = getattr(m, '__file__', None)\n"
             "    if f: print(f)\n")
    files = set(subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, check=True).stdout.split())
    lib = os.path.dirname(os.path.realpath(os.path.join(os.path.dirname(subprocess.run(
        [PYTHON, "-c", "import os; print(os.__file__)"], capture_output=True, text=True, check=True).stdout.strip()), "os.py")))
    files.add(os.path.join(lib, "os.py"))  # the landmark that finds the prefix
    ldd = subprocess.run(["ldd", PYTHON], capture_output=True, text=True, check=True).stdout
    libs = [w for line in ldd.splitlines() for w in line.split() if w.startswith("/")]
    layer = images.Layer().busybox(applets=("sh", "cat", "echo", "sleep", "true"))
    made = {"", "bin"}

    def add(path, mode=0o644):
        real = os.path.realpath(path)
        rel = path.lstrip("/")
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in made:
                layer.dir(d)
                made.add(d)
        with open(real, "rb") as f:
            layer.file(rel, f.read(), mode=mode)

    # what pip would have installed: the declared dependencies are checked against these names
    for dist in ("qiskit-1.2.0.dist-info", "qiskit_aer-0.15.1.dist-info", "numpy-1.24.2.egg-info"):
        for d in ("usr/lib/python3", "usr/lib/python3/dist-packages", f"usr/lib/python3/dist-packages/{dist}"):
            if d not in made:
                layer.dir(d)
                made.add(d)
        layer.file(f"usr/lib/python3/dist-packages/{dist}/METADATA", b"Metadata-Version: 2.1\n")
    add(PYTHON, 0o755)
    for f in sorted(libs):
        add(f, 0o755)
    for f in sorted(files):
        if f.startswith(lib) and os.path.isfile(f):
            add(f)
    return layer


def tar_of(entries, compress=True):
    """entries: list of (TarInfo-ish dict or name, data)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = e.get("type", tarfile.REGTYPE)
            ti.mode = e.get("mode", 0o644)
            ti.linkname = e.get("linkname", "")
            data = e.get("data", b"")
            if isinstance(data, str):
                data = data.encode()
            if ti.type == tarfile.REGTYPE:
                ti.size = len(data)
            if ti.type == tarfile.CHRTYPE:
                ti.devmajor, ti.devminor = 1, 3
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE else None)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


class ProgramsStackBase(StackTestCase):
    """gatewayd for programs: a registry with the class's images (push_images()), and the
    configuration for it that every programs test needs, plus the class's own
    (program_config(host)). cls.host: the registry."""
    tmp_prefix = "gatewayd-programs-"

    @classmethod
    def push_images(cls):
        raise NotImplementedError

    @classmethod
    def program_config(cls, host):
        return {}

    @classmethod
    def setUpClass(cls):
        cls.rprocs = procs.Processes()
        cls.rtmp = procs.TempDir(prefix=cls.tmp_prefix)
        try:
            cls.registry = Registry(cls.rprocs, cls.rtmp.path).start()
            cls.push_images()
            cls.host = host = cls.registry.host
            cls.config = {
                "DefaultImageLocation": host,
                "Locations": {host: {"remotetype": "dockerv2", "authentication": "none", "insecure": True}},
                "WorkerPath": os.path.join(procs.build_dir(), "src", "worker", "gateway-worker"),
                **cls.program_config(host),
            }
            super().setUpClass()
        except BaseException:
            cls.rprocs.stop_all()
            cls.rtmp.cleanup()
            raise
        cls.gw.http = checked_http(cls.gw.http)

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.rprocs.stop_all()
            cls.rtmp.cleanup()

    def post_program(self, artifact, status, as_user, **meta):
        """POST /v1/programs with META as its query (JSON for what is not a string); removed at
        the end of the test if made."""
        q = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode(q), artifact, as_user=as_user,
                         content_type="application/gzip")
        self.assertEqual(r.status, status, r.body)
        if status == 201:
            self.addCleanup(self.remove_quietly, meta["title"], as_user)
        return r

    def remove_quietly(self, title, as_user=users.USER):
        if self.gw.alive():
            self.gw.http("DELETE", f"/v1/programs/{title}", as_user=as_user)


class ProgramsTest(ProgramsStackBase):
    @classmethod
    def push_images(cls):
        images.push_image(cls.registry, "pybox", "1.0", images.Image([(python_layer(), "gzip")]))

    @classmethod
    def program_config(cls, host):
        cls.tcp_port = free_port()
        return {
            "Listen": {"tcp": f"127.0.0.1:{cls.tcp_port}"},
            "ProgramImage": f"{host}/pybox:1.0",
            "ProgramArtifactMax": "1M",
            "ImageSizeMax": "48M",
            "ImageFilesMax": 2000,
            "JobsPerUser": 1,
            "ActiveJobsPerUser": 3,
        }

    # ---- helpers ----

    def upload(self, title, artifact, entrypoint="main.py", as_user=users.USER, status=201, **meta):
        return self.post_program(artifact, status, as_user, title=title, entrypoint=entrypoint, **meta)

    def run_program(self, title, body=None, as_user=users.USER, status=201):
        r = self.gw.http("POST", f"/v1/programs/{title}/run", body if body is not None else {}, as_user=as_user)
        self.assertEqual(r.status, status, r.body)
        return r

    def wait_status(self, job_id, statuses=TERMINAL, as_user=users.USER, timeout=60):
        last = {}

        def check():
            last["job"] = self.gw.http("GET", f"/v1/jobs/{job_id}", as_user=as_user).json
            return last["job"]["status"] in statuses
        procs.wait_for(check, timeout=timeout, what=f"job {job_id} to reach {statuses}")
        return last["job"]

    def result(self, job_id, as_user=users.USER):
        r = self.gw.http("GET", f"/v1/jobs/{job_id}/result", as_user=as_user)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def programs_dir(self):
        return os.path.join(self.gw.state_dir, "programs")

    def program_dirs(self):
        return sorted(d for d in os.listdir(self.programs_dir()) if d != ".uploads")

    def state_snapshot(self):
        """Every path under the state directory but the job spools and the database's files."""
        out = set()
        for root, dirs, files in os.walk(self.gw.state_dir):
            for n in dirs + files:
                p = os.path.join(root, n)
                if "/jobs/" not in p + "/" and not n.startswith("state.db"):
                    out.add(p)
        return out

    # ---- tests ----

    def test_upload_run_python_entrypoint(self):
        art = tar_of([{"name": "main.py", "data": MAIN_PY}, {"name": "lib/helper.txt", "data": "x"}])
        r = self.upload("hello", art, arguments={"name": "default", "n": 1}, env={"GREETING": "hi"},
                        description="says hello", version="1.0", dependencies=["qiskit>=1.0"])
        p = r.json
        self.assertEqual(r.headers["location"], "/v1/programs/hello")
        self.assertEqual(p["title"], "hello")
        self.assertEqual(p["entrypoint"], "main.py")
        self.assertFalse(p["entrypointExecutable"])
        self.assertEqual(p["arguments"], {"name": "default", "n": 1})
        self.assertEqual(p["env"], {"GREETING": "hi"})
        self.assertEqual(p["dependencies"], ["qiskit>=1.0"])
        self.assertEqual(p["version"], "1.0")
        self.assertEqual(p["description"], "says hello")
        self.assertEqual(self.gw.http("GET", "/v1/programs/hello", as_user=users.USER).json, p)
        titles = [x["title"] for x in self.gw.http("GET", "/v1/programs", as_user=users.USER).json["programs"]]
        self.assertEqual(titles, ["hello"])
        # the upload is gone; only the squashfs is kept
        (pid,) = self.program_dirs()
        (kept,) = os.listdir(os.path.join(self.programs_dir(), pid))
        self.assertRegex(kept, r"^[0-9a-f]{64}\.squashfs$")   # this upload's layer
        self.assertEqual(os.listdir(os.path.join(self.programs_dir(), ".uploads")), [])

        job = self.run_program("hello", {"arguments": {"n": 2}}).json
        self.assertEqual(job["program"], "hello")
        done = self.wait_status(job["id"])
        self.assertEqual(done["status"], "SUCCEEDED", self.gw.http("GET", f"/v1/jobs/{job['id']}/log",
                                                                    as_user=users.USER).body)
        expected_args = {"name": "default", "n": 2}
        self.assertEqual(self.result(job["id"]),
                         {"env": expected_args, "file": expected_args, "job": job["id"], "greeting": "hi"})
        log = self.gw.http("GET", f"/v1/jobs/{job['id']}/log", as_user=users.USER).body
        self.assertIn("hello from /program", log)
        # the run's env goes over the program's
        job = self.run_program("hello", {"env": {"GREETING": "moin"}}).json
        self.assertEqual(self.wait_status(job["id"])["status"], "SUCCEEDED")
        self.assertEqual(self.result(job["id"])["greeting"], "moin")

    def test_executable_entrypoint_runs_directly(self):
        art = tar_of([{"name": "bin/run.sh", "data": RUN_SH, "mode": 0o755}])
        p = self.upload("shell", art, entrypoint="bin/run.sh").json
        self.assertTrue(p["entrypointExecutable"])
        job = self.run_program("shell", {"arguments": {"k": "v"}}).json
        self.assertEqual(self.wait_status(job["id"])["status"], "SUCCEEDED")
        self.assertEqual(self.result(job["id"]), {"shell": True, "args": {"k": "v"}})
        # the same script, not executable: python3 runs it and fails on shell syntax
        self.upload("shell-noexec", tar_of([{"name": "bin/run.sh", "data": RUN_SH, "mode": 0o644}]),
                    entrypoint="bin/run.sh")
        job = self.run_program("shell-noexec").json
        done = self.wait_status(job["id"])
        self.assertEqual(done["status"], "FAILED")
        self.assertIn("SyntaxError", self.gw.http("GET", f"/v1/jobs/{job['id']}/log", as_user=users.USER).body)

    def test_upload_again_with_replace(self):
        """The native upload keeps a title until it is removed (409), unless it asks to replace
        it (replace=true): the program keeps its id, a job that runs keeps the upload it started
        with, the next run runs the new one."""
        self.upload("versions", tar_of([{"name": "run.sh", "data": SLEEP_SH.replace("sleep 60", "sleep 2; echo v1 $(cat /program/own)"),
                                         "mode": 0o755}, {"name": "own", "data": "old"}]), entrypoint="run.sh")
        first = self.gw.http("GET", "/v1/programs/versions", as_user=users.USER).json
        old = self.run_program("versions").json["id"]
        self.wait_status(old, ("RUNNING",))
        v2 = tar_of([{"name": "run.sh", "data": RUN_SH, "mode": 0o755}])
        self.assertError(self.upload("versions", v2, entrypoint="run.sh", status=409), 409, "AlreadyExists", "replace")
        self.assertError(self.upload("versions", v2, entrypoint="run.sh", status=400, replace="maybe"), 400,
                         "InvalidArgument", "replace")
        p = self.upload("versions", v2, entrypoint="run.sh", arguments={"d": 2}, replace="true").json
        self.assertEqual((p["createdAt"], p["arguments"]), (first["createdAt"], {"d": 2}))
        new = self.run_program("versions").json["id"]
        self.assertEqual(self.wait_status(old)["status"], "SUCCEEDED")
        self.assertIn("v1 old", self.gw.http("GET", f"/v1/jobs/{old}/log", as_user=users.USER).body)
        self.assertEqual(self.wait_status(new)["status"], "SUCCEEDED")
        self.assertEqual(self.result(new), {"shell": True, "args": {"d": 2}})

    def program_mounts(self):
        """{squashfs path: mount id} of the workers' shared mounts (the lingering kind: programs'
        squashfs files and images)."""
        from harness import rootfs
        return rootfs.image_mounts(self.gw.runtime_dir)

    def test_program_mount_lingers(self):
        """A program's squashfs stays mounted after its job (the next job finds it mounted: the
        same mount); a re-upload unmounts the replaced one at once, removal the current one, and
        a stopped gatewayd leaves nothing mounted."""
        self.upload("lingering", tar_of([{"name": "run.sh", "data": RUN_SH, "mode": 0o755}]), entrypoint="run.sh")
        for _ in range(2):
            job = self.run_program("lingering").json["id"]
            self.assertEqual(self.wait_status(job)["status"], "SUCCEEDED")
            mounts = self.program_mounts()
            (first,) = [x for x in mounts if "/programs/" in x]
            self.assertTrue(os.path.exists(first))
        self.upload("lingering", tar_of([{"name": "run.sh", "data": RUN_SH.replace("true", "false"), "mode": 0o755}]),
                    entrypoint="run.sh", replace="true")
        self.assertNotIn(first, self.program_mounts())     # replaced, no job on it: unmounted
        job = self.run_program("lingering").json["id"]
        self.assertEqual(self.wait_status(job)["status"], "SUCCEEDED")
        self.assertEqual(self.result(job)["shell"], False)
        (second,) = [x for x in self.program_mounts() if "/programs/" in x]
        self.assertNotEqual(first, second)
        self.assertEqual(self.gw.http("DELETE", "/v1/programs/lingering", as_user=users.USER).status, 204)
        self.assertEqual([x for x in self.program_mounts() if "/programs/" in x], [])
        # a stopped gatewayd leaves no lingering mount behind
        self.upload("lingering2", tar_of([{"name": "run.sh", "data": RUN_SH, "mode": 0o755}]), entrypoint="run.sh")
        job = self.run_program("lingering2").json["id"]
        self.assertEqual(self.wait_status(job)["status"], "SUCCEEDED")
        self.assertTrue([x for x in self.program_mounts() if "/programs/" in x])
        from harness import rootfs
        self.gw.stop_daemon()
        try:
            self.assertEqual(rootfs.mounts_under(self.gw.runtime_dir), [])
        finally:
            self.gw.start()

    def job_token(self, job_id):
        """The token gatewayd mints for a job: HMAC-SHA256 over the job id (docs/programs.md)."""
        import hashlib
        import hmac
        with open(os.path.join(self.gw.state_dir, "job-token.key"), "rb") as f:
            key = f.read()
        return hmac.new(key, b"gatewayd job result token 1\n" + job_id.encode(), hashlib.sha256).hexdigest()

    def run_save(self, arguments, status="SUCCEEDED"):
        job = self.run_program("saver", {"arguments": arguments}).json
        done = self.wait_status(job["id"])
        log = self.gw.http("GET", f"/v1/jobs/{job['id']}/log", as_user=users.USER).body
        self.assertEqual(done["status"], status, log)
        return job["id"], log

    def test_save_result_from_inside_the_job(self):
        self.upload("saver", tar_of([{"name": "main.py", "data": SAVE_PY}]))
        # as the client does it: the saved result is the job's result, over the marker's
        jid, log = self.run_save({"tries": ["save"], "result": {"counts": {"00": 7}, "ok": True}})
        self.assertEqual(self.result(jid), {"counts": {"00": 7}, "ok": True})
        self.assertIn("replaces the one printed with a marker", log)
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}", as_user=users.USER).json["status"], "SUCCEEDED")
        # the saved result was taken out of the spool
        spool = os.path.join(self.gw.state_dir, "jobs", jid)
        if os.path.isdir(spool):
            self.assertFalse(os.path.exists(os.path.join(spool, "saved-result.json")))
        # a JSON body ({"result": <value>}) too; a second save replaces the first
        jid, _ = self.run_save({"tries": ["json", "save-again"], "result": [1, 2]})
        self.assertEqual(self.result(jid), {"second": True})
        jid, _ = self.run_save({"tries": ["json"], "result": [1, 2]})
        self.assertEqual(self.result(jid), [1, 2])

    def test_save_result_refusals_and_no_network(self):
        self.upload("saver", tar_of([{"name": "main.py", "data": SAVE_PY}]))
        first, _ = self.run_save({"tries": []})
        other = self.job_token(first)
        # the registry and gatewayd's TCP listener are on the host's loopback: not the job's
        ports = [self.registry.port, self.tcp_port]
        jid, log = self.run_save({"tries": ["forged", "other", "other-path", "no-token", "bad-json"],
                                  "other": other, "other_job": first, "ports": ports})
        r = self.result(jid)
        a = r["answers"]
        self.assertEqual(r["host"], "http://127.0.0.1:80")
        self.assertEqual(r["token"], self.job_token(jid))
        self.assertNotEqual(r["token"], other)
        self.assertEqual(a["forged"], [401, {"message": "Invalid token."}])
        self.assertEqual(a["other"], [401, {"message": "Invalid token."}])
        self.assertEqual(a["no-token"][0], 401)
        self.assertEqual(a["other-path"][0], 404)
        self.assertEqual(a["bad-json"][0], 400)
        for p in ports:
            self.assertEqual(a[f"port {p}"], "ConnectionRefusedError", log)
        # nothing was saved: the marker's result stands
        self.assertNotIn("replaces", log)
        # finished: the endpoint went with the job, and gatewayd's route refuses the token now
        r = self.save_via_gatewayd(jid, self.job_token(jid), {"late": True})
        self.assertEqual(r, (409, {"message": "The job has finished: its result can no longer be saved."}))
        self.assertEqual(self.result(jid)["answers"], a)
        self.assertServing()

    def save_via_gatewayd(self, job_id, token, result, tcp=False):
        import http.client
        body = urllib.parse.urlencode({"result": json.dumps(result)})
        headers = {"Authorization": "Bearer " + token, "Content-Type": "application/x-www-form-urlencoded"}
        if not tcp:
            r = self.gw.http("POST", f"/api/v1/jobs/{job_id}/result/", body, as_user=users.OTHER,
                             headers={"Authorization": headers["Authorization"]}, content_type=headers["Content-Type"])
            return r.status, r.json
        conn = http.client.HTTPConnection("127.0.0.1", self.tcp_port, timeout=30)
        try:
            conn.request("POST", f"/api/v1/jobs/{job_id}/result/", body=body, headers=headers)
            r = conn.getresponse()
            return r.status, json.loads(r.read())
        finally:
            conn.close()

    def test_save_result_through_gatewayd(self):
        """The same route on gatewayd's listeners takes the job's token (and nothing else) while it runs."""
        self.upload("waiter", tar_of([{"name": "main.py", "data": WAIT_PY}]))
        job = self.run_program("waiter").json
        self.wait_status(job["id"], ("RUNNING",))
        token = self.job_token(job["id"])
        # a job that does not run yet (JobsPerUser 1: it waits QUEUED) has no worker to take it
        queued = self.run_program("waiter").json
        self.assertEqual(self.save_via_gatewayd(queued["id"], self.job_token(queued["id"]), {"x": 1}),
                         (409, {"message": "The job does not run yet: its result can be saved while it runs."}))
        self.assertEqual(self.gw.http("PUT", f"/v1/jobs/{queued['id']}/cancel", as_user=users.USER).status, 200)
        self.assertEqual(self.save_via_gatewayd(job["id"], "0" * 64, {"x": 1}, tcp=True)[0], 401)
        self.assertEqual(self.save_via_gatewayd(job["id"], token[:-1] + ("1" if token.endswith("0") else "0"), {"x": 1})[0], 401)
        self.assertEqual(self.save_via_gatewayd("0" * 8, token, {"x": 1})[0], 401)
        # a user's gatewayd token is no job token
        user_token = self.gw.http("POST", "/v1/tokens", {"scope": ["read", "submit"]}, as_user=users.USER).json["token"]
        self.assertEqual(self.save_via_gatewayd(job["id"], user_token, {"x": 1}, tcp=True)[0], 401)
        # bad bodies: 400, and gatewayd keeps serving
        for body, ctype in (("result=%7Bnope", "application/x-www-form-urlencoded"), ('{"other": 1}', "application/json"),
                            ("result=%5B1%2C", "application/x-www-form-urlencoded"), ("nothing", "text/plain"),
                            # json-c reads these, but they are no JSON (the job's result must be)
                            ('{"result": [1, 2.]}', "application/json"), ('{"result": "{\\"x\\": 1.e5}"}', "application/json"),
                            ("result=NaN", "application/x-www-form-urlencoded"), ('{"result": [-Infinity]}', "application/json")):
            r = self.gw.http("POST", f"/api/v1/jobs/{job['id']}/result/", body, as_user=users.USER,
                             headers={"Authorization": "Bearer " + token}, content_type=ctype)
            self.assertEqual(r.status, 400, r.body)
            self.assertIn("message", r.json)
        self.assertServing()
        # over TCP, without any identity: the token is the credential
        self.assertEqual(self.save_via_gatewayd(job["id"], token, {"saved": "over tcp"}, tcp=True),
                         (200, {"message": "Result saved."}))
        done = self.wait_status(job["id"])
        self.assertEqual(done["status"], "SUCCEEDED")
        self.assertEqual(self.result(job["id"]), {"saved": "over tcp"})
        self.assertEqual(self.save_via_gatewayd(job["id"], token, {"x": 1})[0], 409)

    def test_dependencies_checked_against_the_image(self):
        art = tar_of([{"name": "main.py", "data": MAIN_PY}])
        before = self.program_dirs()
        cases = [
            (["qiskit>=2"], "'qiskit>=2' (installed: qiskit 1.2.0)"),
            (["qiskit", "nosuchpkg==1.0"], "'nosuchpkg==1.0' (not installed)"),
            (["numpy<1.20", "Qiskit-Aer~=0.14.0"], "'Qiskit-Aer~=0.14.0' (installed: qiskit-aer 0.15.1)"),
            (["qiskit @ https://example.invalid/q.whl"], "URL requirements are not supported"),
            (["qiskit >>= 1"], "cannot be read"),
        ]
        for deps, words in cases:
            with self.subTest(deps=deps):
                r = self.upload("deps", art, dependencies=deps, status=400)
                self.assertError(r, 400, "InvalidArgument", words)
                if "installed" in words:
                    self.assertIn("no network installs", r.json["error"]["message"])
                self.assertEqual(self.gw.http("GET", "/v1/programs/deps", as_user=users.USER).status, 404)
        # nothing kept of a refused upload (the base image was pulled to check, as for a job)
        self.assertEqual(self.program_dirs(), before)
        self.assertEqual(os.listdir(os.path.join(self.programs_dir(), ".uploads")), [])
        # satisfied: names compare normalized, versions by PEP 440's order
        p = self.upload("deps", art, dependencies=["qiskit>=1.0,<2", "qiskit_aer==0.15.*", "NumPy (>=1.24)",
                                                   "qiskit[visualization]; python_version >= '3.9'"]).json
        self.assertEqual(len(p["dependencies"]), 4)
        job = self.run_program("deps").json
        self.assertEqual(self.wait_status(job["id"])["status"], "SUCCEEDED")
        self.assertServing()

    def test_dependencies_without_program_image(self):
        """Without ProgramImage nothing can be checked: refused, and nothing is kept."""
        from harness.bus import PrivateBus
        from harness.gatewayd import Gatewayd
        from harness.polkit import Polkit
        config = {k: v for k, v in self.config.items() if k not in ("ProgramImage", "Listen")}
        bus = PrivateBus().start()
        polkit = gw = None
        try:
            polkit = Polkit(bus).start()
            gw = Gatewayd(mode="direct", bus=bus, config=config)
            gw.start()
            art = tar_of([{"name": "main.py", "data": MAIN_PY}])
            r = gw.http("POST", "/v1/programs?title=d&entrypoint=main.py&dependencies=%5B%22qiskit%22%5D", art,
                        as_user=users.USER, content_type="application/gzip")
            self.assertError(r, 400, "InvalidArgument", "ProgramImage")
            self.assertEqual([d for d in os.listdir(os.path.join(gw.state_dir, "programs")) if d != ".uploads"], [])
            # without dependencies the upload needs no image
            r = gw.http("POST", "/v1/programs?title=d&entrypoint=main.py", art, as_user=users.USER,
                        content_type="application/gzip")
            self.assertEqual(r.status, 201, r.body)
        finally:
            if gw is not None:
                gw.stop(check=True)
            if polkit is not None:
                polkit.stop()
            bus.stop()

    def test_other_user_sees_nothing(self):
        self.upload("private", tar_of([{"name": "main.py", "data": MAIN_PY}]))
        for method, path in (("GET", "/v1/programs/private"), ("DELETE", "/v1/programs/private"),
                             ("POST", "/v1/programs/private/run")):
            r = self.gw.http(method, path, {} if method == "POST" else None, as_user=users.OTHER)
            self.assertError(r, 404, "NotFound", "private")
        self.assertEqual(self.gw.http("GET", "/v1/programs", as_user=users.OTHER).json, {"programs": []})
        # the same title is the other user's own
        self.upload("private", tar_of([{"name": "main.py", "data": MAIN_PY}]), as_user=users.OTHER)
        self.assertEqual(self.gw.http("GET", "/v1/programs/private", as_user=users.USER).json["uid"],
                         users.uid_of(users.USER))
        self.assertEqual(self.gw.http("GET", "/v1/programs/private", as_user=users.OTHER).json["uid"],
                         users.uid_of(users.OTHER))

    def test_hostile_artifacts_refused(self):
        outside = os.path.join(self.gw.state_dir, "escaped")
        bomb = images.gzip_bomb(64, name="main.py").data  # 64 MiB unpacked > ImageSizeMax (48M)
        cases = [
            ("traversal", tar_of([{"name": "main.py"}, {"name": "../../escaped", "data": "x"}]), "outside"),
            ("absolute", tar_of([{"name": "main.py"}, {"name": outside, "data": "x"}]), "outside"),
            ("symlink-out", tar_of([{"name": "main.py"},
                                    {"name": "l", "type": tarfile.SYMTYPE, "linkname": self.gw.state_dir},
                                    {"name": "l/escaped", "data": "x"}]), "symlink"),
            ("device", tar_of([{"name": "main.py"}, {"name": "null", "type": tarfile.CHRTYPE}]), "device"),
            ("bomb", bomb, "ImageSizeMax"),
            ("not-a-tar", b"\x00garbage" * 100, "not a tar"),
            ("no-entrypoint", tar_of([{"name": "other.py"}]), "not in the artifact"),
            ("entrypoint-link", tar_of([{"name": "main.py", "type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}]),
             "not a regular file"),
        ]
        before = self.state_snapshot()
        for title, art, words in cases:
            with self.subTest(title):
                r = self.upload(title, art, status=400)
                self.assertError(r, 400, "InvalidArgument", words)
                self.assertEqual(self.gw.http("GET", f"/v1/programs/{title}", as_user=users.USER).status, 404)
        self.assertFalse(os.path.exists(outside))
        self.assertEqual(self.state_snapshot(), before)
        self.assertServing()

    def test_artifact_over_limit_and_bad_metadata(self):
        big = os.urandom((1 << 20) + 1)
        r = self.upload("big", big, status=413)
        self.assertError(r, 413, "PayloadTooLarge")
        # without Content-Length (chunked): read, dropped, 413 at its end
        r = self.gw.http("POST", "/v1/programs?title=big&entrypoint=main.py", big, as_user=users.USER,
                         headers={"Transfer-Encoding": "chunked"}, content_type="application/gzip")
        self.assertError(r, 413, "PayloadTooLarge")
        art = tar_of([{"name": "main.py", "data": MAIN_PY}])
        self.assertError(self.upload("x y", art, status=400), 400, "InvalidArgument", "title")
        self.assertError(self.upload("ok", art, entrypoint="../main.py", status=400), 400, "InvalidArgument",
                         "entrypoint")
        self.assertError(self.upload("ok", art, env={"1BAD": "x"}, status=400), 400, "InvalidArgument", "env")
        self.assertError(self.upload("ok", art, arguments="[1]", status=400), 400, "InvalidArgument", "arguments")
        r = self.gw.http("POST", "/v1/programs?title=empty&entrypoint=main.py", None, as_user=users.USER)
        self.assertError(r, 400, "BadRequest")
        self.upload("twice", art)
        self.assertError(self.upload("twice", art, status=409), 409, "AlreadyExists", "twice")
        self.assertEqual(os.listdir(os.path.join(self.programs_dir(), ".uploads")), [])
        # run: bad bodies
        self.assertError(self.run_program("twice", {"arguments": [1]}, status=400), 400, "InvalidArgument",
                         "arguments")
        self.assertError(self.run_program("twice", {"env": {"ENV_JOB_ID_GATEWAY": "x"}}, status=400), 400,
                         "InvalidArgument", "ENV_JOB_ID_GATEWAY")
        self.assertError(self.run_program("twice", {"what": 1}, status=400), 400, "InvalidArgument", "what")
        self.assertError(self.run_program("nope", status=404), 404, "NotFound", "nope")
        self.assertServing()

    def test_nul_escapes_in_query_json(self):
        """The upload's arguments and env are JSON texts in the query: "\\u0000" in a key or a
        string is 400 there as in any body (issue 8 §7), never a name cut short."""
        art = tar_of([{"name": "main.py", "data": MAIN_PY}])
        for key, text in (("env", '{"A\\u0000B": "x"}'), ("env", '{"A": "x\\u0000"}'),
                          ("arguments", '{"k\\u0000x": 1}'), ("arguments", '{"k": ["\\u0000"]}')):
            with self.subTest(key=key, text=text):
                r = self.upload("nul", art, status=400, **{key: text})
                self.assertError(r, 400, "InvalidArgument", key)
                self.assertIn("\\u0000", r.json["error"]["message"])
                self.assertEqual(self.gw.http("GET", "/v1/programs/nul", as_user=users.USER).status, 404)
        self.assertServing()

    def test_delete_removes_files_and_limits_apply(self):
        self.upload("sleeper", tar_of([{"name": "s.sh", "data": SLEEP_SH, "mode": 0o755}]), entrypoint="s.sh")
        (pid,) = self.program_dirs()
        jobs = [self.run_program("sleeper").json["id"] for _ in range(3)]
        # JobsPerUser 1: one runs, the others wait; ActiveJobsPerUser 3: a fourth is refused
        self.wait_status(jobs[0], ("RUNNING",))
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jobs[1]}", as_user=users.USER).json["status"], "QUEUED")
        self.assertError(self.run_program("sleeper", status=429), 429, "LimitExceeded", "ActiveJobsPerUser")
        # in use: not removed
        self.assertError(self.gw.http("DELETE", "/v1/programs/sleeper", as_user=users.USER), 409, "Conflict")
        for j in jobs:
            self.assertEqual(self.gw.http("PUT", f"/v1/jobs/{j}/cancel", as_user=users.USER).status, 200)
        for j in jobs:
            self.assertEqual(self.wait_status(j)["status"], "CANCELLED")
        r = self.gw.http("DELETE", "/v1/programs/sleeper", as_user=users.USER)
        self.assertEqual(r.status, 204, r.body)
        self.assertFalse(os.path.exists(os.path.join(self.programs_dir(), pid)))
        self.assertEqual(self.gw.http("GET", "/v1/programs/sleeper", as_user=users.USER).status, 404)
        # the finished jobs still say which program they ran
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jobs[0]}", as_user=users.USER).json["program"], "sleeper")

    def test_survives_restart(self):
        self.upload("kept", tar_of([{"name": "main.py", "data": MAIN_PY}]))
        self.gw.restart()
        job = self.run_program("kept").json
        self.assertEqual(self.wait_status(job["id"])["status"], "SUCCEEDED")

    def test_gatewayctl(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="gatewayd-program-src-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        src = os.path.join(d, "ctlprog")
        os.makedirs(os.path.join(src, "pkg"))
        with open(os.path.join(src, "main.py"), "w") as f:
            f.write(MAIN_PY)
        with open(os.path.join(src, "pkg", "data.txt"), "w") as f:
            f.write("data")
        for root, dirs, files in os.walk(d):
            for n in dirs:
                os.chmod(os.path.join(root, n), 0o755)
            for n in files:
                os.chmod(os.path.join(root, n), 0o644)

        r = self.gw.gatewayctl("program", "upload", src, "--entrypoint=main.py", "--arg=name=ctl", "--arg=n=1",
                               as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(self.remove_quietly, "ctlprog", users.USER)
        # the title is taken, unless the upload replaces it
        r = self.gw.gatewayctl("program", "upload", src, "--entrypoint=main.py", as_user=users.USER)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("replace", r.stderr)
        r = self.gw.gatewayctl("program", "upload", src, "--entrypoint=main.py", "--arg=name=ctl", "--arg=n=1",
                               "--replace", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.gw.gatewayctl("program", "list", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^-\s+ctlprog\s+main\.py")
        r = self.gw.gatewayctl("program", "list", "--json=short", as_user=users.USER)
        self.assertEqual([p["title"] for p in json.loads(r.stdout)], ["ctlprog"])
        self.assertEqual(json.loads(r.stdout)[0]["arguments"], {"name": "ctl", "n": 1})

        r = self.gw.gatewayctl("program", "run", "ctlprog", "--arg=n=5", "--wait", "--json=short", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        res = json.loads(r.stdout)
        self.assertEqual(res["env"], {"name": "ctl", "n": 5})
        # without --wait: the job id; the job is an ordinary one
        r = self.gw.gatewayctl("program", "run", "ctlprog", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        job_id = r.stdout.strip()
        self.assertEqual(self.wait_status(job_id)["status"], "SUCCEEDED")

        # errors: another user's program, a missing entrypoint option, an unknown title
        r = self.gw.gatewayctl("program", "run", "ctlprog", as_user=users.OTHER)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("No program 'ctlprog'", r.stderr)
        r = self.gw.gatewayctl("program", "upload", src, as_user=users.USER)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--entrypoint", r.stderr)
        r = self.gw.gatewayctl("program", "rm", "ctlprog", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.gw.gatewayctl("program", "rm", "ctlprog", as_user=users.USER)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("No program", r.stderr)

    def test_network_upload(self):
        """Over TCP an upload needs a credential; without one its body never reaches the disk."""
        import http.client
        art = tar_of([{"name": "main.py", "data": MAIN_PY}])
        pad = os.urandom(600 * 1024)  # under MaxRequestBody: an anonymous body is read into memory
        conn = http.client.HTTPConnection("127.0.0.1", self.tcp_port, timeout=30)
        try:
            conn.putrequest("POST", "/v1/programs?title=anon&entrypoint=main.py")
            conn.putheader("Content-Length", str(len(pad)))
            conn.putheader("Content-Type", "application/gzip")
            conn.endheaders()
            conn.send(pad[:len(pad) // 2])
            # half of it is in: nothing in the upload directory
            procs.wait_for(lambda: self.gw.http("GET", "/v1/status").status == 200, timeout=10, what="status")
            self.assertEqual(os.listdir(os.path.join(self.programs_dir(), ".uploads")), [])
            conn.send(pad[len(pad) // 2:])
            r = conn.getresponse()
            self.assertEqual(r.status, 401, r.read())
        finally:
            conn.close()

        token = self.gw.http("POST", "/v1/tokens", {"scope": ["read", "submit"]}, as_user=users.USER).json["token"]
        conn = http.client.HTTPConnection("127.0.0.1", self.tcp_port, timeout=30)
        try:
            conn.request("POST", "/v1/programs?title=net&entrypoint=main.py", body=art,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"})
            r = conn.getresponse()
            body = json.loads(r.read())
            self.assertEqual(r.status, 201, body)
        finally:
            conn.close()
        self.addCleanup(self.remove_quietly, "net", users.USER)
        self.assertEqual(body["uid"], users.uid_of(users.USER))
        self.assertEqual(self.gw.http("GET", "/v1/programs/net", as_user=users.USER).status, 200)

    def test_dbus(self):
        self.upload("bus", tar_of([{"name": "main.py", "data": MAIN_PY}]), arguments={"name": "bus"})
        p, data = self.gw.call("ListPrograms", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([x["title"] for x in json.loads(data[0])], ["bus"])
        p, data = self.gw.call("ListPrograms", as_user=users.OTHER)
        self.assertEqual(json.loads(data[0]), [])

        p, data = self.gw.call("RunProgram", "sss", "bus", '{"n": 3}', '{"GREETING": "servus"}', as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        job_id = re.sub(r"_([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), data[0].rsplit("/", 1)[1])
        self.assertEqual(self.wait_status(job_id)["status"], "SUCCEEDED")
        self.assertEqual(self.result(job_id)["env"], {"name": "bus", "n": 3})
        self.assertEqual(self.result(job_id)["greeting"], "servus")

        for args, user, name in ((("bus", "", ""), users.OTHER, "org.gatewayd.Gateway1.Error.NotFound"),
                                 (("bus", "[1]", ""), users.USER, "org.gatewayd.Gateway1.Error.InvalidArgument"),
                                 (("bus", "", '{"ENV_JOB_ID_GATEWAY": "x"}'), users.USER,
                                  "org.gatewayd.Gateway1.Error.InvalidArgument"),
                                 (("bus", "{bad", ""), users.USER, "org.gatewayd.Gateway1.Error.BadRequest")):
            with self.subTest(args=args):
                p, err = self.gw.gdbus_call("RunProgram", *args, as_user=user)
                self.assertNotEqual(p.returncode, 0)
                self.assertEqual(err, name, p.stderr)
        p, err = self.gw.gdbus_call("RemoveProgram", "bus", as_user=users.OTHER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NotFound", p.stderr)
        p, _ = self.gw.call("RemoveProgram", "s", "bus", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.gw.http("GET", "/v1/programs/bus", as_user=users.USER).status, 404)
