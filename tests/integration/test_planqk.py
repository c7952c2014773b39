"""The PlanQK-compatible service API (/planqk/{service}/) against a real stack, every path and
status code checked against docs/openapi-planqk.yaml: exact keys of the job object, Location,
statuses, result and interim results, cancel, and 404 for other users' jobs."""
import hashlib
import os
import time
from urllib.parse import quote

from harness import openapi, procs, users
from test_jobs import TERMINAL, JobsBase

DOC = openapi.load(os.path.join(procs.source_dir(), "docs", "openapi-planqk.yaml"))


class PlanqkTest(JobsBase):
    jobs_per_user = 1
    active_jobs_per_user = 3

    def setUp(self):
        super().setUp()
        self.v = openapi.Validator(DOC)

    def call(self, method, template, status, service=None, job=None, body=None, query="", as_user=users.USER,
             **kw):
        """One request to /planqk/SERVICE + TEMPLATE (with {id} filled in); asserts STATUS, that the
        document lists it, and that the body matches the documented schema."""
        service = service or self.services["echo"]
        path = "/planqk/" + service + template.replace("{id}", job or "") + query
        r = self.gw.http(method, path, body, as_user=as_user, **kw)
        self.assertEqual(r.status, status, f"{method} {path}: {r.body}")
        schema = self.v.response_schema(template, method, status)  # KeyError: undocumented status
        if schema is not None:
            self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r.headers)
            problems = self.v.check(schema, r.json)
            self.assertEqual(problems, [], f"{method} {path} → {r.body}")
        for h in self.v.response_headers(template, method, status):
            self.assertIn(h.lower(), r.headers, f"{method} {path}: header {h} is documented")
        return r

    def wait_planqk(self, job, statuses, service=None, as_user=users.USER, timeout=60):
        last = {}

        def check():
            last["r"] = self.call("GET", "/{id}", 200, service=service, job=job, as_user=as_user)
            return last["r"].json["status"] in statuses
        procs.wait_for(check, timeout=timeout, what=f"job {job} to reach {statuses}")
        return last["r"].json

    def test_health(self):
        r = self.call("GET", "/", 200)
        self.assertEqual(r.json, {"status": "Service is up and running"})
        # with and without the trailing slash
        r = self.gw.http("GET", "/planqk/" + self.services["echo"], as_user=users.USER)
        self.assertEqual(r.status, 200)
        self.call("GET", "/", 404, service="no-such-service")

    def test_submit_poll_result_interim(self):
        r = self.call("POST", "/", 201, body={"data": {"n": 7}, "params": {"mode": "x"}})
        job = r.json
        self.assertEqual(set(job), {"id", "status", "createdAt", "startedAt", "endedAt"})
        self.assertEqual(job["status"], "PENDING")
        self.assertEqual(r.headers["location"], f"/planqk/{self.services['echo']}/{job['id']}")
        # the Location is where the job is
        loc = self.gw.http("GET", r.headers["location"], as_user=users.USER)
        self.assertEqual(loc.json["id"], job["id"])

        done = self.wait_planqk(job["id"], TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED")
        self.assertEqual(set(done), {"id", "status", "createdAt", "startedAt", "endedAt"})
        self.assertIsNotNone(done["startedAt"])
        self.assertIsNotNone(done["endedAt"])

        res = self.call("GET", "/{id}/result", 200, job=job["id"])
        # the result as printed, plus PlanQK's HAL links (test_planqk_clients checks those)
        self.assertEqual({k: v for k, v in res.json.items() if not k.startswith("_")},
                         {"data": {"n": 7}, "params": {"mode": "x"}})
        self.assertEqual(set(res.json["_links"]), {"self", "status"})
        allr = self.call("GET", "/{id}/interim-results", 200, job=job["id"])
        self.assertEqual(allr.json, [{"step": 1}, {"step": 2}])
        for q, want in (("?last=true", [{"step": 2}]), ("?last=false", [{"step": 1}, {"step": 2}])):
            self.assertEqual(self.call("GET", "/{id}/interim-results", 200, job=job["id"], query=q).json, want)
        self.call("GET", "/{id}/interim-results", 400, job=job["id"], query="?last=perhaps")
        # cancelling a finished job changes nothing
        c = self.call("PUT", "/{id}/cancel", 200, job=job["id"])
        self.assertEqual(c.json["status"], "SUCCEEDED")

    def test_failed_result(self):
        job = self.call("POST", "/", 201, service=self.services["fail"], body={"data": {}}).json
        done = self.wait_planqk(job["id"], TERMINAL, service=self.services["fail"])
        self.assertEqual(done["status"], "FAILED")
        res = self.call("GET", "/{id}/result", 200, service=self.services["fail"], job=job["id"])
        self.assertEqual(set(res.json), {"code", "detail", "_links", "_embedded"})
        self.assertEqual(res.json["_embedded"]["status"]["status"], "FAILED")
        self.assertEqual(res.json["code"], "EXIT_CODE")

    def test_queued_shows_pending_and_cancel_states(self):
        svc = self.services["sleep"]
        running = self.call("POST", "/", 201, service=svc, body={"params": {"sleep": 60}}).json["id"]
        queued = self.call("POST", "/", 201, service=svc, body={"params": {"sleep": 60}}).json["id"]
        self.cleanup_job(running)
        self.cleanup_job(queued)
        # natively QUEUED (JobsPerUser=1), PENDING in the PlanQK view
        self.assertEqual(self.job(queued)["status"], "QUEUED")
        self.assertEqual(self.call("GET", "/{id}", 200, service=svc, job=queued).json["status"], "PENDING")
        self.wait_planqk(running, ("RUNNING",), service=svc)
        self.call("GET", "/{id}/result", 409, service=svc, job=running)
        self.assertEqual(self.call("GET", "/{id}/interim-results", 200, service=svc, job=running).json, [])

        c = self.call("PUT", "/{id}/cancel", 200, service=svc, job=queued)
        self.assertEqual(c.json["status"], "CANCELLED")
        self.call("PUT", "/{id}/cancel", 200, service=svc, job=running)
        done = self.wait_planqk(running, TERMINAL, service=svc, timeout=30)
        self.assertEqual(done["status"], "CANCELLED")
        res = self.call("GET", "/{id}/result", 200, service=svc, job=running)
        self.assertEqual(res.json["code"], "CANCELLED")

    def test_errors(self):
        svc = self.services["echo"]
        self.call("POST", "/", 400, body="{broken")
        self.call("POST", "/", 400, body={"data": {}, "extra": True})
        self.call("POST", "/", 415, body="{}", content_type="text/plain")
        self.call("POST", "/", 404, service="no-such-service", body={})
        self.call("GET", "/{id}", 404, job="00000000-0000-4000-8000-000000000000")
        self.call("GET", "/{id}", 404, job="not-a-uuid")
        self.call("GET", "/{id}/result", 404, job="00000000-0000-4000-8000-000000000000")
        self.call("PUT", "/{id}/cancel", 404, job="00000000-0000-4000-8000-000000000000")
        # a job of another service is not found under this one
        job = self.call("POST", "/", 201, body={}).json["id"]
        self.call("GET", "/{id}", 404, service=self.services["fail"], job=job)
        r = self.gw.http("DELETE", f"/planqk/{svc}/{job}", as_user=users.USER)
        self.assertEqual(r.status, 405)
        self.wait_planqk(job, TERMINAL)

    def test_other_users_jobs_do_not_exist(self):
        job = self.call("POST", "/", 201, body={}, as_user=users.OTHER).json["id"]
        for method, t in (("GET", "/{id}"), ("GET", "/{id}/result"), ("GET", "/{id}/interim-results"),
                          ("PUT", "/{id}/cancel")):
            self.call(method, t, 404, job=job, as_user=users.USER)
        # the owner and an admin see it
        self.wait_planqk(job, TERMINAL, as_user=users.OTHER)
        self.call("GET", "/{id}", 200, job=job, as_user=users.ADMIN)

    def test_limit_exceeded(self):
        svc = self.services["sleep"]
        ids = [self.call("POST", "/", 201, service=svc, body={"params": {"sleep": 60}}, as_user=users.ADMIN).json["id"]
               for _ in range(3)]
        for i in ids:
            self.cleanup_job(i, as_user=users.ADMIN)
        r = self.call("POST", "/", 429, service=svc, body={}, as_user=users.ADMIN)
        self.assertEqual(r.json["error"]["code"], "LimitExceeded")

    def test_document_is_consistent(self):
        # every operation documents its success status and every $ref resolves
        v = self.v
        for path, item in DOC["paths"].items():
            for method, op in item.items():
                if method == "parameters":
                    continue
                self.assertTrue(any(s.startswith("2") for s in op["responses"]), f"{method} {path}")
                for status in op["responses"]:
                    v.response_schema(path, method, status)
        self.assertEqual(DOC["openapi"][:2], "3.")
        self.assertEqual(DOC["components"]["schemas"]["Job"]["required"],
                         ["id", "status", "createdAt", "startedAt", "endedAt"])


# Result files: what a job writes to /var/runtime/output ($OUTPUT_DIRECTORY) becomes the result's
# HAL links and GET …/result/{file}. Busybox's applets through /bin/busybox.
BB = "/bin/busybox"
FILES = ('o="$OUTPUT_DIRECTORY"; '
         f'printf "bin,count\\n0,3\\n1,4\\n" > "$o/counts.csv" && {BB} head -c 300000 /dev/urandom > "$o/random.bin" && '
         'printf "odd name" > "$o/a b%.txt" && '
         f'echo "PlanQK:Job:Result: {{\\"dir\\": \\"$o\\", \\"sha\\": \\"$({BB} sha256sum "$o/random.bin" | {BB} cut -c1-64)\\"}}"')
# A job that tries to get at the host's files, fills its directory, and fails. (Directories,
# dot files, fifos and sockets: tests/unit/test-result-files.c.)
HOSTILE = ('o="$OUTPUT_DIRECTORY"; echo kept > "$o/ok.txt"; '
           f'{BB} touch -d "2020-01-01 00:00:00" "$o/ok.txt"; '
           f'{BB} ln -s /etc/shadow "$o/shadow"; {BB} ln /etc/passwd "$o/hard"; echo "hard: $?"; '
           f'{BB} head -c 5000000 /dev/zero > "$o/huge.bin"; echo "huge: $?"; '
           'echo "PlanQK:Job:Result: {\\"tried\\": true}"; exit 3')
# Two files that together are over OutputMax (1M), then more files than OutputFiles (3) allows.
# (The first two are made older explicitly: the kernel's file times are coarser than the job.)
LIMITS = ('o="$OUTPUT_DIRECTORY"; echo 1 > "$o/n1"; echo "n1: $?"; '
          f'{BB} head -c 700000 /dev/zero > "$o/a.bin"; echo "a: $?"; '
          f'{BB} touch -d "2020-01-01 00:00:00" "$o/n1" "$o/a.bin"; '
          f'{BB} head -c 700000 /dev/zero > "$o/c.bin"; echo "c: $?"; '
          'echo 2 > "$o/n2"; echo "n2: $?"; '
          'echo "PlanQK:Job:Result: {}"')


class PlanqkResultFilesTest(JobsBase):
    extra_config = {"Limits": {"OutputMax": "1M", "OutputFiles": 3}}
    call = PlanqkTest.call
    wait_planqk = PlanqkTest.wait_planqk

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.skip_reason:
            return
        for name, script in (("files", FILES), ("hostile", HOSTILE), ("limits", LIMITS)):
            svc = f"planqk-{name}-{os.getpid() % 10000}"
            r = cls.gw.http("POST", "/v1/services", {"name": svc, "image": cls.image_ref,
                                                       "command": ["/bin/sh", "-c", script]})
            assert r.status == 201, r.body
            cls.services[name] = svc

    def setUp(self):
        super().setUp()
        self.v = openapi.Validator(DOC)

    def run_planqk(self, name, status):
        svc = self.services[name]
        job = self.call("POST", "/", 201, service=svc, body={"data": {}}).json
        done = self.wait_planqk(job["id"], TERMINAL, service=svc)
        log = self.gw.http("GET", f"/v1/jobs/{job['id']}/log", as_user=users.USER).body
        self.assertEqual(done["status"], status, log)
        res = self.call("GET", "/{id}/result", 200, service=svc, job=job["id"]).json
        return svc, job["id"], res, log

    def get_file(self, svc, job, name, status=200):
        r = self.gw.http("GET", f"/planqk/{svc}/{job}/result/{quote(name)}", as_user=users.USER)
        self.assertEqual(r.status, status, r.body)
        return r

    def test_files_are_linked_and_served_byte_exact(self):
        svc, job, res, log = self.run_planqk("files", "SUCCEEDED")
        self.assertEqual(res["dir"], "/var/runtime/output")
        base = f"/planqk/{svc}/{job}"
        self.assertEqual(res["_links"], {"self": {"href": base + "/result"}, "status": {"href": base},
                                         "counts.csv": {"href": base + "/result/counts.csv"},
                                         "random.bin": {"href": base + "/result/random.bin"},
                                         "a b%.txt": {"href": base + "/result/a%20b%25.txt"}})
        f = self.get_file(svc, job, "counts.csv")
        self.assertEqual(f.raw, b"bin,count\n0,3\n1,4\n")
        self.assertEqual(f.headers["content-type"], "application/octet-stream")
        f = self.get_file(svc, job, "random.bin")
        self.assertEqual(len(f.raw), 300000)
        self.assertEqual(hashlib.sha256(f.raw).hexdigest(), res["sha"])
        self.assertEqual(self.get_file(svc, job, "a b%.txt").raw, b"odd name")
        # the spool has them, and nothing else: no staging left behind
        self.assertEqual(sorted(os.listdir(os.path.join(self.spool(job), "output"))),
                         ["a b%.txt", "counts.csv", "random.bin"])
        self.assertFalse(os.path.exists(os.path.join(self.spool(job), ".output.partial")))
        # another user's job: not found
        r = self.gw.http("GET", f"{base}/result/counts.csv", as_user=users.OTHER)
        self.assertEqual(r.status, 404, r.body)

    def test_links_devices_and_huge_files_are_not_served(self):
        svc, job, res, log = self.run_planqk("hostile", "FAILED")
        # a failed job keeps its files too; its result is the error, with the links
        self.assertEqual(res["code"], "EXIT_CODE")
        self.assertEqual(set(res["_links"]), {"self", "status", "ok.txt"}, log)
        self.assertEqual(self.get_file(svc, job, "ok.txt").raw, b"kept\n")
        for name in ("shadow", "hard", "huge.bin"):
            with self.subTest(file=name):
                self.get_file(svc, job, name, 404)
        out = os.path.join(self.spool(job), "output")
        self.assertEqual(os.listdir(out), ["ok.txt"])
        # the job could not write more than its directory holds (1M and a page), and the file
        # it was writing then is not served
        self.assertIn("huge: 1", log)
        self.assertIn("[gateway-worker] warning: Result file 'huge.bin' (1048576 bytes) not kept: it was written "
                      "when the result files reached their size limit, and may be cut short.", log)
        self.assertIn("Result file 'shadow' not kept: it is a symbolic link", log)
        self.assertIn("hard: 1", log)   # no hard link out of its own file system

    def test_output_limits(self):
        svc, job, res, log = self.run_planqk("limits", "SUCCEEDED")
        # n1 and a.bin fit; c.bin was cut short by ENOSPC and is dropped; n2 was one file too many
        for line in ("n1: 0", "a: 0", "c: 1", "n2: 1"):
            self.assertIn(line, log)
        self.assertEqual(set(res["_links"]), {"self", "status", "a.bin", "n1"}, log)
        self.assertEqual(self.get_file(svc, job, "a.bin").raw, bytes(700000))
        self.assertEqual(self.get_file(svc, job, "n1").raw, b"1\n")
        self.get_file(svc, job, "c.bin", 404)
        self.get_file(svc, job, "n2", 404)
        self.assertIn("Result file 'c.bin' (348160 bytes) not kept: it was written when the result files "
                      "reached their size limit", log)
