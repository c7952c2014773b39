"""Jobs end to end: a real docker-registry serves a busybox image, gatewayd pulls it with
gateway-worker and runs services as sandboxed one-shot jobs (gateway-worker run, bubblewrap),
reached over HTTP on the unix socket and over D-Bus on a private system bus with polkitd.
Covers the state machine, the limits and fair share, cancel in every state, restart recovery after
kill -9, the native /v1 API, the PlanQK API against docs/openapi-planqk.yaml, and authorization
across users."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
import unittest
import uuid
from datetime import datetime

from harness import images, openapi, procs, rootfs, slowfsync, users
from harness.bus import BusMonitor
from harness.registry import Proxy, Registry
from harness.stack import StackTestCase

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN")
PLANQK_STATUSES = ("UNKNOWN", "PENDING", "RUNNING", "SUCCEEDED", "CANCELLED", "FAILED")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# The job reads its input from /var/input and prints PlanQK markers on stdout.
ECHO = ('cat /var/input/data.json; echo; echo "to stderr" >&2; '
        'echo "PlanQK:Job:InterimResult: {\\"step\\": 1}"; '
        'echo "PlanQK:Job:InterimResult: {\\"step\\": 2}"; '
        'echo "PlanQK:Job:Result: {\\"data\\": $(cat /var/input/data.json), '
        '\\"params\\": $(cat /var/input/params.json)}"')
# Sleeps params.sleep seconds (default 60), printing a line first so a test knows it runs.
SLEEP = ('s=$(sed -n \'s/.*"sleep": *\\([0-9]*\\).*/\\1/p\' /var/input/params.json); '
         'echo "sleeping ${s:-60}"; sleep "${s:-60}"; echo "PlanQK:Job:InterimResult: {\\"woke\\": true}"; '
         'echo "PlanQK:Job:Result: {\\"slept\\": ${s:-60}}"')
FAIL = 'echo "going to fail"; echo "PlanQK:Job:Result: {\\"partial\\": true}"; exit 3'
# Results nested 100 levels deep (the worker accepts up to 512).
DEEP = ('o=; c=; i=0; while [ $i -lt 100 ]; do o="$o["; c="$c]"; i=$((i+1)); done; '
        'echo "PlanQK:Job:InterimResult: $o$c"; echo "PlanQK:Job:Result: {\\"deep\\": $o$c}"')


class GVariantText:
    """An argument gdbus_call() passes unquoted (it quotes str)."""
    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text


def bus_path_encode(s):
    """sd_bus_path_encode(): every byte but [A-Za-z0-9] (and a leading digit) as _XX."""
    return "".join(c if c.isascii() and (c.isalpha() or (c.isdigit() and i > 0)) else "_%02x" % ord(c)
                   for i, c in enumerate(s))


def bus_path_decode(s):
    return re.sub(r"_([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), s)


JOBS_DOC = openapi.load(os.path.join(procs.source_dir(), "docs", "openapi-jobs.yaml"))


def checked_http(http):
    """Wraps Gatewayd.http: every answer of a /v1 job route must be a status the document lists
    for it, with a body that matches the documented schema (and the documented headers)."""
    v = openapi.Validator(JOBS_DOC)
    templates = [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", t) + "/?$"), t) for t in JOBS_DOC["paths"]]

    def call(method, path, *args, **kw):
        r = http(method, path, *args, **kw)
        bare = path.split("?", 1)[0]
        for rx, t in templates:
            if not rx.match(bare) or method.lower() not in JOBS_DOC["paths"][t]:
                continue
            op = JOBS_DOC["paths"][t][method.lower()]
            assert str(r.status) in op["responses"], f"{method} {path}: undocumented status {r.status}: {r.body}"
            schema = v.response_schema(t, method, r.status)
            if schema is not None:
                problems = v.check(schema, r.json)
                assert not problems, f"{method} {path} → {r.status} {r.body[:500]}: {problems}"
            for h in v.response_headers(t, method, r.status):
                assert h.lower() in r.headers, f"{method} {path}: no {h} header"
            break
        return r
    return call


def worker_path():
    """gateway-worker with both verbs (pull and run). GATEWAYD_TEST_WORKER overrides the one in
    the build tree (useful while `run` lives on another branch)."""
    return os.environ.get("GATEWAYD_TEST_WORKER") or os.path.join(procs.build_dir(), "src", "worker", "gateway-worker")


def worker_has_run():
    p = subprocess.run([worker_path(), "run", "--help"], capture_output=True, text=True)
    return p.returncode == 0


class JobsBase(StackTestCase):
    jobs_per_user = 2
    active_jobs_per_user = 5
    max_clusters = 6
    job_retention = None     # JobRetention, None = the default (7 days)
    extra_config = {}

    skip_reason = None

    @classmethod
    def gatewayd_worker_path(cls):
        return worker_path()

    @classmethod
    def setUpClass(cls):
        # Skipped test by test (not the class), so that the runner counts them.
        if not worker_has_run():
            cls.skip_reason = "gateway-worker has no 'run' verb in this build"
            return
        cls.rprocs = procs.Processes()
        cls.rtmp = procs.TempDir(prefix="gatewayd-jobs-")
        cls.registry = Registry(cls.rprocs, cls.rtmp.path).start()
        images.push_image(cls.registry, "busybox", "1.0", images.busybox_image())
        host = cls.registry.host
        cls.image_ref = f"{host}/busybox:1.0"
        # A slow path to the same registry: jobs of its services stay PENDING while it pulls.
        # (An image of its own, and a layer of its own: one already READY would not be pulled
        # again, and a layer in the blob cache from busybox:1.0 would not be downloaded — the
        # pull then took a moment, and a cancel "while it pulls" found the job's worker started.)
        slow_layer = images.Layer().busybox().dir("etc").file("etc/slowbox", b"a layer no other image has\n")
        images.push_image(cls.registry, "slowbox", "1.0", images.Image([(slow_layer, "gzip")], entrypoint=["/bin/sh"],
                                                                   cmd=["-c", "echo hi"], labels={"slow": "yes"}))
        cls.slow = Proxy(cls.registry.port, rate=4096)
        cls.slow_ref = f"{cls.slow.host}/slowbox:1.0"
        cls.config = {
            "DefaultImageLocation": host,
            "Locations": {host: {"remotetype": "dockerv2", "authentication": "none", "insecure": True},
                          cls.slow.host: {"remotetype": "dockerv2", "authentication": "none", "insecure": True}},
            "WorkerPath": cls.gatewayd_worker_path(),
            "JobsPerUser": cls.jobs_per_user,
            "ActiveJobsPerUser": cls.active_jobs_per_user,
            "MaxClusters": cls.max_clusters,
            **cls.extra_config,
        }
        if cls.job_retention is not None:
            cls.config["JobRetention"] = cls.job_retention
        # None: the built-in default
        cls.config = {k: v for k, v in cls.config.items() if v is not None}
        try:
            super().setUpClass()
        except BaseException:
            cls.slow.stop()
            cls.rprocs.stop_all()
            cls.rtmp.cleanup()
            raise
        cls.gw.http = checked_http(cls.gw.http)
        cls.services = {}
        for name, script in (("echo", ECHO), ("sleep", SLEEP), ("fail", FAIL), ("deep", DEEP)):
            svc = f"jobs-{name}-{os.getpid() % 10000}"
            r = cls.gw.http("POST", "/v1/services", {"name": svc, "image": cls.image_ref,
                                                       "command": ["/bin/sh", "-c", script]})
            assert r.status == 201, r.body
            cls.services[name] = svc

    def setUp(self):
        if self.skip_reason:
            self.skipTest(self.skip_reason)
        super().setUp()

    def tearDown(self):
        if not self.skip_reason:
            super().tearDown()

    @classmethod
    def tearDownClass(cls):
        if cls.skip_reason:
            return
        try:
            super().tearDownClass()
        finally:
            cls.slow.stop()
            cls.rprocs.stop_all()
            cls.rtmp.cleanup()
            if getattr(cls, "wrap", None):    # a worker wrapper of the class (TempDir)
                cls.wrap.cleanup()

    # ---- helpers ----

    def submit(self, kind="echo", data=None, params=None, as_user=users.USER, status=201):
        body = {}
        if data is not None:
            body["data"] = data
        if params is not None:
            body["params"] = params
        r = self.gw.http("POST", f"/v1/services/{self.services[kind]}/jobs", body, as_user=as_user)
        self.assertEqual(r.status, status, r.body)
        return r

    def job(self, job_id, as_user=users.USER):
        r = self.gw.http("GET", f"/v1/jobs/{job_id}", as_user=as_user)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def wait_status(self, job_id, statuses, as_user=users.USER, timeout=60):
        statuses = (statuses,) if isinstance(statuses, str) else statuses
        last = {}

        def check():
            last["job"] = self.job(job_id, as_user=as_user)
            return last["job"]["status"] in statuses
        procs.wait_for(check, timeout=timeout, what=f"job {job_id} to reach {statuses}")
        return last["job"]

    def wait_log(self, job_id, text, as_user=users.USER, timeout=60):
        procs.wait_for(lambda: text in self.gw.http("GET", f"/v1/jobs/{job_id}/log", as_user=as_user).body,
                       timeout=timeout, what=f"'{text}' in the log of {job_id}")

    def cleanup_job(self, job_id, as_user=users.USER):
        """Cancels the job after the test and waits for it to end, so that it holds no slot and
        counts against no limit in the next test."""
        def cancel():
            if self.gw.alive():
                r = self.gw.http("PUT", f"/v1/jobs/{job_id}/cancel", as_user=as_user)
                if r.status != 404:  # (not removed by the test already)
                    self.wait_status(job_id, TERMINAL, as_user=as_user, timeout=30)
        self.addCleanup(cancel)

    def spool(self, job_id):
        return os.path.join(self.gw.state_dir, "jobs", job_id)

    def running_of(self, uid, service=None):
        r = self.gw.http("GET", "/v1/jobs?all=1", as_user=None)
        self.assertEqual(r.status, 200, r.body)
        return [j for j in r.json["jobs"] if j["uid"] == uid and j["status"] in ("PENDING", "RUNNING")
                and (service is None or j["service"] == service)]


class JobsTest(JobsBase):
    def test_lifecycle_result_interim_log(self):
        r = self.submit("echo", data={"x": [1, 2, 3]}, params={"p": "q"})
        job = r.json
        self.assertEqual(r.headers["location"], f"/v1/jobs/{job['id']}")
        self.assertIn(job["status"], ("QUEUED", "PENDING"))
        self.assertEqual(job["uid"], users.uid_of(users.USER))
        self.assertRegex(job["createdAt"], ISO)
        self.assertIsNone(job["endedAt"])

        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(done["exitCode"], 0)
        self.assertRegex(done["startedAt"], ISO)
        self.assertRegex(done["endedAt"], ISO)
        self.assertLessEqual(done["createdAt"], done["startedAt"])
        self.assertLessEqual(done["startedAt"], done["endedAt"])

        res = self.gw.http("GET", f"/v1/jobs/{job['id']}/result", as_user=users.USER)
        self.assertEqual(res.status, 200, res.body)
        self.assertEqual(res.json, {"data": {"x": [1, 2, 3]}, "params": {"p": "q"}})

        interim = self.gw.http("GET", f"/v1/jobs/{job['id']}/interim-results", as_user=users.USER)
        self.assertEqual(interim.json, [{"step": 1}, {"step": 2}])
        last = self.gw.http("GET", f"/v1/jobs/{job['id']}/interim-results?last=true", as_user=users.USER)
        self.assertEqual(last.json, [{"step": 2}])
        bad = self.gw.http("GET", f"/v1/jobs/{job['id']}/interim-results?last=maybe", as_user=users.USER)
        self.assertError(bad, 400, "InvalidArgument", "last")

        log = self.gw.http("GET", f"/v1/jobs/{job['id']}/log", as_user=users.USER)
        self.assertEqual(log.status, 200)
        self.assertTrue(log.headers["content-type"].startswith("text/plain"))
        self.assertIn('{"x":[1,2,3]}', log.body)
        self.assertIn("to stderr", log.body)
        tail = self.gw.http("GET", f"/v1/jobs/{job['id']}/log?offset=5", as_user=users.USER)
        self.assertEqual(tail.body, log.body[5:])

    def test_deeply_nested_result(self):
        # json-c parses 32 levels by default: the result answered 500 and the interim result
        # was dropped (found by tests/fuzz/fuzz-markers).
        nested = []
        for _ in range(99):
            nested = [nested]
        job = self.submit("deep").json
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        res = self.gw.http("GET", f"/v1/jobs/{job['id']}/result", as_user=users.USER)
        self.assertEqual(res.status, 200, res.body)
        self.assertEqual(res.json, {"deep": nested})
        interim = self.gw.http("GET", f"/v1/jobs/{job['id']}/interim-results", as_user=users.USER)
        self.assertEqual(interim.status, 200, interim.body)
        self.assertEqual(interim.json, [nested])

    def test_started_as_gateway_worker_run(self):
        if not os.access(os.path.join(os.path.dirname(worker_path()), "gateway-worker-run"), os.X_OK):
            self.skipTest("no gateway-worker-run next to " + worker_path())
        jid = self.submit("echo").json["id"]
        self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "SUCCEEDED")
        self.assertRegex(self.gw.stderr_text(), rf"Job {jid}: started worker \d+ \(\S*/gateway-worker-run\)")

    def test_default_memory_limit_is_a_quarter_of_ram(self):
        # no MemoryMax in the configuration: a job must still not be able to take the machine
        jid = self.submit("echo").json["id"]
        self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "SUCCEEDED")
        with open(os.path.join(self.gw.state_dir, "jobs", jid, "job.json")) as f:
            spec = json.load(f)
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        self.assertEqual(spec["resources"]["memory"], ram // 4)

    def test_failed_job(self):
        job = self.submit("fail").json
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "FAILED")
        self.assertEqual(done["exitCode"], 3)
        self.assertEqual(done["error"]["code"], "EXIT_CODE")
        res = self.gw.http("GET", f"/v1/jobs/{job['id']}/result", as_user=users.USER)
        self.assertEqual(res.status, 200)
        self.assertEqual(res.json["code"], "EXIT_CODE")
        self.assertIn("going to fail", res.json["detail"])

    def test_result_before_end_is_conflict(self):
        job = self.submit("sleep", params={"sleep": 30}).json
        self.cleanup_job(job["id"])
        r = self.gw.http("GET", f"/v1/jobs/{job['id']}/result", as_user=users.USER)
        self.assertError(r, 409, "Conflict")

    def test_bad_submissions(self):
        svc = self.services["echo"]
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", "{not json", as_user=users.USER)
        self.assertError(r, 400, "BadRequest")
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", [1, 2], as_user=users.USER)
        self.assertError(r, 400, "InvalidArgument")
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", {"data": {}, "bogus": 1}, as_user=users.USER)
        self.assertError(r, 400, "InvalidArgument", "bogus")
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", "{}", content_type="text/plain", as_user=users.USER)
        self.assertError(r, 415, "UnsupportedMediaType")
        # refused from Content-Length alone (Expect: 100-continue, so curl does not send it anyway)
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", {"data": "x" * (2 << 20)}, as_user=users.USER,
                         headers={"Expect": "100-continue"})
        self.assertError(r, 413, "PayloadTooLarge")
        r = self.gw.http("POST", "/v1/services/no-such-service/jobs", {}, as_user=users.USER)
        self.assertError(r, 404, "NotFound")
        for path in ("/v1/jobs/nope", "/v1/jobs/../../etc", "/v1/jobs/01234567-89ab-4def-8123-456789abcdef"):
            r = self.gw.http("GET", path, as_user=users.USER)
            self.assertEqual(r.status, 404, path)
        r = self.gw.http("GET", "/v1/jobs?limit=abc", as_user=users.USER)
        self.assertError(r, 400, "InvalidArgument", "limit")
        r = self.gw.http("GET", "/v1/jobs?status=BOGUS", as_user=users.USER)
        self.assertError(r, 400, "InvalidArgument", "status")
        r = self.gw.http("DELETE", "/v1/jobs", as_user=users.USER)
        self.assertError(r, 405, "MethodNotAllowed")

    def test_unpullable_image_fails_job(self):
        svc = self.name("nopull")
        r = self.gw.http("POST", "/v1/services", {"name": svc, "image": f"{self.registry.host}/missing:1"})
        self.assertEqual(r.status, 201, r.body)
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", {}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        done = self.wait_status(r.json["id"], TERMINAL)
        self.assertEqual(done["status"], "FAILED")
        self.assertEqual(done["error"]["code"], "IMAGE_PULL_FAILED")
        self.assertTrue(done["error"]["message"])

    def test_cancel_running(self):
        job = self.submit("sleep", params={"sleep": 60}).json
        self.wait_log(job["id"], "sleeping 60")
        r = self.gw.http("PUT", f"/v1/jobs/{job['id']}/cancel", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        done = self.wait_status(job["id"], TERMINAL, timeout=30)
        self.assertEqual(done["status"], "CANCELLED")
        # idempotent
        r = self.gw.http("PUT", f"/v1/jobs/{job['id']}/cancel", as_user=users.USER)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["status"], "CANCELLED")

    def test_cancel_pending_while_image_pulls(self):
        svc = self.name("slowpull")
        r = self.gw.http("POST", "/v1/services", {"name": svc, "image": self.slow_ref,
                                                   "command": ["/bin/sh", "-c", "echo should-not-run"]})
        self.assertEqual(r.status, 201, r.body)
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", {}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        jid = r.json["id"]
        self.assertEqual(self.job(jid)["status"], "PENDING")
        # the pull is under way (through the slow proxy), the job waits for it
        procs.wait_for(lambda: self.slow.connections > 0, timeout=10, what="the pull to reach the registry")
        self.assertEqual(self.job(jid)["status"], "PENDING")
        r = self.gw.http("PUT", f"/v1/jobs/{jid}/cancel", as_user=users.USER)
        self.assertEqual(r.json["status"], "CANCELLED")
        self.assertIsNone(r.json["startedAt"])
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}/log", as_user=users.USER).body, "")
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "jobs", jid, "worker.pid")))

    def test_cancel_right_after_submit(self):
        # Whatever state the job is in when the cancel arrives (worker perhaps still starting),
        # it ends CANCELLED, never UNKNOWN — and at once: a SIGTERM that reached the sandbox's
        # init before it took signals was dropped by the kernel (pid 1 of a pid namespace
        # without a handler), and the cancel waited for the 10 s kill grace.
        for _ in range(20):
            jid = self.submit("sleep", params={"sleep": 60}).json["id"]
            self.gw.http("PUT", f"/v1/jobs/{jid}/cancel", as_user=users.USER)
            self.assertEqual(self.wait_status(jid, TERMINAL, timeout=5)["status"], "CANCELLED")

    def test_cancel_queued_never_starts(self):
        # JobsPerUser=2: the third one waits QUEUED.
        first = [self.submit("sleep", params={"sleep": 60}, as_user=users.OTHER).json for _ in range(2)]
        for j in first:
            self.cleanup_job(j["id"], as_user=users.OTHER)
        third = self.submit("sleep", params={"sleep": 60}, as_user=users.OTHER).json
        self.assertEqual(self.job(third["id"], as_user=users.OTHER)["status"], "QUEUED")
        r = self.gw.http("PUT", f"/v1/jobs/{third['id']}/cancel", as_user=users.OTHER)
        self.assertEqual(r.json["status"], "CANCELLED")
        for j in first:
            self.gw.http("PUT", f"/v1/jobs/{j['id']}/cancel", as_user=users.OTHER)
        for j in first:
            self.wait_status(j["id"], TERMINAL, as_user=users.OTHER)
        final = self.job(third["id"], as_user=users.OTHER)
        self.assertEqual(final["status"], "CANCELLED")
        self.assertIsNone(final["startedAt"])
        log = self.gw.http("GET", f"/v1/jobs/{third['id']}/log", as_user=users.OTHER)
        self.assertEqual(log.body, "")

    def test_jobs_per_user_and_fair_share(self):
        uid = users.uid_of(users.ADMIN)
        # JobsPerUser=2: five jobs, never more than two with a slot at once
        ids = [self.submit("sleep", params={"sleep": 2}, as_user=users.ADMIN).json["id"] for _ in range(5)]
        other = self.submit("sleep", params={"sleep": 1}, as_user=users.USER).json["id"]
        seen_max = 0
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            running = self.running_of(uid, self.services["sleep"])
            seen_max = max(seen_max, len(running))
            self.assertLessEqual(len(running), 2, running)
            states = [self.job(i, as_user=users.ADMIN)["status"] for i in ids]
            if all(s in TERMINAL for s in states):
                break
            time.sleep(0.2)  # sampling the state over time is the assertion itself
        self.assertEqual(seen_max, 2)
        self.assertEqual(states, ["SUCCEEDED"] * 5)
        # the other user's job was not held up behind the first user's queue
        o = self.wait_status(other, TERMINAL)
        self.assertEqual(o["status"], "SUCCEEDED")
        first_two_end = sorted(self.job(i, as_user=users.ADMIN)["endedAt"] for i in ids)[1]
        self.assertLess(o["startedAt"], first_two_end)

    def test_active_jobs_per_user_limit(self):
        ids = [self.submit("sleep", params={"sleep": 60}, as_user=users.OTHER).json["id"]
               for _ in range(self.active_jobs_per_user)]
        for i in ids:
            self.cleanup_job(i, as_user=users.OTHER)
        r = self.submit("sleep", as_user=users.OTHER, status=429)
        self.assertError(r, 429, "LimitExceeded", "ActiveJobsPerUser")
        # D-Bus says the same with a named error
        p, err = self.gw.gdbus_call("SubmitJob", self.services["sleep"], "{}", "{}", as_user=users.OTHER)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.LimitExceeded")
        # another user is not affected
        ok = self.submit("echo", as_user=users.USER).json
        self.wait_status(ok["id"], TERMINAL)
        # cancelling frees room
        self.gw.http("PUT", f"/v1/jobs/{ids[-1]}/cancel", as_user=users.OTHER)
        self.wait_status(ids[-1], TERMINAL, as_user=users.OTHER)
        again = self.submit("echo", as_user=users.OTHER).json
        self.cleanup_job(again["id"], as_user=users.OTHER)

    def test_authorization_across_users(self):
        job = self.submit("sleep", params={"sleep": 60}, as_user=users.USER).json
        self.cleanup_job(job["id"])
        jid = job["id"]
        for method, path in (("GET", f"/v1/jobs/{jid}"), ("GET", f"/v1/jobs/{jid}/result"),
                             ("GET", f"/v1/jobs/{jid}/log"), ("GET", f"/v1/jobs/{jid}/interim-results"),
                             ("PUT", f"/v1/jobs/{jid}/cancel")):
            r = self.gw.http(method, path, as_user=users.OTHER)
            self.assertError(r, 404, "NotFound")
        self.assertNotEqual(self.job(jid)["status"], "CANCELLED")
        # own listing has no foreign jobs; ?all=1 is for admins only
        mine = self.gw.http("GET", "/v1/jobs", as_user=users.OTHER).json["jobs"]
        self.assertNotIn(jid, [j["id"] for j in mine])
        r = self.gw.http("GET", "/v1/jobs?all=1", as_user=users.OTHER)
        self.assertError(r, 403, "AccessDenied")
        # an admin (polkit rule for the admin group) sees it, root too
        r = self.gw.http("GET", f"/v1/jobs/{jid}", as_user=users.ADMIN)
        self.assertEqual(r.status, 200, r.body)
        r = self.gw.http("GET", "/v1/jobs?all=1", as_user=users.ADMIN)
        self.assertIn(jid, [j["id"] for j in r.json["jobs"]])
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}", as_user=None).status, 200)
        # D-Bus: the job object does not exist for another user
        path = "/org/gatewayd/Gateway1/job/" + bus_path_encode(jid)
        p = self.gw.busctl("get-property", "org.gatewayd.Gateway1", path, "org.gatewayd.Gateway1.Job", "Status",
                           as_user=users.OTHER)
        self.assertNotEqual(p.returncode, 0)
        p = self.gw.busctl("get-property", "org.gatewayd.Gateway1", path, "org.gatewayd.Gateway1.Job", "Status",
                           as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        # the admin cancels it
        r = self.gw.http("PUT", f"/v1/jobs/{jid}/cancel", as_user=users.ADMIN)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "CANCELLED")

    def test_list_filters_and_pagination(self):
        ids = [self.submit("echo", as_user=users.USER).json["id"] for _ in range(3)]
        for i in ids:
            self.wait_status(i, TERMINAL)
        svc = self.services["echo"]
        r = self.gw.http("GET", f"/v1/jobs?service={svc}&status=SUCCEEDED&limit=1000", as_user=users.USER)
        listed = [j["id"] for j in r.json["jobs"]]
        for i in ids:
            self.assertIn(i, listed)
        self.assertTrue(all(j["service"] == svc and j["status"] == "SUCCEEDED" for j in r.json["jobs"]))
        # cursor paging walks everything exactly once
        seen, cursor = [], None
        while True:
            q = f"/v1/jobs?service={svc}&limit=1" + (f"&cursor={cursor}" if cursor else "")
            page = self.gw.http("GET", q, as_user=users.USER).json
            seen += [j["id"] for j in page["jobs"]]
            cursor = page["nextCursor"]
            if not cursor:
                break
        self.assertEqual(seen, [j["id"] for j in self.gw.http(
            "GET", f"/v1/jobs?service={svc}&limit=1000", as_user=users.USER).json["jobs"]])
        page = self.gw.http("GET", f"/v1/jobs?service={svc}&limit=1&offset=1", as_user=users.USER).json
        self.assertEqual(page["jobs"][0]["id"], seen[1])

    def test_log_follow_streams_until_end(self):
        job = self.submit("sleep", params={"sleep": 2}).json
        t0 = time.monotonic()
        r = self.gw.http("GET", f"/v1/jobs/{job['id']}/log?follow=1", as_user=users.USER, timeout=60)
        self.assertEqual(r.status, 200)
        self.assertIn("sleeping 2", r.body)
        # the stream ended only with the job
        self.assertIn(self.job(job["id"])["status"], TERMINAL)
        self.assertGreater(time.monotonic() - t0, 1.0)
        # and the daemon kept serving meanwhile (checked from another thread while following)
        job2 = self.submit("sleep", params={"sleep": 3}).json
        result = {}
        th = threading.Thread(target=lambda: result.update(
            r=self.gw.http("GET", f"/v1/jobs/{job2['id']}/log?follow=1", as_user=users.USER, timeout=60)))
        th.start()
        self.wait_log(job2["id"], "sleeping 3")
        self.assertServing()
        th.join(60)
        self.assertIn("sleeping 3", result["r"].body)

    def test_dbus_submit_and_job_object(self):
        with BusMonitor(self.bus) as mon:
            p, data = self.gw.call("SubmitJob", "sss", self.services["echo"], '{"a": 1}', "", as_user=users.USER)
            self.assertEqual(p.returncode, 0, p.stderr)
            path = data[0]
            self.assertTrue(path.startswith("/org/gatewayd/Gateway1/job/"))
            jid = bus_path_decode(path.rsplit("/", 1)[1])
            new = mon.wait_signal("JobNew", path="/org/gatewayd/Gateway1")
            self.assertEqual(new["payload"]["data"], [jid, path])
            # the end is announced, and only after it is committed: a read right then sees it
            mon.wait_signal("PropertiesChanged", path=path, timeout=60,
                            predicate=lambda m: "SUCCEEDED" in json.dumps(m.get("payload")))
            self.assertEqual(self.job(jid)["status"], "SUCCEEDED")
            mon.wait_signal("InterimResult", path=path)
        iface = "org.gatewayd.Gateway1.Job"
        p, data = self.gw.call("GetResult", as_user=users.USER, path=path, iface=iface)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(data[0]).get("data"), {"a": 1}, data)
        p = self.gw.busctl("--json=short", "get-property", "org.gatewayd.Gateway1", path, iface, "Status",
                           as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["data"], "SUCCEEDED", p.stdout)
        p, data = self.gw.call("GetLog", "t", "0", as_user=users.USER, path=path, iface=iface)
        self.assertIn(b"to stderr", bytes(data[0]))
        self.assertTrue(data[2])
        p, data = self.gw.call("ListJobs", "b", "false", as_user=users.USER)
        self.assertIn(jid, [row[0] for row in data[0]])
        p, err = self.gw.gdbus_call("SubmitJob", "no-such-service", "{}", "{}", as_user=users.USER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NoSuchService")
        p, err = self.gw.gdbus_call("SubmitJob", self.services["echo"], "{bad", "{}", as_user=users.USER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.BadRequest")
        p, err = self.gw.gdbus_call("ListJobs", GVariantText("true"), as_user=users.OTHER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.AccessDenied")

    def test_gatewayctl(self):
        svc = self.services["echo"]
        p = self.gw.gatewayctl("submit", svc, "--data=-", "--wait", "--json=short", as_user=users.USER,
                               input='{"from": "ctl"}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"data": {"from": "ctl"}, "params": {}})

        p = self.gw.gatewayctl("submit", svc, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        jid = p.stdout.strip()
        self.assertRegex(jid, r"^[0-9a-f-]{36}$")
        self.wait_status(jid, TERMINAL)
        p = self.gw.gatewayctl("jobs", "--json=short", as_user=users.USER)
        self.assertIn(jid, [j["id"] for j in json.loads(p.stdout)])
        p = self.gw.gatewayctl("jobs", as_user=users.USER)
        self.assertIn(jid, p.stdout)
        self.assertIn("SUCCEEDED", p.stdout)
        p = self.gw.gatewayctl("job", "show", jid, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("SUCCEEDED", p.stdout)
        p = self.gw.gatewayctl("job", "show", jid, "--json=short", as_user=users.USER)
        self.assertEqual(json.loads(p.stdout)["exitCode"], 0)
        p = self.gw.gatewayctl("result", jid, as_user=users.USER)
        self.assertEqual(json.loads(p.stdout)["params"], {})
        p = self.gw.gatewayctl("logs", jid, as_user=users.USER)
        self.assertIn("to stderr", p.stdout)
        # someone else's job does not exist for gatewayctl either
        p = self.gw.gatewayctl("job", "show", jid, as_user=users.OTHER)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("No job", p.stderr)

        # logs -f follows a running job to its end; cancel stops one
        p = self.gw.gatewayctl("submit", self.services["sleep"], "--params=-", as_user=users.USER,
                               input='{"sleep": 2}')
        jid = p.stdout.strip()
        p = self.gw.gatewayctl("logs", "-f", jid, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("sleeping 2", p.stdout)
        self.assertIn(self.job(jid)["status"], TERMINAL)
        p = self.gw.gatewayctl("submit", self.services["sleep"], as_user=users.USER)
        jid = p.stdout.strip()
        p = self.gw.gatewayctl("cancel", jid, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "CANCELLED")
        # a failing job makes --wait fail; bad input is refused before anything is sent
        p = self.gw.gatewayctl("submit", self.services["fail"], "--wait", as_user=users.USER)
        self.assertEqual(p.returncode, 1)
        self.assertIn("EXIT_CODE", p.stdout)
        p = self.gw.gatewayctl("submit", svc, "--data=-", as_user=users.USER, input="{nope")
        self.assertEqual(p.returncode, 1)
        self.assertIn("not valid JSON", p.stderr)
        p = self.gw.gatewayctl("submit", "no-such-service", as_user=users.USER)
        self.assertEqual(p.returncode, 1)
        self.assertIn("no-such-service", p.stderr)

    # ---- removal ----

    def test_remove_finished_job_by_owner(self):
        jid = self.submit("echo", as_user=users.USER).json["id"]
        self.wait_status(jid, TERMINAL)
        self.assertTrue(os.path.isdir(self.spool(jid)))
        path = "/org/gatewayd/Gateway1/job/" + bus_path_encode(jid)
        with BusMonitor(self.bus) as mon:
            r = self.gw.http("DELETE", f"/v1/jobs/{jid}", as_user=users.USER)
            self.assertEqual(r.status, 204, r.body)
            # gone when the answer comes: row, spool, and the announcement follows
            self.assertError(self.gw.http("GET", f"/v1/jobs/{jid}", as_user=users.USER), 404, "NotFound")
            self.assertFalse(os.path.exists(self.spool(jid)))
            sig = mon.wait_signal("JobRemoved", path="/org/gatewayd/Gateway1")
            self.assertEqual(sig["payload"]["data"], [jid, path])
            mon.wait_signal("InterfacesRemoved", path="/org/gatewayd/Gateway1",
                            predicate=lambda m: m["payload"]["data"][0] == path)
        self.assertNotIn(jid, [j["id"] for j in self.gw.http("GET", "/v1/jobs?all=1").json["jobs"]])
        self.assertError(self.gw.http("DELETE", f"/v1/jobs/{jid}", as_user=users.USER), 404, "NotFound")
        p = self.gw.busctl("get-property", "org.gatewayd.Gateway1", path, "org.gatewayd.Gateway1.Job", "Status",
                           as_user=users.USER)
        self.assertNotEqual(p.returncode, 0)

    def test_remove_unfinished_job_is_conflict(self):
        jid = self.submit("sleep", params={"sleep": 60}, as_user=users.USER).json["id"]
        self.cleanup_job(jid)
        self.wait_log(jid, "sleeping 60")
        r = self.gw.http("DELETE", f"/v1/jobs/{jid}", as_user=users.USER)
        self.assertError(r, 409, "Conflict", "cancel")
        p, err = self.gw.gdbus_call("RemoveJob", jid, as_user=users.USER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.Conflict")
        self.assertEqual(self.job(jid)["status"], "RUNNING")
        self.assertTrue(os.path.isdir(self.spool(jid)))
        # cancel first, then it can go
        self.gw.http("PUT", f"/v1/jobs/{jid}/cancel", as_user=users.USER)
        self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "CANCELLED")
        self.assertEqual(self.gw.http("DELETE", f"/v1/jobs/{jid}", as_user=users.USER).status, 204)
        self.assertFalse(os.path.exists(self.spool(jid)))

    def test_remove_someone_elses_job(self):
        iface = "org.gatewayd.Gateway1.Job"
        jids = [self.submit("echo", as_user=users.USER).json["id"] for _ in range(4)]
        for jid in jids:
            self.wait_status(jid, TERMINAL)
        # not yours: it does not exist for you, over HTTP and D-Bus alike
        r = self.gw.http("DELETE", f"/v1/jobs/{jids[0]}", as_user=users.OTHER)
        self.assertError(r, 404, "NotFound")
        p, err = self.gw.gdbus_call("RemoveJob", jids[0], as_user=users.OTHER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NoSuchJob")
        self.assertEqual(self.job(jids[0])["status"], "SUCCEEDED")
        self.assertTrue(os.path.isdir(self.spool(jids[0])))
        # an admin (polkit org.gatewayd.manage-jobs) removes it, over HTTP and D-Bus; root too
        self.assertEqual(self.gw.http("DELETE", f"/v1/jobs/{jids[0]}", as_user=users.ADMIN).status, 204)
        p, _ = self.gw.call("RemoveJob", "s", jids[1], as_user=users.ADMIN)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.gw.http("DELETE", f"/v1/jobs/{jids[2]}", as_user=None).status, 204)
        # the owner through the job object
        with BusMonitor(self.bus) as mon:
            path = "/org/gatewayd/Gateway1/job/" + bus_path_encode(jids[3])
            p, _ = self.gw.call("Remove", as_user=users.USER, path=path, iface=iface)
            self.assertEqual(p.returncode, 0, p.stderr)
            mon.wait_signal("JobRemoved", path="/org/gatewayd/Gateway1",
                            predicate=lambda m: m["payload"]["data"][0] == jids[3])
        for jid in jids:
            self.assertError(self.gw.http("GET", f"/v1/jobs/{jid}", as_user=users.USER), 404, "NotFound")
            self.assertFalse(os.path.exists(self.spool(jid)))

    def test_gatewayctl_job_rm(self):
        done = self.submit("echo", as_user=users.USER).json["id"]
        other = self.submit("echo", as_user=users.USER).json["id"]
        running = self.submit("sleep", params={"sleep": 60}, as_user=users.USER).json["id"]
        self.cleanup_job(running)
        self.wait_status(done, TERMINAL)
        self.wait_status(other, TERMINAL)
        p = self.gw.gatewayctl("job", "rm", done, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertError(self.gw.http("GET", f"/v1/jobs/{done}", as_user=users.USER), 404, "NotFound")
        self.assertFalse(os.path.exists(self.spool(done)))
        p = self.gw.gatewayctl("job", "rm", done, as_user=users.USER)
        self.assertEqual(p.returncode, 1)
        self.assertIn("No job", p.stderr)
        p = self.gw.gatewayctl("job", "rm", running, as_user=users.USER)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cancel", p.stderr)
        p = self.gw.gatewayctl("job", "rm", other, as_user=users.OTHER)
        self.assertEqual(p.returncode, 1)
        self.assertIn("No job", p.stderr)
        p = self.gw.gatewayctl("job", "rm", other, as_user=users.ADMIN)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertError(self.gw.http("GET", f"/v1/jobs/{other}", as_user=users.USER), 404, "NotFound")
        p = self.gw.gatewayctl("--help")
        self.assertIn("job rm ID...", p.stdout)

class JobsWorkerFallbackTest(JobsBase):
    """gatewayd starts gateway-worker-run (the run verb without the pull libraries) when it is
    next to gateway-worker, else "gateway-worker run"."""

    @classmethod
    def gatewayd_worker_path(cls):
        # a gateway-worker alone in its directory
        cls.lone = procs.TempDir(prefix="gatewayd-lone-worker-")
        os.chmod(cls.lone.path, 0o755)
        cls.lone_worker = os.path.join(cls.lone.path, "gateway-worker")
        os.symlink(worker_path(), cls.lone_worker)
        return cls.lone_worker

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            if getattr(cls, "lone", None):
                cls.lone.cleanup()

    def test_falls_back_to_run_verb(self):
        jid = self.submit("echo", data={"n": 1}).json["id"]
        done = self.wait_status(jid, TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        res = self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER)
        self.assertEqual(res.json, {"data": {"n": 1}, "params": {}})
        self.assertIn(f"({self.lone_worker})", self.gw.stderr_text())
        self.assertNotIn("gateway-worker-run", self.gw.stderr_text())


class JobsConcludedAtDoneTest(JobsBase):
    """A job ends when its worker says done (exit.json is durable then), not when the worker has
    also cleaned up: its slot goes to the next job meanwhile, it can be removed at once, and the
    worker is still reaped. The worker here is a wrapper that lingers 2 s after the real one."""

    @classmethod
    def gatewayd_worker_path(cls):
        cls.wrap = procs.TempDir(prefix="gatewayd-lingering-worker-")
        os.chmod(cls.wrap.path, 0o755)
        cls.marks = os.path.join(cls.wrap.path, "marks")
        os.mkdir(cls.marks)
        path = os.path.join(cls.wrap.path, "lingering-worker")
        with open(path, "w") as f:
            f.write(f"""#!/bin/sh
