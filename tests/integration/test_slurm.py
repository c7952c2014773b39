"""A real one-node Slurm cluster (harness/slurm.py): slurmrestd with JWT auth runs batch jobs as
the token's user, and gatewayd's slurmrestd client (src/gatewayd/slurm-rest.c, driven through
the test helper slurm-rest-cli on an sd-event loop) submits, follows and cancels jobs, retries
while slurmrestd is away and reports refused tokens clearly. Needs root and the Slurm packages."""
import json
import pwd
import shutil
import os
import subprocess
import time
import unittest

from harness.hostlock import HostLock
from harness import procs, slurm, users

V = "/slurm/v0.0.38"


def cli_binary():
    return os.path.join(procs.build_dir(), "tests", "helpers", "slurm-rest-cli")


@unittest.skipUnless(slurm.available(), "Slurm is not installed (scripts/install-deps)")
class SlurmTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.uids = users.ensure_test_users()
        cls.cluster = slurm.SlurmCluster()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def run(self, result=None):
        r = super().run(result)
        if result is not None and not result.wasSuccessful() and getattr(self, "cluster", None):
            print(self.cluster.logs())
        return r

    def job_body(self, script, name="gwtest", **job):
        body = {"name": name, "environment": {"PATH": "/bin:/usr/bin"},
                "current_working_directory": self.cluster.jobs_dir,
                "standard_output": os.path.join(self.cluster.jobs_dir, f"{name}.out"),
                "no_requeue": True}
        body.update(job)
        return {"script": script, "job": body}

    def cli(self, *args, url=None, auth=None, timeout=60):
        c = self.cluster
        argv = [cli_binary(), f"--url={url or 'unix:' + c.rest_socket}"]
        argv += auth if auth is not None else [f"--jwt-key={c.jwt_key_path}"]
        p = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout)
        lines = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        self.assertIn(p.returncode, (0, 1), p.stderr)
        return p.returncode, lines

    def script(self, name, text):
        path = os.path.join(self.cluster.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def submit(self, user, text, name, *options):
        out = os.path.join(self.cluster.jobs_dir, f"{name}.out")
        rc, lines = self.cli(*options, f"--name={name}", "submit", user, self.script(name + ".sh", text),
                             self.cluster.jobs_dir, out)
        self.assertEqual(rc, 0, lines)
        return lines[0]["job_id"], out


class Smoke(SlurmTestCase):
    def test_batch_job_runs_as_the_token_user(self):
        c = self.cluster
        out = os.path.join(c.jobs_dir, "smoke.out")
        status, answer = c.rest("POST", f"{V}/job/submit", self.job_body("#!/bin/sh\nid -u\n", name="smoke"),
                                user=users.USER)
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer["errors"], [])
        job = c.wait_job_state(answer["job_id"], ("COMPLETED", "FAILED", "CANCELLED"))
        self.assertEqual(job["job_state"], "COMPLETED")
        self.assertEqual(job["user_name"], users.USER)
        with open(out) as f:
            self.assertEqual(f.read().strip(), str(self.uids[users.USER]))

    def test_forged_token_is_refused(self):
        forged = slurm.mint_jwt(b"not the key" * 3, users.USER)
        status, answer = self.cluster.rest("POST", f"{V}/job/submit", self.job_body("#!/bin/sh\ntrue\n"),
                                           user=users.USER, token=forged)
        self.assertEqual(status, 500)
        self.assertEqual(answer["errors"][0]["error_code"], 5005)


