"""The Slurm platform (issue 10, docs/slurm.md) end to end: gatewayd with a platform whose jobs go
through slurmrestd to a real one-node Slurm cluster (harness/slurm.py), as their owner, into the
sandbox through the setuid launcher (gateway-slurm-launch) on the node. Images come from a real
registry, converted once into the platform's image directory.

Each class has its own cluster and gatewayd. The launcher's configuration is installed at its
compiled-in path for the class (as test_slurm.Launcher does) and removed afterwards."""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

from harness import images, openapi, procs, slurm, users
from harness.bus import BusMonitor
from harness.bus import PrivateBus
from harness.gatewayd import Gatewayd
from harness.registry import Registry
from harness.stack import StackTestCase
from test_jobs import bus_path_encode
from test_platform_ssh import assert_saved_from_inside, job_token, save_tar, save_via_gatewayd
from test_slurm import LauncherConfigLock, build_binary, launcher_config_path

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN")
API_DOC = openapi.load(os.path.join(procs.source_dir(), "docs", "openapi.yaml"))
# What the job sees: its uid and its input; a result through the PlanQK marker.
WHOAMI = ('echo "uid $(id -u)"; echo "PlanQK:Job:InterimResult: {\\"step\\": 1}"; '
          'echo "PlanQK:Job:Result: {\\"uid\\": $(id -u), \\"data\\": $(cat /var/input/data.json)}"')
SLEEP = ('s=$(sed -n \'s/.*"sleep": *\\([0-9]*\\).*/\\1/p\' /var/input/params.json); '
         'echo "sleeping ${s:-60}"; sleep "${s:-60}"; echo "PlanQK:Job:Result: {\\"slept\\": ${s:-60}}"')


def worker_has_run():
    p = subprocess.run([build_binary("src", "worker", "gateway-worker"), "run", "--help"], capture_output=True)
    return p.returncode == 0


@unittest.skipUnless(slurm.available(), "Slurm is not installed (scripts/install-deps)")
@unittest.skipUnless(os.path.exists(build_binary("src", "worker", "gateway-slurm-launch")),
                     "gateway-slurm-launch is not built")