echo $$ > {cls.marks}/$$
{worker_path()} "$@"
rc=$?
sleep 2
rm -f {cls.marks}/$$
exit $rc
""")
        os.chmod(path, 0o755)
        return path

    def test_concluded_before_the_worker_exits(self):
        jid = self.submit("echo", data={"n": 2}).json["id"]
        done = self.wait_status(jid, TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        lingering = os.listdir(self.marks)
        self.assertEqual(len(lingering), 1, "the job ended only once its worker had exited")
        res = self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER)
        self.assertEqual(res.json, {"data": {"n": 2}, "params": {}})
        r = self.gw.http("DELETE", f"/v1/jobs/{jid}", as_user=users.USER)
        self.assertIn(r.status, (200, 204), r.body)
        self.assertTrue(os.path.exists(os.path.join(self.marks, lingering[0])))
        # reaped by gatewayd once it exits: no zombie left
        pid = int(lingering[0])
        procs.wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=30, what="the worker to be reaped")
        self.assertTrue(self.gw.alive())


class JobsSlotFreedAtSandboxEndTest(JobsBase):
    """A cluster is a sandbox: once a job's sandbox has ended, its slot of MaxClusters goes to the
    next job while its worker makes the outcome durable (the worker says FINISHING). The job
    stays RUNNING until then. The workers here run under strace, which holds each fsync() of
    their main thread (result.json, exit.json and its directory) for FSYNC_DELAY seconds: the
    first job's outcome takes at least that long to be stored after its sandbox has ended."""
    max_clusters = 1
    jobs_per_user = 0
    FSYNC_DELAY = 3

    @classmethod
    def gatewayd_worker_path(cls):
        cls.wrap, path = slowfsync.worker(worker_path(), cls.FSYNC_DELAY)
        return path

    def local_node(self):
        r = self.gw.http("GET", "/v1/platforms/local", as_user=None)
        self.assertEqual(r.status, 200, r.body)
        return r.json["nodes"][0]

    def test_next_job_starts_while_the_outcome_is_stored(self):
        first = self.submit("echo", data={"n": 1}).json["id"]
        second = self.submit("echo", data={"n": 2}).json["id"]
        self.assertEqual(self.job(second)["status"], "QUEUED")
        # The second job runs while the first one's outcome is still being stored.
        self.wait_status(second, ("RUNNING",) + TERMINAL, timeout=60)
        self.assertEqual(self.job(first)["status"], "RUNNING",
                         "the second job started only once the first one's outcome was stored")
        self.assertLessEqual(self.local_node()["running"], 1)
        for jid, n in ((first, 1), (second, 2)):
            done = self.wait_status(jid, TERMINAL, timeout=120)
            self.assertEqual(done["status"], "SUCCEEDED", done)
            res = self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER)
            self.assertEqual(res.json, {"data": {"n": n}, "params": {}})
        self.assertEqual(self.local_node()["running"], 0)


