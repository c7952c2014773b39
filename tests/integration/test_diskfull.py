"""A full disk: gatewayd's state directory is a small tmpfs. A job whose output fills it ends
FAILED (DISK_FULL) while the daemon keeps serving; submissions are refused with 507 and leave
nothing behind until space is freed; gatewayd restarted on a full disk comes up, serves, and
stores the outcomes it could not store as soon as there is room, memory and database agreeing
all along. Real components: docker-registry, gateway-worker pull and run, bubblewrap, dbus-daemon,
polkitd."""
import os
import signal
import sqlite3
import subprocess
import unittest

from harness import procs, users
from harness.smallfs import SmallFs
from test_jobs import TERMINAL, JobsBase

# Lines of 4000 bytes, as fast as the shell can print them, for ever.
FILL = 'yes "$(head -c 4000 /dev/zero | tr \'\\0\' x)"'
DB_RESERVE = 4 * 1024 * 1024


class DiskFullTest(JobsBase):
    jobs_per_user = 2
    active_jobs_per_user = 20
    # far more than the file system holds: the disk fills before the log limit is reached
    extra_config = {"LogMax": "1G"}

    @classmethod
    def setUpClass(cls):
        cls.fs = SmallFs("48m")
        cls.state_dir = os.path.join(cls.fs.path, "state")
        try:
            super().setUpClass()
        except BaseException:
            cls.fs.cleanup()
            raise
        if cls.skip_reason:
            cls.fs.cleanup()
            return
        svc = f"jobs-fill-{os.getpid() % 10000}"
        r = cls.gw.http("POST", "/v1/services", {"name": svc, "image": cls.image_ref,
                                                   "command": ["/bin/sh", "-c", FILL]})
        assert r.status == 201, r.body
        cls.services["fill"] = svc

    @classmethod
    def tearDownClass(cls):
        if cls.skip_reason:
            return
        try:
            super().tearDownClass()
        finally:
            cls.fs.cleanup()

    def tearDown(self):
        if not self.skip_reason:
            self.fs.unfill()
        super().tearDown()

    # ---- helpers ----

    @property
    def jobs_dir(self):
        return os.path.join(self.state_dir, "jobs")

    @property
    def db_reserve(self):
        return os.path.join(self.state_dir, "state.db.reserve")

    def db_states(self):
        con = sqlite3.connect(f"file:{os.path.join(self.state_dir, 'state.db')}?mode=ro", uri=True)
        try:
            return dict(con.execute("SELECT id, state FROM jobs"))
        finally:
            con.close()

    def http_states(self):
        r = self.gw.http("GET", "/v1/jobs?all=1&limit=1000", as_user=None)
        self.assertEqual(r.status, 200, r.body)
        return {j["id"]: j["status"] for j in r.json["jobs"]}

    def assertConsistent(self):
        """What clients see is what the database holds, job by job."""
        self.assertEqual(self.http_states(), self.db_states())

    def assertRefused(self):
        """A submission on every surface: 507 / InsufficientStorage, and nothing stored."""
        dirs = sorted(os.listdir(self.jobs_dir))
        before = self.http_states()
        r = self.gw.http("POST", f"/v1/services/{self.services['echo']}/jobs", {"data": {"n": 1}},
                         as_user=users.USER)
        self.assertError(r, 507, "InsufficientStorage")
        self.assertIn("full", r.json["error"]["message"])
        r = self.gw.http("POST", f"/planqk/{self.services['echo']}/", {"data": {"n": 1}}, as_user=users.USER)
        self.assertError(r, 507, "InsufficientStorage")
        p, err = self.gw.gdbus_call("SubmitJob", self.services["echo"], "{}", "{}", as_user=users.USER)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.InsufficientStorage", p.stderr)
        self.assertEqual(sorted(os.listdir(self.jobs_dir)), dirs, "a refused submission left a spool")
        self.assertEqual(self.http_states(), before)
        self.assertConsistent()

    def run_echo(self):
        jid = self.submit("echo", data={"n": 7}).json["id"]
        j = self.wait_status(jid, TERMINAL)
        self.assertEqual(j["status"], "SUCCEEDED", j)
        return jid

    # ---- tests (in this order: the second starts where the first left the disk) ----

    def test_1_job_fills_disk(self):
        self.run_echo()   # the image is READY: nothing below needs to pull
        self.fs.fill(leave=8 * 1024 * 1024)
        jid = self.submit("fill").json["id"]
        j = self.wait_status(jid, TERMINAL, timeout=30)
        self.assertEqual(j["status"], "FAILED", j)
        self.assertEqual(j["error"]["code"], "DISK_FULL", j)
        self.assertLess(self.fs.free_bytes(), DB_RESERVE)   # still full
        self.assertServing()
        self.assertConsistent()
        r = self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER)
        self.assertEqual(r.json["code"], "DISK_FULL")

        self.assertRefused()

        # space freed by the admin: the daemon takes its reserve again and accepts jobs
        self.fs.unfill()
        os.unlink(os.path.join(self.jobs_dir, jid, "log"))
        self.run_echo()
        self.assertTrue(os.path.exists(self.db_reserve))
        self.assertConsistent()

    def test_2_restart_while_full(self):
        jid = self.submit("sleep", params={"sleep": 2}).json["id"]
        self.wait_log(jid, "sleeping 2")
        self.gw.kill(signal.SIGKILL)
        # The disk fills while gatewayd is away; the job ends meanwhile and records its outcome
        # in its reserve (its result did not fit).
        self.fs.fill()
        exit_json = os.path.join(self.jobs_dir, jid, "exit.json")
        procs.wait_for(lambda: os.path.exists(exit_json), timeout=30, what="the worker to finish")
        # The worst case: the database's reserve was used up before, nothing is left, and the
        # WAL has no room in it (checkpointed and emptied; kept, with its index, on close): the
        # daemon cannot store anything after the restart.
        if os.path.exists(self.db_reserve):
            os.unlink(self.db_reserve)
        db = os.path.join(self.state_dir, "state.db")
        subprocess.run(["sqlite3", db, ".filectrl persist_wal 1", "PRAGMA wal_checkpoint(TRUNCATE);"],
                       check=True, capture_output=True)
        self.assertEqual(os.path.getsize(db + "-wal"), 0)
        self.fs.fill()
        self.assertEqual(self.fs.free_bytes(), 0)

        self.gw.start()
        self.assertServing()
        # the outcome was refused (and is retried): memory shows what the database has
        procs.wait_for(lambda: f"Job {jid}: cannot store" in self.gw.stderr_text(), timeout=10,
                       what="a refused commit")
        self.assertEqual(self.job(jid)["status"], "RUNNING")
        self.assertConsistent()
        self.assertRefused()

        self.fs.unfill()
        j = self.wait_status(jid, TERMINAL, timeout=15)
        # it succeeded, but its result could not be stored
        self.assertEqual(j["status"], "FAILED", j)
        self.assertEqual(j["error"]["code"], "DISK_FULL", j)
        self.assertConsistent()
        procs.wait_for(lambda: os.path.exists(self.db_reserve), timeout=15, what="the database reserve")
        self.run_echo()
        self.assertConsistent()


if __name__ == "__main__":
    unittest.main()