@unittest.skipUnless(os.path.exists(cli_binary()), "tests/helpers/slurm-rest-cli is not built")
class RestClient(SlurmTestCase):
    """src/gatewayd/slurm-rest.c against the real slurmrestd, through tests/helpers/slurm-rest-cli."""

    def test_submit_runs_as_user_through_running_to_completed(self):
        job_id, out = self.submit(users.USER, "#!/bin/sh\nid -u\nsleep 0.3\n", "gatewayd-42")
        rc, seen = self.cli("wait", users.USER, str(job_id), "COMPLETED,FAILED,CANCELLED")
        self.assertEqual(rc, 0, seen)
        states = [s["state"] for s in seen]
        self.assertIn("RUNNING", states)
        self.assertEqual(states[-1], "COMPLETED")
        self.assertLess(states.index("RUNNING"), states.index("COMPLETED"))
        self.assertEqual(seen[-1]["user_name"], users.USER)
        self.assertEqual(seen[-1]["name"], "gatewayd-42")
        self.assertEqual(seen[-1]["exit_code"], 0)
        self.assertEqual(seen[-1]["version"], "v0.0.38")
        with open(out) as f:
            self.assertEqual(f.read().strip(), str(self.uids[users.USER]))
        # The job was submitted with no_requeue (a requeued job would run twice).
        self.assertFalse(self.cluster.job(job_id)["requeue"])

    def test_failed_job_has_reason_and_wait_status(self):
        job_id, _ = self.submit(users.USER, "#!/bin/sh\nexit 3\n", "gwtest-exit3")
        rc, seen = self.cli("wait", users.USER, str(job_id), "COMPLETED,FAILED,CANCELLED")
        self.assertEqual(rc, 0, seen)
        self.assertEqual(seen[-1]["phase"], "FAILED")
        self.assertEqual(seen[-1]["state_reason"], "NonZeroExitCode")
        self.assertEqual(seen[-1]["exit_code"], 3 << 8)
        self.assertEqual(seen[-1]["reason"], "the Slurm job failed")

    def test_cancel_running_job(self):
        job_id, _ = self.submit(users.USER, "#!/bin/sh\nsleep 60\n", "gwtest-cancel")
        rc, seen = self.cli("wait", users.USER, str(job_id), "RUNNING")
        self.assertEqual(rc, 0, seen)
        t = time.monotonic()
        rc, lines = self.cli("cancel", users.USER, str(job_id))
        self.assertEqual((rc, lines), (0, [{"ok": True}]))
        # The job leaves RUNNING at once (COMPLETING, then CANCELLED).
        self.assertNotEqual(self.cluster.job(job_id)["job_state"], "RUNNING")
        self.assertLess(time.monotonic() - t, 1.0)
        rc, seen = self.cli("wait", users.USER, str(job_id), "CANCELLED,FAILED,COMPLETED")
        self.assertEqual(seen[-1]["phase"], "CANCELLED")
        # Cancelling again (a finished job) succeeds; another user may not cancel it.
        self.assertEqual(self.cli("cancel", users.USER, str(job_id)), (0, [{"ok": True}]))
        rc, lines = self.cli("cancel", users.OTHER, str(job_id))
        self.assertEqual(rc, 1)
        self.assertEqual(lines[0]["errno"], "Operation not permitted")

    def test_find_job_by_name(self):
        # Recovery: the job of a submit whose answer was lost is found by its name.
        job_id, _ = self.submit(users.USER, "#!/bin/sh\ntrue\n", "gatewayd-find-1")
        rc, lines = self.cli("find", users.USER, "gatewayd-find-1")
        self.assertEqual(rc, 0, lines)
        self.assertEqual(lines[0]["job_id"], job_id)
        rc, lines = self.cli("find", users.OTHER, "gatewayd-find-1")
        self.assertEqual((rc, lines[0]["errno"]), (1, "No such file or directory"))

    def test_unknown_job_is_gone(self):
        rc, lines = self.cli("job", users.USER, "999999")
        self.assertEqual(rc, 1)
        self.assertEqual(lines[0]["errno"], "No such process")
        self.assertIn("does not know the job", lines[0]["message"])

    def test_root_is_refused(self):
        rc, lines = self.cli("submit", "root", self.script("root.sh", "#!/bin/sh\ntrue\n"), self.cluster.jobs_dir)
        self.assertEqual(rc, 1)
        self.assertEqual(lines[0]["errno"], "Operation not permitted")

    def test_forged_token_gives_a_clear_auth_error(self):
        wrong = os.path.join(self.cluster.dir, "wrong-jwt.key")
        fd = os.open(wrong, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
        rc, lines = self.cli("--attempts=2", "--retry-delay=20", "job", users.USER, "1",
                             auth=[f"--jwt-key={wrong}"])
        self.assertEqual(rc, 1)
        self.assertEqual(lines[0]["errno"], "Communication error on send")
        self.assertIn("refused the request's token", lines[0]["message"])
        self.assertIn("gave up after 2 attempts", lines[0]["message"])

    def test_token_file_mode_acts_for_the_named_user(self):
        # One SlurmUser (root) token, X-SLURM-USER-NAME naming the job's owner.
        token = os.path.join(self.cluster.dir, "root.token")
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, (self.cluster.token("root", lifetime=3600) + "\n").encode())
        os.close(fd)
        auth = [f"--token-file={token}", "--token-user=root"]
        out = os.path.join(self.cluster.jobs_dir, "tokenfile.out")
        rc, lines = self.cli("--name=gwtest-tokenfile", "submit", users.USER,
                             self.script("tf.sh", "#!/bin/sh\nid -u\n"), self.cluster.jobs_dir, out, auth=auth)
        self.assertEqual(rc, 0, lines)
        rc, seen = self.cli("wait", users.USER, str(lines[0]["job_id"]), "COMPLETED,FAILED", auth=auth)
        self.assertEqual(seen[-1]["phase"], "COMPLETED")
        with open(out) as f:
            self.assertEqual(f.read().strip(), str(self.uids[users.USER]))

    def test_tcp_url_ping_and_partitions(self):
        url = f"http://127.0.0.1:{self.cluster.rest_port}"
        rc, lines = self.cli("ping", url=url)
        self.assertEqual(rc, 0, lines)
        self.assertEqual(lines[0]["version"], "22.05.8")
        rc, lines = self.cli("partitions", url=url)
        self.assertEqual(lines[0], [{"name": "debug", "state": "UP", "nodes": 1, "cpus": 8}])

    def test_timeout_of_a_silent_server(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            t = time.monotonic()
            rc, lines = self.cli("--timeout=200", "--attempts=2", "--retry-delay=10", "ping",
                                 url=f"http://127.0.0.1:{s.getsockname()[1]}")
            took = time.monotonic() - t
        self.assertEqual(rc, 1)
        self.assertEqual(lines[0]["errno"], "Connection timed out")
        self.assertIn("after 2 attempts", lines[0]["message"])
        self.assertLess(took, 2.0)


@unittest.skipUnless(os.path.exists(cli_binary()), "tests/helpers/slurm-rest-cli is not built")
class RestClientOutage(SlurmTestCase):
    """slurmrestd stopped and started again; a class of its own, so the other tests keep theirs."""

    def cli_start(self, *args):
        c = self.cluster
        return subprocess.Popen([cli_binary(), f"--url=unix:{c.rest_socket}", f"--jwt-key={c.jwt_key_path}"]
                                + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_stopped_slurmrestd_retries_then_clear_error(self):
        c = self.cluster
        c.stop_slurmrestd()
        try:
            p = self.cli_start("--attempts=4", "--retry-delay=100", "ping")
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 1, err)
            answer = json.loads(out)
            self.assertEqual(answer["errno"], "Connection refused")
            self.assertIn(f"cannot reach slurmrestd at unix:{c.rest_socket} after 4 attempts", answer["message"])
            # 100 + 200 + 400 ms of back-off, during which the loop kept running.
            self.assertGreaterEqual(answer["ticks"], 5)
        finally:
            c.start_slurmrestd()

    def test_submit_while_slurmrestd_is_down_is_retried_and_queued_once(self):
        c = self.cluster
        c.stop_slurmrestd()
        try:
            p = self.cli_start("--attempts=30", "--retry-delay=50", "--name=gwtest-once", "submit", users.USER,
                               self.script("once.sh", "#!/bin/sh\ntrue\n"), c.jobs_dir)
            time.sleep(0.3)   # the client is retrying now: nothing to wait for but time
            self.assertIsNone(p.poll())
        finally:
            c.start_slurmrestd()
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, out + err)
        status, answer = c.rest("GET", f"{V}/jobs")
        self.assertEqual(status, 200, answer)
        self.assertEqual([j["job_id"] for j in answer["jobs"] if j["name"] == "gwtest-once"],
                         [json.loads(out)["job_id"]])

    def test_job_survives_slurmrestd_restart_and_request_retried_meanwhile(self):
        c = self.cluster
        job_id, _ = self.submit(users.USER, "#!/bin/sh\nsleep 1\n", "gwtest-outage")
        c.stop_slurmrestd()
        try:
            p = self.cli_start("--attempts=30", "--retry-delay=50", "wait", users.USER, str(job_id),
                               "COMPLETED,FAILED,CANCELLED")
            time.sleep(0.3)   # the client is retrying now: nothing to wait for but time
            self.assertIsNone(p.poll())
        finally:
            c.start_slurmrestd()
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, out + err)
        self.assertEqual(json.loads(out.splitlines()[-1])["phase"], "COMPLETED")