class JobsMemoryMaxTest(JobsBase):
    """Limits.MemoryMax reaches the job's sandbox."""
    extra_config = {"Limits": {"MemoryMax": "64M"}}

    def test_job_over_memory_max_is_killed(self):
        # the shell doubles a string until it no longer fits
        svc = f"jobs-hog-{os.getpid() % 10000}"
        r = self.gw.http("POST", "/v1/services", {"name": svc, "image": self.image_ref, "command": [
            "/bin/sh", "-c", 'echo started; x=0123456789abcdef; while :; do x="$x$x"; done']})
        self.assertEqual(r.status, 201, r.body)
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", {}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        done = self.wait_status(r.json["id"], TERMINAL)
        self.assertEqual(done["status"], "FAILED", done)
        self.assertEqual(done["error"]["code"], "OUT_OF_MEMORY", done)
        self.assertIn(str(64 << 20), done["error"]["message"])


class JobsDefaultLimitsTest(JobsBase):
    """Without JobsPerUser/ActiveJobsPerUser in the configuration, the serverless gateway's
    defaults apply: LIMITS_JOBS_PER_USER = 2 jobs of a user run at a time (the third waits
    QUEUED), LIMITS_ACTIVE_JOBS_PER_USER = 50 unfinished jobs (the 51st is refused, 429)."""
    jobs_per_user = None
    active_jobs_per_user = None

    def test_defaults(self):
        uid = users.uid_of(users.OTHER)
        first = []
        for _ in range(2):
            first.append(self.submit("sleep", params={"sleep": 60}, as_user=users.OTHER).json["id"])
            self.cleanup_job(first[-1], as_user=users.OTHER)
        for jid in first:
            self.wait_log(jid, "sleeping 60", as_user=users.OTHER)
            self.assertEqual(self.job(jid, as_user=users.OTHER)["status"], "RUNNING")
        # A third job is accepted and waits while two run; so do the rest up to 50 unfinished.
        queued = []
        for _ in range(48):
            queued.append(self.submit("sleep", params={"sleep": 60}, as_user=users.OTHER).json["id"])
            self.cleanup_job(queued[-1], as_user=users.OTHER)
        for jid in (queued[0], queued[-1]):
            self.assertEqual(self.job(jid, as_user=users.OTHER)["status"], "QUEUED")
        self.assertEqual(sorted(j["id"] for j in self.running_of(uid)), sorted(first))
        r = self.submit("sleep", as_user=users.OTHER, status=429)
        self.assertError(r, 429, "LimitExceeded", "ActiveJobsPerUser")
        self.assertIn("50", r.error_message())
        # Cancelled queued jobs leave the cleanups less to do (and show the room comes back).
        self.gw.http("PUT", f"/v1/jobs/{queued[-1]}/cancel", as_user=users.OTHER)
        self.cleanup_job(self.submit("echo", as_user=users.OTHER).json["id"], as_user=users.OTHER)