class SlurmPlatformBase(StackTestCase):
    extra_slurm = {}        # more keys of the platform's "slurm" object
    extra_config = {}

    @classmethod
    def slurm_auth(cls):
        """How gatewayd authenticates to slurmrestd (called once the cluster runs)."""
        return {"jwtKey": cls.cluster.jwt_key_path}

    @classmethod
    def setUpClass(cls):
        if not worker_has_run():
            raise unittest.SkipTest("gateway-worker has no 'run' verb in this build")
        cls.launch_config = launcher_config_path()
        cls.config_lock = LauncherConfigLock()
        if os.path.exists(cls.launch_config):
            cls.config_lock.release()
            raise unittest.SkipTest(f"{cls.launch_config} exists (a real installation): not touching it")
        cls.uids = users.ensure_test_users()
        cls.rprocs = procs.Processes()
        cls.rtmp = procs.TempDir(prefix="gatewayd-pslurm-")
        cls.cluster = None
        try:
            cls.registry = Registry(cls.rprocs, cls.rtmp.path).start()
            images.push_image(cls.registry, "busybox", "1.0", images.busybox_image())
            cls.image_ref = f"{cls.registry.host}/busybox:1.0"
            # a program's own image (test_program_on_its_own_image): its env says it is the one
            images.push_image(cls.registry, "quantum/tool", "1.0",
                              images.busybox_image(env=["PATH=/bin", "GREETING=from tool"], workdir="/tmp"))
            cls.cluster = slurm.SlurmCluster()
            # The shared file system of a site: here a directory of the cluster's.
            d = cls.shared = os.path.join(cls.cluster.dir, "gw")
            cls.spool_root = os.path.join(d, "spool")
            cls.image_dir = os.path.join(d, "images")
            for p in (d, cls.image_dir):
                os.makedirs(p, mode=0o755)
                os.chmod(p, 0o755)
            cls.launcher = os.path.join(d, "gateway-slurm-launch")
            shutil.copy(build_binary("src", "worker", "gateway-slurm-launch"), cls.launcher)
            os.chmod(cls.launcher, 0o4755)
            cls.created_config_dir = not os.path.isdir(os.path.dirname(cls.launch_config))
            os.makedirs(os.path.dirname(cls.launch_config), exist_ok=True)
            with open(cls.launch_config, "w") as f:
                f.write(f"SpoolDir={cls.spool_root}\nImageDir={cls.image_dir}\n"
                        f"Worker={build_binary('src', 'worker', 'gateway-worker-run')}\n"
                        f"RuntimeDir={os.path.join(d, 'runtime')}\n")
            os.chmod(cls.launch_config, 0o644)
            cls.config = {
                "DefaultImageLocation": cls.registry.host,
                "Locations": {cls.registry.host: {"remotetype": "dockerv2", "authentication": "none",
                                                  "insecure": True}},
                "WorkerPath": build_binary("src", "worker", "gateway-worker"),
                "Platforms": {"cluster": {
                    "accesstype": "local", "local": {"imageDir": cls.image_dir},
                    "slurm": {"url": "unix:" + cls.cluster.rest_socket, **cls.slurm_auth(),
                              "spoolDir": cls.spool_root, "launcher": cls.launcher, **cls.extra_slurm}}},
                "DefaultPlatform": "cluster",
                "ProgramImage": cls.image_ref,
                "ProgramImages": [f"{cls.registry.host}/quantum/*"],
                **cls.extra_config,
            }
            super().setUpClass()
            cls.services = {}
            for name, script, extra in (("whoami", WHOAMI, {}), ("sleep", SLEEP, {}),
                                        ("fail", 'echo "going to fail"; /bin/busybox grep " / " /proc/mounts; exit 3', {}),
                                        ("files", 'printf "hello\\n" > "$OUTPUT_DIRECTORY/hello.txt"; '
                                                  '/bin/busybox ln -s /etc/shadow "$OUTPUT_DIRECTORY/shadow"; '
                                                  'echo "PlanQK:Job:Result: {\\"ok\\": 1}"', {}),
                                        ("short", SLEEP, {"resources": {"timeout": 2}})):
                svc = f"slurm-{name}-{os.getpid() % 10000}"
                r = cls.gw.http("POST", "/v1/services", {"name": svc, "image": cls.image_ref,
                                                           "command": ["/bin/sh", "-c", script], **extra})
                assert r.status == 201, r.body
                cls.services[name] = svc
        except BaseException:
            cls._cleanup_class()
            raise

    @classmethod
    def _cleanup_class(cls):
        try:
            if os.path.exists(cls.launch_config):
                os.unlink(cls.launch_config)
                if getattr(cls, "created_config_dir", False):
                    os.rmdir(os.path.dirname(cls.launch_config))
        finally:
            cls.config_lock.release()
            from harness import rootfs
            left = rootfs.unmount_all_under(cls.cluster.dir) if cls.cluster else []
            if cls.cluster:
                cls.cluster.stop()
            cls.rprocs.stop_all()
            cls.rtmp.cleanup()
        assert left == [], f"mounts left behind: {left}"

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._cleanup_class()

    def run(self, result=None):
        r = super().run(result)
        if result is not None and not result.wasSuccessful() and getattr(self, "cluster", None):
            print(self.cluster.logs())
        return r

    # ---- helpers ----

    def submit(self, kind="whoami", data=None, params=None, as_user=users.USER, status=201):
        body = {"data": data if data is not None else {"n": 1}}
        if params is not None:
            body["params"] = params
        r = self.gw.http("POST", f"/v1/services/{self.services[kind]}/jobs", body, as_user=as_user)
        self.assertEqual(r.status, status, r.body)
        return r.json

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

    def result(self, job_id, as_user=users.USER):
        r = self.gw.http("GET", f"/v1/jobs/{job_id}/result", as_user=as_user)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def platform(self):
        """GET /v1/platforms/cluster, checked against docs/openapi.yaml."""
        r = self.gw.http("GET", "/v1/platforms/cluster", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        v = openapi.Validator(API_DOC)
        problems = v.check(v.response_schema("/v1/platforms/{name}", "GET", 200), r.json)
        self.assertFalse(problems, f"{r.body[:1000]}: {problems}")
        return r.json

    def record(self, job_id):
        with open(os.path.join(self.gw.state_dir, "jobs", job_id, "slurm.json")) as f:
            return json.load(f)

    def slurm_jobs_named(self, name):
        status, answer = self.cluster.rest("GET", "/slurm/v0.0.38/jobs", user="root")
        self.assertEqual(status, 200, answer)
        return [j for j in answer["jobs"] if j["name"] == name]

    def cleanup_job(self, job_id, as_user=users.USER):
        def cancel():
            if self.gw.alive():
                r = self.gw.http("PUT", f"/v1/jobs/{job_id}/cancel", as_user=as_user)
                if r.status != 404:
                    self.wait_status(job_id, TERMINAL, as_user=as_user, timeout=30)
        self.addCleanup(cancel)


class SlurmPlatformTest(SlurmPlatformBase):
    extra_config = {"JobsPerUser": 1, "Limits": {"RuntimeMax": "01:00:00", "MemoryMax": "512M"}}

    def test_per_user_limit_holds_on_slurm(self):
        # JobsPerUser counts Slurm jobs like local ones: the second waits, unsubmitted.
        first = self.submit("sleep", params={"sleep": 60})
        self.cleanup_job(first["id"])
        self.wait_status(first["id"], "RUNNING")
        second = self.submit(data={"second": True})
        self.cleanup_job(second["id"])
        self.assertEqual(self.job(second["id"])["status"], "QUEUED")
        self.assertEqual(self.slurm_jobs_named(f"gatewayd-{second['id']}"), [])
        self.gw.http("PUT", f"/v1/jobs/{first['id']}/cancel", as_user=users.USER)
        done = self.wait_status(second["id"], TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)

    def test_job_runs_as_its_owner_through_slurm(self):
        mon = BusMonitor(self.bus).start()
        self.addCleanup(mon.stop)
        job = self.submit(data={"x": [1, 2]})
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(done["exitCode"], 0)
        # the uid inside the sandbox is the owner's; the input reached the node
        self.assertEqual(self.result(job["id"]), {"uid": self.uids[users.USER], "data": {"x": [1, 2]}})
        log = self.gw.http("GET", f"/v1/jobs/{job['id']}/log", as_user=users.USER)
        self.assertIn(f"uid {self.uids[users.USER]}", log.body)
        # interim results: served, and announced on the bus as for local jobs
        r = self.gw.http("GET", f"/v1/jobs/{job['id']}/interim-results", as_user=users.USER)
        self.assertEqual(r.json, [{"step": 1}])
        sig = mon.wait_signal("InterimResult", path="/org/gatewayd/Gateway1/job/" + bus_path_encode(job["id"]))
        self.assertEqual(sig["payload"]["data"], [0, '{"step":1}'])
        # Slurm ran it as the owner, under its unique name, never requeued
        rec = self.record(job["id"])
        self.assertEqual(rec["user"], users.USER)
        sj = self.cluster.job(rec["slurmJobId"])
        self.assertEqual(sj["name"], f"gatewayd-{job['id']}")
        self.assertEqual(sj["user_name"], users.USER)
        self.assertEqual(sj["job_state"], "COMPLETED")
        self.assertFalse(sj["requeue"])
        # the limits: MemoryMax as memory_per_node (MB), RuntimeMax + 60 s as time_limit (minutes;
        # the worker's own timeout ends a job first)
        self.assertEqual(sj["memory_per_node"], 512)
        self.assertEqual(sj["time_limit"], 61)
        # everything was copied back: the Slurm spool goes (at once, or a few seconds later when
        # the step's last writes raced with the removal; nothing announces it)
        procs.wait_for(lambda: not os.path.exists(os.path.join(self.spool_root, job["id"])), timeout=15,
                       what="the Slurm spool to be removed")

    def test_program_runs_through_slurm(self):
        """A user's program on the Slurm platform: its squashfs is put into the platform's image
        directory at upload (the nodes share it; the launcher mounts nothing from elsewhere), the
        job runs as its owner with the program at /program and its arguments both ways; another
        user gets 404; removing the program removes the copy."""
        import io
        import tarfile
        import urllib.parse
        script = ('#!/bin/sh\necho "program as $(id -u)"\n'
                  'echo "PlanQK:Job:Result: {\\"uid\\": $(id -u), \\"args\\": $ENV_JOB_ARGUMENTS, '
                  '\\"file\\": $(cat /var/input/arguments.json), \\"own\\": \\"$(cat /program/own.txt)\\"}"\n')
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            for name, data, mode in (("run.sh", script, 0o755), ("own.txt", "mine", 0o644)):
                ti = tarfile.TarInfo(name)
                ti.mode, ti.size = mode, len(data)
                t.addfile(ti, io.BytesIO(data.encode()))
        title = f"slurm-prog-{os.getpid() % 10000}"
        before = set(os.listdir(self.image_dir))
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode({"title": title, "entrypoint": "run.sh"}),
                         buf.getvalue(), as_user=users.USER, content_type="application/gzip")
        self.assertEqual(r.status, 201, r.body)
        self.addCleanup(lambda: self.gw.alive() and self.gw.http("DELETE", f"/v1/programs/{title}", as_user=users.USER))
        (layer,) = set(os.listdir(self.image_dir)) - before
        self.assertTrue(layer.endswith(".squashfs"), layer)
        self.assertEqual(os.stat(os.path.join(self.image_dir, layer)).st_uid, 0)
        r = self.gw.http("POST", f"/v1/programs/{title}/run", {"arguments": {"n": 5}}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        jid = r.json["id"]
        done = self.wait_status(jid, TERMINAL)
        log = self.gw.http("GET", f"/v1/jobs/{jid}/log", as_user=users.USER).body
        self.assertEqual(done["status"], "SUCCEEDED", log)
        self.assertEqual(self.result(jid), {"uid": self.uids[users.USER], "args": {"n": 5}, "file": {"n": 5}, "own": "mine"})
        self.assertIn(f"gatewayd-{jid}", [j["name"] for j in self.slurm_jobs_named(f"gatewayd-{jid}")])
        r = self.gw.http("POST", f"/v1/programs/{title}/run", {}, as_user=users.OTHER)
        self.assertEqual(r.status, 404, r.body)
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}", as_user=users.OTHER).status, 404)
        r = self.gw.http("DELETE", f"/v1/programs/{title}", as_user=users.USER)
        self.assertEqual(r.status, 204, r.body)
        self.assertNotIn(layer, os.listdir(self.image_dir))

    def test_program_on_its_own_image(self):
        """A program on an image of its own (docs/programs.md, "Images of programs") runs through
        Slurm on that image, made READY on the platform like a service's: its entrypoint sees the
        image's env; one without an artifact runs the image's own entrypoint."""
        import io
        import tarfile
        import urllib.parse
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b'#!/bin/sh\necho "greeting=$GREETING uid=$(id -u)"\n'
            ti = tarfile.TarInfo("which.sh")
            ti.size, ti.mode = len(data), 0o755
            t.addfile(ti, io.BytesIO(data))
        title = f"slurm-progimg-{os.getpid() % 10000}"
        for t, body, q in ((title, buf.getvalue(), {"entrypoint": "which.sh"}), (title + "-only", None, {})):
            q.update(title=t, image="quantum/tool:1.0")
            r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode(q), body, as_user=users.USER,
                             content_type="application/gzip")
            self.assertEqual(r.status, 201, r.body)
            self.addCleanup(lambda t=t: self.gw.alive() and self.gw.http("DELETE", f"/v1/programs/{t}", as_user=users.USER))
        for t, words in ((title, f"greeting=from tool uid={self.uids[users.USER]}"), (title + "-only", "hi")):
            r = self.gw.http("POST", f"/v1/programs/{t}/run", {}, as_user=users.USER)
            self.assertEqual(r.status, 201, r.body)
            done = self.wait_status(r.json["id"], TERMINAL)
            log = self.gw.http("GET", f"/v1/jobs/{r.json['id']}/log", as_user=users.USER).body
            self.assertEqual(done["status"], "SUCCEEDED", log)
            self.assertRegex(log, "(?m)^" + re.escape(words) + "$")

    def upload_saver(self):
        import urllib.parse
        title = f"slurm-save-{os.getpid() % 10000}"
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode({"title": title, "entrypoint": "save.sh",
                                                                           "replace": "true"}),
                         save_tar(), as_user=users.USER, content_type="application/gzip")
        self.assertEqual(r.status, 201, r.body)
        self.addCleanup(lambda: self.gw.alive() and self.gw.http("DELETE", f"/v1/programs/{title}", as_user=users.USER))
        return title

    def run_saver(self, title, arguments, env=None):
        r = self.gw.http("POST", f"/v1/programs/{title}/run", {"arguments": arguments, "env": env or {}},
                         as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        return r.json["id"]

    def test_save_result_from_inside_the_job_on_slurm(self):
        """save_result inside a program job on the Slurm platform reaches the worker's endpoint
        in the job's own network namespace on the compute node (ENV_JOB_GATEWAY_HOST is the
        job's loopback there too); the saved result comes back through the Slurm spool and is
        the job's result on /v1/jobs and /api/v1/jobs — the last save, over the marker's."""
        title = self.upload_saver()
        jid = self.run_saver(title, {"n": 7})
        done = self.wait_status(jid, TERMINAL)
        log = self.gw.http("GET", f"/v1/jobs/{jid}/log", as_user=users.USER).body
        self.assertEqual(done["status"], "SUCCEEDED", log)
        assert_saved_from_inside(self, jid, log, {"n": 7})

    def test_save_result_through_gatewayd_on_slurm(self):
        """gatewayd's own POST /api/v1/jobs/{id}/result/ (the job's token, from outside the job)
        for a Slurm job: written into the job's Slurm spool, where the worker on the compute node
        takes it as the job's result like a save from inside; a wrong token is 401."""
        title = self.upload_saver()
        jid = self.run_saver(title, {"n": 1}, env={"SAVE_WAIT": "3"})
        self.cleanup_job(jid)
        procs.wait_for(lambda: "waiting for a save" in self.gw.http("GET", f"/v1/jobs/{jid}/log", as_user=users.USER).body,
                       timeout=60, what="the job to wait for a save")
        token = job_token(self.gw.state_dir, jid)
        self.assertEqual(save_via_gatewayd(self.gw, jid, "0" * 64, {"x": 1})[0], 401)
        self.assertEqual(save_via_gatewayd(self.gw, jid, token, {"from": "outside"}),
                         (200, {"message": "Result saved."}))
        done = self.wait_status(jid, TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", self.gw.http("GET", f"/v1/jobs/{jid}/log", as_user=users.USER).body)
        self.assertEqual(self.result(jid), {"from": "outside"})
        r = self.gw.http("GET", f"/api/v1/jobs/{jid}/result/", as_user=users.USER)
        self.assertEqual(json.loads(r.json["result"]), {"from": "outside"}, r.body)
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "jobs", jid, "saved-result.json")))
        self.assertEqual(save_via_gatewayd(self.gw, jid, token, {"late": 1})[0], 409)

    def test_platform_shows_the_cluster(self):
        # GET /v1/platforms/cluster: the cluster's state from slurmrestd (ping, partitions,
        # nodes) and gatewayd's jobs on it
        p = procs.wait_for(lambda: (lambda p: p if p.get("reachable") and p["nodes"] else None)(self.platform()),
                           timeout=15, what="the cluster's state")
        self.assertEqual((p["kind"], p["runsJobs"], p["status"]), ("slurm", True, "reachable"))
        self.assertEqual(p["slurmVersion"][:5], "22.05")
        self.assertEqual([(x["name"], x["state"]) for x in p["partitions"]], [("debug", "UP")])
        self.assertEqual([(n["name"], n["state"]) for n in p["nodes"]], [(self.cluster.node, "up")])
        self.assertIn(p["nodes"][0]["slurmState"], ("idle", "mixed", "allocated"))
        self.assertEqual((p["queued"], p["running"]), (0, 0))
        job = self.submit("sleep", params={"sleep": 60})
        self.cleanup_job(job["id"])
        self.wait_status(job["id"], "RUNNING")
        self.assertEqual((self.platform()["queued"], self.platform()["running"]), (0, 1))
        out = self.gw.gatewayctl("platforms", as_user=users.USER)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("cluster", out.stdout)

    def test_root_job_runs_as_nobody(self):
        job = self.submit(as_user=None)
        done = self.wait_status(job["id"], TERMINAL, as_user=None)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(self.result(job["id"], as_user=None)["uid"], 65534)
        self.assertEqual(self.cluster.job(self.record(job["id"])["slurmJobId"])["user_name"], "nobody")

    def test_cancel_running_job(self):
        job = self.submit("sleep", params={"sleep": 60})
        self.cleanup_job(job["id"])
        self.wait_status(job["id"], "RUNNING")
        rec_id = self.record(job["id"])["slurmJobId"]
        procs.wait_for(lambda: "sleeping" in self.gw.http("GET", f"/v1/jobs/{job['id']}/log",
                                                          as_user=users.USER).body,
                       timeout=30, what="the job's first line")
        t = time.monotonic()
        r = self.gw.http("PUT", f"/v1/jobs/{job['id']}/cancel", as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        done = self.wait_status(job["id"], TERMINAL)
        self.assertLess(time.monotonic() - t, 2.0)
        self.assertEqual(done["status"], "CANCELLED", done)
        self.cluster.wait_job_state(rec_id, ("CANCELLED",), timeout=30)

    def test_result_files_come_back(self):
        # the worker's output/ in the Slurm spool is copied back with the outcome: served by the
        # PlanQK routes like a local job's (the symlink the job made is not)
        job = self.submit("files")
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        base = f"/planqk/{self.services['files']}/{job['id']}"
        r = self.gw.http("GET", base + "/result", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.json["_links"]), {"self", "status", "hello.txt"})
        r = self.gw.http("GET", base + "/result/hello.txt", as_user=users.USER)
        self.assertEqual((r.status, r.raw), (200, b"hello\n"))
        self.assertEqual(self.gw.http("GET", base + "/result/shadow", as_user=users.USER).status, 404)

    def test_failing_job_fails(self):
        # the job's own failure stands (Slurm's final state, COMPLETED, is asked and changes nothing)
        job = self.submit("fail")
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "FAILED", done)
        self.assertEqual((done["error"]["code"], done["exitCode"]), ("EXIT_CODE", 3), done)
        log = self.gw.http("GET", f"/v1/jobs/{job['id']}/log", as_user=users.USER).body
        self.assertIn("going to fail", log)
        # the worker under Slurm made the sandbox's root once for the image (src/worker/sandbox-root.h)
        self.assertRegex(log, r"overlay / overlay ro,nosuid,nodev")

    def test_cancelled_in_slurm_by_someone_else(self):
        # scancel (SIGTERM to the step): the worker records CANCELLED, which gatewayd did not ask
        # for; Slurm's final state (CANCELLED, not TIMEOUT) confirms it.
        job = self.submit("sleep", params={"sleep": 60})
        self.cleanup_job(job["id"])
        self.wait_status(job["id"], "RUNNING")
        sid = self.record(job["id"])["slurmJobId"]
        p = subprocess.run(["scancel", str(sid)], env=self.cluster.env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "CANCELLED", done)

    def test_runtime_limit_ends_the_job(self):
        job = self.submit("short", params={"sleep": 30})
        done = self.wait_status(job["id"], TERMINAL, timeout=60)
        self.assertEqual(done["status"], "FAILED", done)
        self.assertEqual(done["error"]["code"], "TIMEOUT", done)

    def test_unknown_user_is_refused(self):
        # A caller whose uid has no account: Slurm would keep its job pending forever.
        uid = 54321
        self.assertRaises(KeyError, __import__("pwd").getpwuid, uid)
        p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                            "curl", "-s", "--unix-socket", self.gw.socket_path, "-X", "POST",
                            "-H", "Content-Type: application/json", "-d", '{"data": {}}',
                            f"http://localhost/v1/services/{self.services['whoami']}/jobs"],
                           capture_output=True, text=True, timeout=30)
        answer = json.loads(p.stdout)
        self.assertIn("id", answer, answer)
        done = self.wait_status(answer["id"], TERMINAL, as_user=None)
        self.assertEqual(done["status"], "FAILED", done)
        self.assertEqual(done["error"]["code"], "UNKNOWN_USER", done)
        self.assertIn(str(uid), done["error"]["message"])
        self.assertEqual(self.slurm_jobs_named(f"gatewayd-{answer['id']}"), [])

    def test_other_user_cannot_run_the_job_or_mount_its_image(self):
        # The spool gatewayd prepared for USER's job (its image, its uid): run by OTHER through the
        # launcher, it is refused before anything is mounted.
        job = self.submit("sleep", params={"sleep": 60})
        self.cleanup_job(job["id"])
        self.wait_status(job["id"], "RUNNING")
        spool = os.path.join(self.spool_root, job["id"])
        # the Slurm spool: root's, not writable by others (the launcher demands it), whatever
        # gatewayd's umask; input and job.json root's alone; slurm/ the owner's
        st = os.stat(spool)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o711))
        for name, mode in (("input", 0o700), ("job.json", 0o600)):
            st = os.stat(os.path.join(spool, name))
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, mode), name)
        st = os.stat(os.path.join(spool, "slurm"))
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (self.uids[users.USER], 0o700))
        p = users.run_as(users.OTHER, [self.launcher, spool], timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("is not yours", p.stderr)


class SlurmPlatformRecovery(SlurmPlatformBase):
    def test_kill9_while_the_slurm_job_runs(self):
        job = self.submit("sleep", params={"sleep": 4})
        self.wait_status(job["id"], "RUNNING")
        self.gw.kill(signal.SIGKILL)
        self.gw.start()
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(self.result(job["id"]), {"slept": 4})
        self.assertEqual(len(self.slurm_jobs_named(f"gatewayd-{job['id']}")), 1)

    def test_kill9_before_the_slurm_job_id_was_recorded(self):
        # As if gatewayd died between the submit and recording its answer: only the intent is in
        # the record. The restart finds the job by its name; it runs once.
        job = self.submit("sleep", params={"sleep": 3})
        self.wait_status(job["id"], "RUNNING")
        self.gw.kill(signal.SIGKILL)
        path = os.path.join(self.gw.state_dir, "jobs", job["id"], "slurm.json")
        rec = self.record(job["id"])
        del rec["slurmJobId"]
        with open(path, "w") as f:
            json.dump(rec, f)
        self.gw.start()
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(self.result(job["id"]), {"slept": 3})
        self.assertEqual(len(self.slurm_jobs_named(f"gatewayd-{job['id']}")), 1)
        self.assertIn("slurmJobId", self.record(job["id"]))

    def test_cancel_while_the_submit_is_in_flight(self):
        # slurmrestd stopped (SIGSTOP) while the submit is on its way: the cancel waits for the
        # answer (the id), then deletes the job; it never runs, and nothing is left queued.
        os.kill(self.cluster.slurmrestd.pid, signal.SIGSTOP)
        try:
            job = self.submit("sleep", params={"sleep": 60})
            path = os.path.join(self.gw.state_dir, "jobs", job["id"], "slurm.json")
            procs.wait_for(lambda: os.path.exists(path), timeout=30, what="the submit's record")
            r = self.gw.http("PUT", f"/v1/jobs/{job['id']}/cancel", as_user=users.USER)
            self.assertIn(r.status, (200, 202), r.body)
            self.assertNotIn(self.job(job["id"])["status"], TERMINAL)
        finally:
            os.kill(self.cluster.slurmrestd.pid, signal.SIGCONT)
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "CANCELLED", done)
        queued = self.slurm_jobs_named(f"gatewayd-{job['id']}")
        self.assertEqual(len(queued), 1)
        self.cluster.wait_job_state(queued[0]["job_id"], ("CANCELLED",))

    def test_outcome_collected_once_even_if_not_stored(self):
        # gatewayd concluded the job (its Slurm spool is gone, exit.json copied back) and died
        # before the state was stored: the restart finds the outcome in the job's own spool.
        job = self.submit("sleep", params={"sleep": 1})
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.gw.kill(signal.SIGKILL)
        db = os.path.join(self.gw.state_dir, "state.db")
        with sqlite3.connect(db) as c:
            c.execute("UPDATE jobs SET state = 'RUNNING', ended_usec = 0, exit_code = NULL WHERE id = ?", (job["id"],))
        self.gw.start()
        again = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(again["status"], "SUCCEEDED", again)
        self.assertEqual(self.result(job["id"]), {"slept": 1})

    def test_slurmrestd_down_job_waits_then_runs(self):
        self.cluster.stop_slurmrestd()
        try:
            n = len(self.gw.stderr_text())
            job = self.submit()
            procs.wait_for(lambda: "slurmrestd: cannot reach slurmrestd" in self.gw.stderr_text()[n:],
                           timeout=30, what="gatewayd to say slurmrestd is away")
            self.assertEqual(self.job(job["id"])["status"], "PENDING")
            # the platform says why, and counts the waiting job
            p = self.platform()
            self.assertIs(p["reachable"], False)
            self.assertIn("cannot reach slurmrestd", p["status"])
            self.assertEqual(p["queued"], 1)
        finally:
            self.cluster.start_slurmrestd()
        done = self.wait_status(job["id"], TERMINAL, timeout=60)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(len(self.slurm_jobs_named(f"gatewayd-{job['id']}")), 1)