def launcher_config_path():
    """The launcher reads SYSCONFDIR/gatewayd/slurm-launch.conf, compiled in (build-config.h)."""
    with open(os.path.join(procs.build_dir(), "build-config.h")) as f:
        for line in f:
            if line.startswith("#define SYSCONFDIR "):
                return os.path.join(json.loads(line.split(" ", 2)[2]), "gatewayd", "slurm-launch.conf")
    raise RuntimeError("no SYSCONFDIR in build-config.h")


def LauncherConfigLock():
    """The launcher's configuration lives at one compiled-in system path (harness/hostlock.py)."""
    return HostLock("slurm-launch")


def build_binary(*parts):
    return os.path.join(procs.build_dir(), *parts)


@unittest.skipUnless(os.path.exists(cli_binary()), "tests/helpers/slurm-rest-cli is not built")
class Launcher(SlurmTestCase):
    """gateway-slurm-launch (setuid root, docs/slurm.md §4): a Slurm job of the user runs the
    unchanged gateway-worker run on a spool gatewayd prepared; everything else is refused before
    any privilege is used. The launcher's configuration is installed at its compiled-in path for
    the class and removed afterwards."""

    @classmethod
    def setUpClass(cls):
        cls.config = launcher_config_path()
        cls.config_lock = LauncherConfigLock()
        if os.path.exists(cls.config):
            cls.config_lock.release()
            raise unittest.SkipTest(f"{cls.config} exists (a real installation): not touching it")
        super().setUpClass()
        try:
            from harness import rootfs
            cls.rootfs = rootfs
            d = cls.gw = os.path.join(cls.cluster.dir, "gw")
            cls.spool_root = os.path.join(d, "spool")
            cls.image_dir = os.path.join(d, "images")
            cls.runtime = os.path.join(d, "runtime")
            for p in (d, cls.spool_root, cls.image_dir):
                os.makedirs(p, mode=0o755)
                os.chmod(p, 0o755)
            cls.image = os.path.join(cls.image_dir, "busybox.squashfs")
            shutil.copy(rootfs.busybox_image(os.path.join(d, "build")), cls.image)
            cls.launcher = os.path.join(d, "gateway-slurm-launch")
            shutil.copy(build_binary("src", "worker", "gateway-slurm-launch"), cls.launcher)
            os.chmod(cls.launcher, 0o4755)
            cls.created_config_dir = not os.path.isdir(os.path.dirname(cls.config))
            os.makedirs(os.path.dirname(cls.config), exist_ok=True)
            with open(cls.config, "w") as f:
                f.write(f"SpoolDir={cls.spool_root}\nImageDir={cls.image_dir}\n"
                        f"Worker={build_binary('src', 'worker', 'gateway-worker-run')}\nRuntimeDir={cls.runtime}\n")
            os.chmod(cls.config, 0o644)
            cls.n = 0
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if os.path.exists(cls.config):
                os.unlink(cls.config)
                if getattr(cls, "created_config_dir", False):
                    os.rmdir(os.path.dirname(cls.config))
            left = cls.rootfs.unmount_all_under(cls.gw) if hasattr(cls, "gw") else []
        finally:
            cls.config_lock.release()
            super().tearDownClass()
        assert left == [], f"mounts left behind: {left}"

    def job(self, owner=users.USER, image=None, command="id -u; echo 'PlanQK:Job:Result: {\"ok\":true}'", program=None):
        """A spool as gatewayd prepares it: root's, job.json root's, a slurm/ dir of the owner for
        Slurm's output (slurmstepd writes it as the user)."""
        type(self).n += 1
        spool = os.path.join(self.spool_root, f"j-{self.n}")
        os.makedirs(os.path.join(spool, "input"))
        os.chmod(spool, 0o755)
        uid = self.uids[owner]
        gid = pwd.getpwnam(owner).pw_gid
        spec = {"id": f"j-{self.n}", "image": {"path": image or self.image, "meta": {}},
                "command": ["/bin/sh", "-c", command], "uid": uid, "gid": gid}
        if program is not None:
            spec["program"] = program
        with open(os.path.join(spool, "job.json"), "w") as f:
            json.dump(spec, f)
        out = os.path.join(spool, "slurm")
        os.mkdir(out, 0o700)
        os.chown(out, uid, gid)
        return spool

    def launch_as(self, user, spool):
        return users.run_as(user, [self.launcher, spool], timeout=60)

    def read_json(self, spool, name):
        with open(os.path.join(spool, name)) as f:
            return json.load(f)

    def test_job_runs_through_slurm_as_the_user_in_the_sandbox(self):
        spool = self.job()
        rc, lines = self.cli("--name=gatewayd-j-launch", "launch", users.USER, os.path.basename(spool), self.launcher,
                             spool, os.path.join(spool, "slurm", "out"))
        self.assertEqual(rc, 0, lines)
        rc, seen = self.cli("wait", users.USER, str(lines[0]["job_id"]), "COMPLETED,FAILED,CANCELLED")
        with open(os.path.join(spool, "slurm", "out"), errors="replace") as f:
            slurm_out = f.read()
        self.assertEqual(seen[-1]["phase"], "COMPLETED", slurm_out)
        self.assertEqual(seen[-1]["user_name"], users.USER)
        exit_json = self.read_json(spool, "exit.json")
        self.assertEqual(exit_json["status"], "SUCCEEDED", exit_json)
        self.assertEqual(self.read_json(spool, "result.json"), {"ok": True})
        with open(os.path.join(spool, "log")) as f:
            self.assertEqual(f.read().splitlines()[0], str(self.uids[users.USER]))
        self.assertEqual(self.rootfs.mounts_under(self.gw), [])

    def assertRefused(self, user, spool, text):
        p = self.launch_as(user, spool)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(text, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(spool, "exit.json")), "the worker ran")
        self.assertEqual(self.rootfs.mounts_under(self.gw), [])

    def test_someone_elses_job_is_refused(self):
        self.assertRefused(users.OTHER, self.job(owner=users.USER), "is not yours")

    def test_image_outside_the_image_directory_is_refused(self):
        # A root-owned squashfs elsewhere (the build's copy), and a system file.
        outside = os.path.join(self.gw, "build", "busybox.squashfs")
        self.assertRefused(users.USER, self.job(image=outside), "is not a file directly inside")
        self.assertRefused(users.USER, self.job(image="/etc/shadow"), "is not a file directly inside")
        self.assertRefused(users.USER, self.job(image=os.path.join(self.image_dir, "..", "build",
                                                                   "busybox.squashfs")),
                           "is not a file directly inside")

    def test_program_layer_outside_the_image_directory_is_refused(self):
        # a program job's layer is mounted too: the same rule as the image's
        outside = os.path.join(self.gw, "build", "busybox.squashfs")
        self.assertRefused(users.USER, self.job(program={"path": outside}), "program layer")
        self.assertRefused(users.USER, self.job(program={"path": "/etc/shadow"}), "is not a file directly inside")
        self.assertRefused(users.USER, self.job(program={"token": "x"}), "without program.path")

    def test_symlink_in_the_image_directory_is_refused(self):
        link = os.path.join(self.image_dir, "link.squashfs")
        os.symlink(os.path.join(self.gw, "build", "busybox.squashfs"), link)
        try:
            self.assertRefused(users.USER, self.job(image=link), "cannot open the image")
        finally:
            os.unlink(link)

    def test_job_not_written_by_gatewayd_is_refused(self):
        # job.json of the user (as if the user had written it), a spool the user may write, a
        # spool outside SpoolDir, a finished job.
        spool = self.job()
        os.chown(os.path.join(spool, "job.json"), self.uids[users.USER], -1)
        self.assertRefused(users.USER, spool, "job.json must be a regular file owned by root")
        spool = self.job()
        os.chmod(spool, 0o777)
        self.assertRefused(users.USER, spool, "must be owned by root and not writable")
        own = os.path.join(self.cluster.jobs_dir, "myspool")
        os.makedirs(own, exist_ok=True)
        self.assertRefused(users.USER, own, "is not a job directory directly inside")
        self.assertRefused(users.USER, os.path.join(self.spool_root, "..", "spool", os.path.basename(spool)),
                           "is not a job directory directly inside")
        spool = self.job()
        with open(os.path.join(spool, "exit.json"), "w") as f:
            f.write("{}")
        p = self.launch_as(users.USER, spool)
        self.assertEqual(p.returncode, 1)
        self.assertIn("has run already", p.stderr)

    def test_environment_does_not_reach_root(self):
        # LD_PRELOAD and friends are dropped before anything runs as root; the job still runs.
        spool = self.job(command="id -u")
        p = subprocess.run(["runuser", "-u", users.USER, "--", "env", "LD_PRELOAD=/nonexistent.so",
                            "GCONV_PATH=/tmp", self.launcher, spool], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.read_json(spool, "exit.json")["status"], "SUCCEEDED")