class JobsRecoveryTest(JobsBase):
    jobs_per_user = 1

    def test_kill9_recovery(self):
        # One running (long), one that will finish while gatewayd is down, one queued behind.
        running = self.submit("sleep", params={"sleep": 6}, as_user=users.USER).json["id"]
        short = self.submit("echo", as_user=users.OTHER).json["id"]
        queued = self.submit("sleep", params={"sleep": 1}, as_user=users.USER).json["id"]
        self.wait_log(running, "sleeping 6")
        self.assertEqual(self.job(queued)["status"], "QUEUED")
        worker_pid = int(open(os.path.join(self.gw.state_dir, "jobs", running, "worker.pid")).read().strip())

        self.gw.kill(signal.SIGKILL)
        # the worker survived gatewayd
        os.kill(worker_pid, 0)
        mon = BusMonitor(self.bus).start()
        self.addCleanup(mon.stop)
        self.gw.start()

        self.assertIn(self.job(queued)["status"], ("QUEUED", "PENDING", "RUNNING", "SUCCEEDED"))
        # following the re-attached job's log (no event pipe any more) ends with the job
        f = self.gw.http("GET", f"/v1/jobs/{running}/log?follow=1", as_user=users.USER, timeout=60)
        self.assertIn("sleeping 6", f.body)
        self.assertIn(self.job(running)["status"], TERMINAL)
        done = self.wait_status(running, TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        # its interim result, printed after the restart, was announced from the spool
        sig = mon.wait_signal("InterimResult", path="/org/gatewayd/Gateway1/job/" + bus_path_encode(running))
        self.assertEqual(sig["payload"]["data"], [0, '{"woke":true}'])
        res = self.gw.http("GET", f"/v1/jobs/{running}/result", as_user=users.USER)
        self.assertEqual(res.json, {"slept": 6})
        self.assertIn("sleeping 6", self.gw.http("GET", f"/v1/jobs/{running}/log", as_user=users.USER).body)
        s = self.wait_status(short, TERMINAL, as_user=users.OTHER)
        self.assertEqual(s["status"], "SUCCEEDED")
        r = self.gw.http("GET", f"/v1/jobs/{short}/interim-results", as_user=users.OTHER)
        self.assertEqual(r.json, [{"step": 1}, {"step": 2}])
        q = self.wait_status(queued, TERMINAL)
        self.assertEqual(q["status"], "SUCCEEDED")
        # none lost or duplicated
        mine = [j["id"] for j in self.gw.http("GET", "/v1/jobs", as_user=users.USER).json["jobs"]]
        self.assertEqual(mine.count(running), 1)
        self.assertEqual(mine.count(queued), 1)

    def test_graceful_restart_keeps_running_job(self):
        jid = self.submit("sleep", params={"sleep": 3}, as_user=users.ADMIN).json["id"]
        self.wait_log(jid, "sleeping 3", as_user=users.ADMIN)
        self.gw.restart()  # SIGTERM: the worker is left running, in its own session
        j = self.wait_status(jid, TERMINAL, as_user=users.ADMIN)
        self.assertEqual(j["status"], "SUCCEEDED", j)
        r = self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.ADMIN)
        self.assertEqual(r.json, {"slept": 3})

    def test_graceful_restart_while_image_pulls(self):
        # A job waits for a pull when gatewayd stops: the pull's waiters go with the daemon (under
        # ASan, LeakSanitizer at the class's end would report any left behind) and the job is
        # neither failed nor lost: the next gatewayd takes it up again.
        svc = self.name("restartpull")
        r = self.gw.http("POST", "/v1/services", {"name": svc, "image": self.slow_ref,
                                                   "command": ["/bin/sh", "-c", "echo should-not-run"]})
        self.assertEqual(r.status, 201, r.body)
        jid = self.gw.http("POST", f"/v1/services/{svc}/jobs", {}, as_user=users.USER).json["id"]
        before = self.slow.connections
        procs.wait_for(lambda: self.slow.connections > before, timeout=10, what="the pull to reach the registry")
        self.gw.restart()
        self.assertEqual(self.job(jid)["status"], "PENDING")
        procs.wait_for(lambda: self.slow.connections > before + 1, timeout=10, what="the pull to start again")
        r = self.gw.http("PUT", f"/v1/jobs/{jid}/cancel", as_user=users.USER)
        self.assertEqual(r.json["status"], "CANCELLED")
        self.gw.restart()    # a pull left without waiters is stopped too

    def test_worker_vanished_is_unknown(self):
        job = self.submit("sleep", params={"sleep": 60}, as_user=users.OTHER).json["id"]
        self.wait_log(job, "sleeping 60", as_user=users.OTHER)
        pidfile = os.path.join(self.gw.state_dir, "jobs", job, "worker.pid")
        worker_pid = int(open(pidfile).read().strip())
        self.gw.kill(signal.SIGKILL)
        os.kill(worker_pid, signal.SIGKILL)   # no exit.json, ever
        procs.wait_for(lambda: not os.path.exists(f"/proc/{worker_pid}/stat") or
                       open(f"/proc/{worker_pid}/stat").read().split(") ")[1].startswith("Z"),
                       timeout=10, what="worker to die")
        self.gw.start()
        j = self.wait_status(job, TERMINAL, as_user=users.OTHER)
        self.assertEqual(j["status"], "UNKNOWN")
        self.assertEqual(j["error"]["code"], "WORKER_LOST")
        self.assertTrue(j["error"]["message"])