class SlurmPlatformPolledSpool(SlurmPlatformBase):
    """spoolWatch "poll" (what a gateway mounting the spool over NFS gets): no inotify, the spool
    is looked at every 200 ms; the job's start, log, end and a cancel all come through."""
    extra_slurm = {"spoolWatch": "poll"}

    def test_job_and_cancel_with_a_polled_spool(self):
        self.assertIn("(polled)", self.gw.stderr_text())
        job = self.submit(data={"polled": True})
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(self.result(job["id"]), {"uid": self.uids[users.USER], "data": {"polled": True}})
        r = self.gw.http("GET", f"/v1/jobs/{job['id']}/interim-results", as_user=users.USER)
        self.assertEqual(r.json, [{"step": 1}])
        job = self.submit("sleep", params={"sleep": 60})
        self.cleanup_job(job["id"])
        self.wait_status(job["id"], "RUNNING")
        procs.wait_for(lambda: "sleeping" in self.gw.http("GET", f"/v1/jobs/{job['id']}/log",
                                                          as_user=users.USER).body,
                       timeout=30, what="the job's first line")
        self.gw.http("PUT", f"/v1/jobs/{job['id']}/cancel", as_user=users.USER)
        self.assertEqual(self.wait_status(job["id"], TERMINAL)["status"], "CANCELLED")