def iso_to_epoch(text):
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


class JobsRetentionTest(JobsBase):
    """JobRetention: finished jobs go by themselves, on a timer at the next expiry, and at start
    for those that expired while gatewayd was not running."""
    job_retention = 1

    def test_finished_job_removed_after_retention(self):
        with BusMonitor(self.bus) as mon:
            jid = self.submit("echo", as_user=users.USER).json["id"]
            path = "/org/gatewayd/Gateway1/job/" + bus_path_encode(jid)
            removed = mon.wait_signal("JobRemoved", path="/org/gatewayd/Gateway1", timeout=60,
                                      predicate=lambda m: m["payload"]["data"][0] == jid)
            self.assertEqual(removed["payload"]["data"], [jid, path])
            # it had ended (and was announced so) before it went
            order = [m for m in mon.seen if m.get("path") in (path, "/org/gatewayd/Gateway1")]
            ended = [i for i, m in enumerate(order) if m.get("member") == "PropertiesChanged"
                     and "SUCCEEDED" in json.dumps(m.get("payload"))]
            self.assertTrue(ended, "the job's end was announced")
            self.assertLess(ended[0], order.index(removed))
        self.assertError(self.gw.http("GET", f"/v1/jobs/{jid}", as_user=users.USER), 404, "NotFound")
        self.assertFalse(os.path.exists(self.spool(jid)))

    def test_expired_while_down_removed_at_start(self):
        # finish a job under a long retention, then come back with a short one
        self.gw.write_config(dict(self.config, JobRetention="7:00:00:00"))
        self.gw.restart()
        self.addCleanup(lambda: (self.gw.stop_daemon(), self.gw.write_config(dict(self.config)), self.gw.start()))
        jid = self.submit("echo", as_user=users.USER).json["id"]
        ended = iso_to_epoch(self.wait_status(jid, TERMINAL)["endedAt"])
        self.gw.stop_daemon()
        # what a crash between the commit of a removal and the removal of the spool leaves behind
        orphan = str(uuid.uuid4())
        os.makedirs(os.path.join(self.spool(orphan), "input"))
        not_ours = os.path.join(self.gw.state_dir, "jobs", "not-a-job")
        os.makedirs(not_ours)
        # a row gatewayd cannot load (it skips it) still owns its spool
        unloadable = str(uuid.uuid4())
        os.makedirs(os.path.join(self.spool(unloadable), "input"))
        with sqlite3.connect(os.path.join(self.gw.state_dir, "state.db")) as db:
            db.execute("INSERT INTO jobs (id, service, platform, uid, gid, state, created_usec) "
                       "VALUES (?, 'x', 'local', 0, 0, 'BOGUS', 0)", (unloadable,))
        db.close()
        self.gw.write_config(dict(self.config))
        # no event marks the passing of JobRetention: wait out what is left of the second
        time.sleep(max(0.0, ended + 1.05 - time.time()))
        self.gw.start()
        # gone by the time gatewayd is ready, not later by its timer
        self.assertError(self.gw.http("GET", f"/v1/jobs/{jid}", as_user=users.USER), 404, "NotFound")
        self.assertFalse(os.path.exists(self.spool(jid)))
        self.assertFalse(os.path.exists(self.spool(orphan)))
        self.assertTrue(os.path.isdir(not_ours))
        os.rmdir(not_ours)
        self.assertTrue(os.path.isdir(self.spool(unloadable)))

class JobsIdleTest(JobsBase):
    """Idle exit waits for unfinished jobs: nobody else would watch them."""
    idle_timeout = 1

    def test_no_idle_exit_while_job_runs(self):
        jid = self.submit("sleep", params={"sleep": 4}).json["id"]
        # well past the idle timeout, with no client connected between the polls
        deadline = time.monotonic() + 60
        while True:
            self.assertTrue(self.gw.alive(), "gatewayd exited while a job was unfinished")
            status = self.job(jid)["status"]
            if status in TERMINAL:
                break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(1.5)  # longer than the idle timeout: the daemon must stay anyway
        self.assertEqual(status, "SUCCEEDED")
        # with the job done, it leaves on its own
        self.assertEqual(self.gw.wait_exit(timeout=20), 0)



class JobsImageMountTest(JobsBase):
    """An image's squashfs stays mounted a while after its last local job (gateway-worker run
    --image-linger): the next job of the image uses that mount. It goes at once when the image is
    removed or expired, and at gatewayd's shutdown."""

    def image_mounts(self):
        return rootfs.image_mounts(self.gw.runtime_dir)

    def entry_of(self, source):
        """The workers' mount entry (RUNTIME/worker/images/DEV-INO) of an image file."""
        st = os.stat(source)
        return os.path.realpath(os.path.join(self.gw.runtime_dir, "worker", "images", f"{st.st_dev:x}-{st.st_ino:x}"))

    def service_of(self, name, labels):
        images.push_image(self.registry, name, "1.0", images.busybox_image(labels=labels))
        svc = f"jobs-{name}-{os.getpid() % 10000}"
        r = self.gw.http("POST", "/v1/services", {"name": svc, "image": f"{self.registry.host}/{name}:1.0",
                                                   "command": ["/bin/sh", "-c", ECHO]})
        self.assertEqual(r.status, 201, r.body)
        return svc

    def run_job(self, svc):
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", {"data": {"x": 1}}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(self.wait_status(r.json["id"], TERMINAL)["status"], "SUCCEEDED")

    def new_mount(self, before):
        (source,) = [x for x in self.image_mounts() if x not in before]
        self.assertTrue(source.startswith(os.path.join(self.gw.state_dir, "images") + "/"), source)
        return source, os.path.basename(source)[:-len(".squashfs")]

    def test_image_mount_lingers_until_removal(self):
        svc = self.service_of("lingerbox", {"linger": "removal"})
        before = self.image_mounts()
        self.run_job(svc)
        source, image_id = self.new_mount(before)
        mount_id = self.image_mounts()[source]
        self.run_job(svc)
        self.assertEqual(self.image_mounts()[source], mount_id)     # the same mount, not a new one
        # the sandbox root made from it (src/worker/sandbox-root.h) lingers with it ...
        entry = self.entry_of(source)
        self.assertEqual(len(rootfs.mounts_under(entry)), 2, rootfs.mounts_under(entry))
        r = self.gw.http("DELETE", f"/v1/images/{image_id}", as_user=users.ADMIN)
        self.assertEqual(r.status, 204, r.body)
        self.assertNotIn(source, self.image_mounts())
        # ... and gatewayd's sweep unmounts both
        self.assertEqual(rootfs.mounts_under(entry), [])
        self.assertFalse(os.path.exists(entry))

    def test_image_mount_goes_on_expiry(self):
        svc = self.service_of("expirebox", {"linger": "expiry"})
        before = self.image_mounts()
        self.run_job(svc)
        source, image_id = self.new_mount(before)
        r = self.gw.http("POST", f"/v1/images/{image_id}/expire", as_user=users.ADMIN)
        self.assertEqual(r.status, 200, r.body)
        self.assertNotIn(source, self.image_mounts())

    def test_shutdown_leaves_no_mount(self):
        from harness import rootfs
        self.run_job(self.services["echo"])
        self.assertTrue(self.image_mounts())
        self.gw.stop_daemon()
        try:
            self.assertEqual(rootfs.mounts_under(self.gw.runtime_dir), [])
        finally:
            self.gw.start()


if __name__ == "__main__":
    unittest.main()