class SlurmPlatformBadPartition(SlurmPlatformBase):
    """Slurm refuses the submission for good: the job fails with Slurm's reason, nothing waits."""
    extra_slurm = {"partition": "nosuchpartition"}

    def test_refused_submission_fails_the_job(self):
        job = self.submit()
        done = self.wait_status(job["id"], TERMINAL)
        self.assertEqual(done["status"], "FAILED", done)
        self.assertEqual(done["error"]["code"], "SLURM_SUBMIT_FAILED", done)
        self.assertIn("partition", done["error"]["message"].lower())
        self.assertEqual(self.slurm_jobs_named(f"gatewayd-{job['id']}"), [])
        self.assertServing()


class SlurmPlatformTokenFile(SlurmPlatformBase):
    """tokenFile + user: one token of the SlurmUser (root here), each job's owner named in
    X-SLURM-USER-NAME. An expired token is refused (the job waits, nothing is queued); the renewed
    file is picked up by the next request and the job runs, as its owner."""

    @classmethod
    def slurm_auth(cls):
        cls.token_file = os.path.join(cls.cluster.dir, "gw", "slurm.token")
        cls.write_token(cls.cluster.token("root", lifetime=60, now=int(time.time()) - 3600))
        return {"tokenFile": cls.token_file, "user": "root"}

    @classmethod
    def write_token(cls, token):
        tmp = cls.token_file + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, token.encode() + b"\n")
        os.close(fd)
        os.rename(tmp, cls.token_file)

    def test_expired_token_refused_then_renewed(self):
        n = len(self.gw.stderr_text())
        job = self.submit()
        self.cleanup_job(job["id"])
        procs.wait_for(lambda: "refused the request's token" in self.gw.stderr_text()[n:],
                       timeout=30, what="gatewayd to report the refused token")
        self.assertEqual(self.job(job["id"])["status"], "PENDING")
        self.assertEqual(self.slurm_jobs_named(f"gatewayd-{job['id']}"), [])
        self.write_token(self.cluster.token("root", lifetime=600))
        done = self.wait_status(job["id"], TERMINAL, timeout=60)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(self.result(job["id"])["uid"], self.uids[users.USER])
        self.assertIn("changed: using its new token", self.gw.stderr_text()[n:])
        self.assertEqual(len(self.slurm_jobs_named(f"gatewayd-{job['id']}")), 1)


class SlurmPlatformForgedKey(SlurmPlatformBase):
    """gatewayd signs with a key that is not the cluster's: slurmctld refuses every token, the job
    waits (nothing runs, nothing is lost) and the platform says why."""

    @classmethod
    def setUpClass(cls):
        cls.forged = procs.TempDir(prefix="gatewayd-forged-")
        key = os.path.join(cls.forged.path, "jwt.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
        cls.extra_slurm = {"jwtKey": key}
        try:
            super().setUpClass()
        except BaseException:
            cls.forged.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.forged.cleanup()

    def test_forged_token_refused_job_waits(self):
        n = len(self.gw.stderr_text())
        job = self.submit()
        self.cleanup_job(job["id"])
        procs.wait_for(lambda: "refused the request's token" in self.gw.stderr_text()[n:],
                       timeout=30, what="gatewayd to report the refused token")
        self.assertEqual(self.job(job["id"])["status"], "PENDING")
        self.assertEqual(self.slurm_jobs_named(f"gatewayd-{job['id']}"), [])
        # cancelled while waiting: it ends at once, nothing was queued
        r = self.gw.http("PUT", f"/v1/jobs/{job['id']}/cancel", as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        self.assertEqual(self.wait_status(job["id"], TERMINAL)["status"], "CANCELLED")


class SlurmPlatformBadCredentials(unittest.TestCase):
    """A key or token file gatewayd cannot use stops the start, naming the platform and the
    file, instead of a gatewayd whose jobs all wait (no cluster needed)."""

    def start_fails(self, slurm_conf):
        with PrivateBus() as bus:
            gw = Gatewayd(bus=bus, config={"Platforms": {"batch": {"accesstype": "local", "slurm": {
                "url": "unix:/nonexistent/slurmrestd.sock", **slurm_conf}}}, "DefaultPlatform": "batch"})
            try:
                gw.write_config()
                os.makedirs(gw.state_dir, exist_ok=True)
                os.makedirs(gw.runtime_dir, exist_ok=True)
                try:
                    p = subprocess.run(gw.argv(), capture_output=True, text=True, timeout=10, env=bus.env())
                except subprocess.TimeoutExpired:
                    self.fail("gatewayd started with unusable Slurm credentials")
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("Platforms.batch: cannot set it up", p.stderr)
                return p.stderr
            finally:
                gw.stop()

    def test_missing_key_file(self):
        err = self.start_fails({"jwtKey": "/nonexistent/jwt.key"})
        self.assertIn("Cannot load the Slurm JWT key /nonexistent/jwt.key", err)

    def test_key_readable_by_others(self):
        with tempfile.TemporaryDirectory(prefix="gatewayd-slurmkey-") as d:
            key = os.path.join(d, "jwt.key")
            with open(key, "wb") as f:
                f.write(os.urandom(32))
            os.chmod(key, 0o644)
            err = self.start_fails({"jwtKey": key})
            self.assertIn(f"Cannot load the Slurm JWT key {key}", err)

    def test_empty_token_file(self):
        with tempfile.TemporaryDirectory(prefix="gatewayd-slurmkey-") as d:
            token = os.path.join(d, "token")
            open(token, "w").close()
            os.chmod(token, 0o600)
            err = self.start_fails({"tokenFile": token, "user": "slurm"})
            self.assertIn(f"Cannot read the Slurm token file {token}", err)


if __name__ == "__main__":
    unittest.main()
