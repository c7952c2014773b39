"""Nodes over SSH, node side: `gateway-worker connect` as the forced command of a real sshd, and
`gateway-worker serve` behind an emulated Accept=yes node socket, driven with the OpenSSH client
through the relay (docs/worker-serve.md, docs/nodes.md). Two nodes on one host."""
import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import procs, rootfs, sshnode

JOB_A = "3f1c2a9e-1111-4a4a-8b8b-000000000001"


def setUpModule():
    # Detached jobs double-fork away from serve; make them our orphans so they can be reaped.
    sshnode.subreaper(True)


def tearDownModule():
    sshnode.reap_orphans()
    sshnode.subreaper(False)


def serve_processes(node):
    """pids of the node's serve processes (not systemd-socket-activate, which names it too)."""
    want = f"{sshnode.worker_binary()}\0serve\0--state-dir={node.state}\0".encode()
    found = []
    for pid in procs.pids_mentioning(f"--state-dir={node.state}"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(want):
                    found.append(pid)
        except OSError:
            pass
    return found


def job_spec(image, script, **kw):
    spec = {"image": {"id": image, "meta": {"env": ["PATH=/bin:/usr/local/bin"]}},
            "command": ["sh", "-c", script]}
    spec.update(kw)
    return spec


class Nodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = procs.TempDir(prefix="gatewayd-nodes-")
        cls.key = sshnode.client_key(cls.tmp.path)
        cls.image_path = rootfs.busybox_image()
        with open(cls.image_path, "rb") as f:
            cls.image = hashlib.sha256(f.read()).hexdigest()
        cls.meta_path = os.path.join(cls.tmp.path, "busybox.meta")
        with open(cls.meta_path, "w") as f:
            f.write("FORMAT: squashfs\nENV: PATH=/bin:/usr/local/bin\n")
        cls.nodes = []
        try:
            for name in ("a", "b"):
                cls.nodes.append(sshnode.SSHNode(name, cls.key, serve_args=[
                    "--max-request=256K", "--lost-after=5", "--run-option=--kill-grace=1",
                    "--run-option=--events-max=64K"]).start())
            cls.a, cls.b = cls.nodes
            # Deploy the image to both nodes the way gatewayd will: SFTP through the forced
            # command as partial files, then image-install by the root serve.
            for n in cls.nodes:
                cls.deploy(n)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def deploy(cls, node):
        p = node.sftp(f"put {cls.image_path} {cls.image}.squashfs.partial\n"
                      f"put {cls.meta_path} {cls.image}.meta.partial\n")
        if p.returncode != 0:
            raise AssertionError(f"sftp failed: {p.stderr}\n{node.log()}")
        ev = node.request({"op": "image-install", "image": cls.image, "size": os.path.getsize(cls.image_path),
                           "metaSize": os.path.getsize(cls.meta_path), "req": "deploy"})
        if ev.get("event") != "image-installed":
            raise AssertionError(f"image-install: {ev}")

    @classmethod
    def tearDownClass(cls):
        for n in getattr(cls, "nodes", []):
            n.stop()
        cls.tmp.cleanup()

    # ---- the account and the relay ----

    def test_hello_on_two_nodes(self):
        ha = self.a.request({"op": "hello", "req": 7})
        hb = self.b.request({"op": "hello"})
        self.assertEqual(ha["event"], "hello")
        self.assertEqual(ha["req"], 7)
        self.assertEqual(ha["protocol"], 1)
        self.assertEqual(ha["slots"], os.cpu_count())
        self.assertGreater(ha["freeDisk"], 0)
        self.assertEqual(ha["launch"], "detached")     # no systemd as PID 1 here
        self.assertIsInstance(ha["running"], list)
        # Each node answers with its own paths.
        self.assertEqual(ha["imageDir"], self.a.images)
        self.assertEqual(hb["imageDir"], self.b.images)

    def test_image_uploaded_over_sftp_and_installed(self):
        # The setup uploaded with sftp (the subsystem, dispatched by connect to sftp-server in the
        # image directory) and installed: final names, account-owned dir, no partial left.
        for n in self.nodes:
            names = sorted(os.listdir(n.images))
            self.assertIn(f"{self.image}.squashfs", names)
            self.assertIn(f"{self.image}.meta", names)
            self.assertFalse([x for x in names if x.endswith(".partial") or x.startswith(".")], names)
            ev = n.request({"op": "image-list"})
            self.assertEqual(ev["event"], "images")
            self.assertIn({"image": self.image, "size": os.path.getsize(self.image_path), "meta": True}, ev["images"])
        # Installing again with nothing partial is fine and changes nothing.
        ev = self.a.request({"op": "image-install", "image": self.image})
        self.assertEqual(ev["event"], "image-installed")
        self.assertFalse(ev["installed"])

    def test_install_replaces_existing_image(self):
        """OpenSSH's SFTP rename cannot overwrite; image-install can (a re-deployed image)."""
        img = "ab" * 32
        try:
            for content in (b"first", b"second"):
                sq = os.path.join(self.tmp.path, "x.squashfs")
                with open(self.image_path, "rb") as src, open(sq, "wb") as dst:
                    data = src.read()
                    dst.write(data + content)
                # sftp the first time, scp (which speaks SFTP too) the second.
                if content == b"first":
                    p = self.a.sftp(f"put {sq} {img}.squashfs.partial\n")
                else:
                    p = self.a.scp(sq, f"{img}.squashfs.partial")
                self.assertEqual(p.returncode, 0, p.stderr)
                ev = self.a.request({"op": "image-install", "image": img, "size": len(data) + len(content)})
                self.assertEqual(ev["event"], "image-installed", ev)
                with open(os.path.join(self.a.images, f"{img}.squashfs"), "rb") as f:
                    self.assertTrue(f.read().endswith(content))
        finally:
            ev = self.a.request({"op": "image-remove", "image": img})
            self.assertEqual(ev["event"], "image-removed")
        self.assertFalse(os.path.exists(os.path.join(self.a.images, f"{img}.squashfs")))

    def test_torn_image_never_installed(self):
        img = "cd" * 32
        torn = os.path.join(self.tmp.path, "torn.squashfs")
        with open(self.image_path, "rb") as src, open(torn, "wb") as dst:
            dst.write(src.read()[: 64 * 1024])
        p = self.a.sftp(f"put {torn} {img}.squashfs.partial\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        try:
            ev = self.a.request({"op": "image-install", "image": img})
            self.assertEqual(ev["event"], "error")
            self.assertEqual(ev["code"], "BAD_FILE")
            self.assertIn("incomplete", ev["message"])
            # With the announced size: refused for the size already.
            ev = self.a.request({"op": "image-install", "image": img, "size": os.path.getsize(self.image_path)})
            self.assertEqual(ev["code"], "BAD_FILE")
            self.assertFalse(os.path.exists(os.path.join(self.a.images, f"{img}.squashfs")))
        finally:
            self.a.request({"op": "image-remove", "image": img})

    def test_disallowed_command_refused(self):
        p = subprocess.run(self.a.ssh_argv() + ["cat /etc/passwd"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("refusing to run", p.stderr)
        self.assertNotIn("root:", p.stdout)
        # scp's old protocol is a command too: refused.
        p = subprocess.run(self.a.ssh_argv() + ["scp -t /tmp"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("refusing to run", p.stderr)

    def test_relay_half_close(self):
        """The client's end of input reaches serve as EOF: it answers and the session ends."""
        p = subprocess.run(self.b.ssh_argv(), input='{"op":"hello"}\n{"op":"list"}\n',
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        events = [json.loads(x) for x in p.stdout.splitlines()]
        self.assertEqual([e["event"] for e in events], ["hello", "jobs"])
        # Asking for the relay by name is the same.
        p = subprocess.run(self.b.ssh_argv() + ["gateway-worker connect"], input='{"op":"hello"}\n',
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["event"], "hello")

    # ---- bad input ----

    def test_bad_input_answered_and_serve_keeps_going(self):
        s = self.b.session()
        try:
            cases = [
                (b"this is not json", "BAD_REQUEST"),
                (b'{"op":"hello"', "BAD_REQUEST"),
                (b"[1,2]", "BAD_REQUEST"),
                (b'{"no":"op"}', "BAD_REQUEST"),
                (b'{"op":"frobnicate"}', "UNKNOWN_OP"),
                (b'{"op":"start","job":"../../etc"}', "BAD_REQUEST"),
                (b'{"op":"attach","job":"j","from":-1}', "BAD_REQUEST"),
                (b'{"op":"start","job":"x1","spec":{"image":{"id":"../x"}}}', "INVALID_JOB"),
                (b'{"op":"start","job":"x2","spec":{"image":{"id":"' + b"e" * 64 + b'"}}}', "INVALID_JOB"),
                (b'{"op":"start","job":"x3","spec":{"image":{"id":"' + b"e" * 64 + b'","path":"/etc/shadow"},"command":["true"]}}', "INVALID_JOB"),
                (b'{"op":"start","job":"x4","spec":{"image":{"id":"' + b"e" * 64 + b'"},"command":["true"]}}', "IMAGE_NOT_FOUND"),
                (b'{"op":"start","job":"x5","spec":{"image":{"id":"' + self.image.encode() + b'"},"command":["true"],"resources":{"memroy":1}}}', "INVALID_JOB"),
                (b'{"op":"image-install","image":"../../etc/passwd"}', "BAD_NAME"),
                (b'{"op":"image-install","image":"' + b"A" * 64 + b'"}', "BAD_NAME"),
                (b'{"op":"image-remove","image":"x/../y"}', "BAD_NAME"),
                (b'{"op":"read","job":"x","file":"../../etc/shadow"}', "BAD_REQUEST"),
                (b'{"op":"hello","req":{"an":"object"}}', "BAD_REQUEST"),
                (b'{"op":"hello\\u0000"}', "BAD_REQUEST"),
                (b"\xff\xfe{}", "BAD_REQUEST"),
                (b"x" * 300 * 1024, "TOO_LARGE"),     # over --max-request=256K
            ]
            for line, code in cases:
                ev = s.request(line)
                self.assertEqual(ev["event"], "error", (line[:80], ev))
                self.assertEqual(ev["code"], code, (line[:80], ev))
                self.assertTrue(ev["message"])
            # No job directory came of any of it, and serve still answers.
            self.assertEqual(s.request({"op": "hello"})["event"], "hello")
            for j in ("x1", "x2", "x3", "x4", "x5"):
                self.assertFalse(os.path.exists(self.b.job_dir(j)), j)
        finally:
            s.close()

    def test_stale_staging_removed(self):
        """A start whose serve died before the rename leaves .new-<id>-<pid>: the next serve
        removes it (the job never existed); a live serve's staging stays."""
        jobs = os.path.join(self.b.state, "jobs")
        os.makedirs(jobs, exist_ok=True)
        stale = os.path.join(jobs, ".new-job-x-2147483647")
        live = os.path.join(jobs, f".new-job-y-{os.getpid()}")
        os.makedirs(os.path.join(stale, "input"))
        os.makedirs(live)
        try:
            self.assertEqual(self.b.request({"op": "hello"})["event"], "hello")
            self.assertFalse(os.path.exists(stale))
            self.assertTrue(os.path.exists(live))
        finally:
            shutil.rmtree(stale, ignore_errors=True)
            shutil.rmtree(live, ignore_errors=True)

    def test_symlinked_partial_refused(self):
        """The account may leave a symlink as the partial file (here made with sftp itself):
        serve never follows it, and nothing appears under the final name."""
        img = "ef" * 32
        target = os.path.join(self.tmp.path, "secret")
        with open(target, "w") as f:
            f.write("secret\n")
        p = self.a.sftp(f"symlink {target} {img}.squashfs.partial\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        try:
            self.assertTrue(os.path.islink(os.path.join(self.a.images, f"{img}.squashfs.partial")))
            ev = self.a.request({"op": "image-install", "image": img})
            self.assertEqual(ev["event"], "error")
            self.assertEqual(ev["code"], "BAD_FILE")
            self.assertIn("symbolic link", ev["message"])
            self.assertFalse(os.path.lexists(os.path.join(self.a.images, f"{img}.squashfs")))
            # A hard link to another file is refused as well (st_nlink != 1).
            os.unlink(os.path.join(self.a.images, f"{img}.squashfs.partial"))
            os.link(target, os.path.join(self.a.images, f"{img}.squashfs.partial"))
            ev = self.a.request({"op": "image-install", "image": img})
            self.assertEqual(ev["code"], "BAD_FILE")
            self.assertIn("links", ev["message"])
            self.assertFalse(os.path.lexists(os.path.join(self.a.images, f"{img}.squashfs")))
        finally:
            self.a.request({"op": "image-remove", "image": img})
        self.assertFalse([x for x in os.listdir(self.a.images) if x.startswith(img)])

    # ---- jobs ----

    def start(self, session, job, spec, **kw):
        ev = session.request(dict({"op": "start", "job": job, "spec": spec}, **kw))
        self.assertEqual(ev["event"], "started", ev)
        return ev

    def test_job_result_and_files(self):
        job = "job-result-1"
        s = self.b.session()
        try:
            ev = self.start(s, job, job_spec(self.image,
                                             "cat /var/input/data.json; echo; echo 'PlanQK:Job:InterimResult: {\"step\":1}';"
                                             " echo 'PlanQK:Job:Result: {\"sum\":3}'"),
                            input={"data.json": '{"a":1,"b":2}', "params.json": "{}"})
            self.assertTrue(ev["created"])
            s.send({"op": "attach", "job": job, "from": 0, "req": "att"})
            events = s.read_until(lambda e: e["event"] == "finished")
        finally:
            s.close()
        self.assertEqual(events[0]["event"], "attached")
        stream = events[1:]
        self.assertEqual([e["seq"] for e in stream], list(range(1, len(stream) + 1)))
        self.assertTrue(all(e["job"] == job and e["req"] == "att" for e in stream))
        kinds = [e["event"] for e in stream]
        self.assertEqual(kinds[0], "status")
        self.assertIn("interim", kinds)
        self.assertEqual(kinds[-2:], ["done", "finished"])
        logs = [e["line"] for e in stream if e["event"] == "log" and "line" in e]
        self.assertIn('{"a":1,"b":2}', logs)
        fin = stream[-1]
        self.assertEqual(fin["exit"]["status"], "SUCCEEDED")
        self.assertEqual(fin["result"], {"sum": 3})
        self.assertEqual(fin["interim"], [{"step": 1}])
        log = base64.b64decode(fin["logTail"]).decode()
        self.assertIn("PlanQK:Job:Result", log)
        self.assertEqual(fin["logSize"], len(log.encode()))
        # The node spool has the layout of gateway-worker run, and read gives the files.
        d = self.b.job_dir(job)
        for f in ("job.json", "input/data.json", "log", "result.json", "exit.json", "events.jsonl"):
            self.assertTrue(os.path.exists(os.path.join(d, f)), f)
        with open(os.path.join(d, "job.json")) as f:
            self.assertEqual(json.load(f)["image"]["path"], os.path.join(self.b.images, f"{self.image}.squashfs"))
        ev = self.b.request({"op": "read", "job": job, "file": "log", "offset": 0, "length": 4096})
        self.assertEqual(ev["event"], "data")
        self.assertEqual(base64.b64decode(ev["data"]).decode(), log)
        self.assertTrue(ev["eof"])
        # Remove: the spool is gone; a second remove is NOT_FOUND.
        self.assertEqual(self.b.request({"op": "remove", "job": job})["event"], "removed")
        self.assertFalse(os.path.exists(d))
        self.assertEqual(self.b.request({"op": "remove", "job": job})["code"], "NOT_FOUND")

    def test_save_result(self):
        """save-result (gatewayd's POST /api/v1/jobs/{id}/result/ for a job on a node): written
        where the job's result endpoint writes it, so the worker takes it as the job's result
        (over the marker's); refused for a finished job, a job that is not a program's, an
        unknown job and a result that is not JSON text."""
        job, plain = "job-save-1", "job-save-plain"
        s = self.b.session()
        try:
            # a program job: its layer is named by id like an image (here the image's file serves as one)
            self.start(s, job, job_spec(self.image, "echo up; sleep 3; echo 'PlanQK:Job:Result: {\"marker\":1}'",
                                        program={"id": self.image, "token": "a" * 64}))
            s.send({"op": "attach", "job": job})
            s.read_until(lambda e: e.get("line") == "up")
            ev = self.b.request({"op": "save-result", "job": job, "result": '{"saved": [1, 2]}'})
            self.assertEqual(ev, {"event": "result-saved", "job": job}, ev)
            fin = s.read_until(lambda e: e["event"] == "finished")[-1]
            for req, code in (({"op": "save-result", "job": job}, "BAD_REQUEST"),
                              ({"op": "save-result", "job": job, "result": "{nope"}, "BAD_REQUEST"),
                              ({"op": "save-result", "job": job, "result": {"not": "text"}}, "BAD_REQUEST"),
                              ({"op": "save-result", "job": "no-such-job", "result": "1"}, "NOT_FOUND"),
                              ({"op": "save-result", "job": "../x", "result": "1"}, "BAD_REQUEST")):
                ev = self.b.request(req)
                self.assertEqual((ev["event"], ev["code"]), ("error", code), (req, ev))
            self.start(s, plain, job_spec(self.image, "sleep 2"))
            ev = self.b.request({"op": "save-result", "job": plain, "result": "1"})
            self.assertEqual(ev["code"], "NOT_A_PROGRAM", ev)
            s.send({"op": "cancel", "job": plain})
        finally:
            s.close()
        self.assertEqual(fin["exit"]["status"], "SUCCEEDED", fin)
        self.assertEqual(fin["result"], {"saved": [1, 2]})
        self.assertFalse(os.path.exists(os.path.join(self.b.job_dir(job), "saved-result.json")))
        ev = self.b.request({"op": "save-result", "job": job, "result": "1"})
        self.assertEqual(ev["code"], "FINISHED", ev)
        self.assertEqual(self.b.request({"op": "hello"})["event"], "hello")
        for j in (job, plain):
            procs.wait_for(lambda: self.b.request({"op": "remove", "job": j})["event"] == "removed", timeout=30,
                           what=f"{j} removed")

    def test_lost_connection_resume_exactly_once(self):
        """Kill the SSH client mid-job: the job keeps running; a new connection attaches from
        the last sequence number seen and gets the rest exactly once, and the same result; a
        second start of the same id does not run the job again."""
        job = JOB_A
        # Quiet for a while after the first line: serve must notice the lost peer by itself.
        script = ("echo first; sleep 3; for i in 1 2 3 4 5 6; do sleep 0.1; echo line$i; done;"
                  " echo 'PlanQK:Job:Result: {\"ok\":true}'")
        s = self.a.session()
        try:
            self.start(s, job, job_spec(self.image, script))
            s.send({"op": "attach", "job": job})
            seen = s.read_until(lambda e: e.get("line") == "first")
        finally:
            s.kill()
        self.assertNotIn("finished", [e["event"] for e in seen])
        last = seen[-1]["seq"]

        # The connection's serve notices the peer is gone and ends at once (not only at the
        # job's next event), and the worker survives it.
        procs.wait_for(lambda: not serve_processes(self.a), timeout=1.5, what="the connection's serve to exit")
        pid = self.a.worker_pid(job)
        self.assertIsNotNone(pid, "the job's worker is gone with the connection")

        s = self.a.session()
        try:
            again = s.request({"op": "start", "job": job, "spec": job_spec(self.image, "echo SECOND RUN")})
            self.assertEqual(again["event"], "started")
            self.assertFalse(again["created"])
            self.assertIn(again["state"], ("running", "finished"))
            s.send({"op": "attach", "job": job, "from": last})
            rest = s.read_until(lambda e: e["event"] == "finished")
        finally:
            s.close()
        self.assertEqual(rest[0]["event"], "attached")
        rest = rest[1:]
        self.assertEqual([e["seq"] for e in rest], list(range(last + 1, last + 1 + len(rest))))
        lines = [e["line"] for e in seen + rest if e["event"] == "log" and "line" in e]
        self.assertEqual(lines, ["first"] + [f"line{i}" for i in range(1, 7)] + ['PlanQK:Job:Result: {"ok":true}'])
        self.assertEqual(rest[-1]["result"], {"ok": True})
        self.assertEqual(rest[-1]["exit"]["status"], "SUCCEEDED")
        # One run: one RUNNING and one FINISHING status in the node's event log, and no trace of
        # the second spec.
        with open(os.path.join(self.a.job_dir(job), "events.jsonl")) as f:
            persisted = [json.loads(x) for x in f]
        self.assertEqual([e["status"] for e in persisted if e["event"] == "status"], ["RUNNING", "FINISHING"])
        self.assertNotIn("SECOND RUN", json.dumps(persisted))
        # Attaching again after the end gives the same final answer.
        s = self.a.session()
        try:
            s.send({"op": "attach", "job": job, "from": rest[-1]["seq"]})
            again = s.read_until(lambda e: e["event"] == "finished")
        finally:
            s.close()
        self.assertEqual([e["event"] for e in again], ["attached", "finished"])
        self.assertEqual(again[-1]["result"], {"ok": True})
        self.assertEqual(self.a.request({"op": "remove", "job": job})["event"], "removed")

    def test_events_file_bounded(self):
        """A job that prints without end cannot grow events.jsonl past --events-max; the stream
        says so, still ends with done and finished, and the log has everything."""
        job = "job-chatty-1"
        s = self.a.session()
        try:
            self.start(s, job, job_spec(self.image, "seq 1 5000"))
            s.send({"op": "attach", "job": job})
            events = s.read_until(lambda e: e["event"] == "finished")
        finally:
            s.close()
        self.assertLessEqual(os.path.getsize(os.path.join(self.a.job_dir(job), "events.jsonl")), 64 * 1024 + 4096)
        warnings = [e for e in events if e.get("level") == "warning" and "Event limit" in e.get("message", "")]
        self.assertEqual(len(warnings), 1)
        self.assertEqual([e["event"] for e in events[-2:]], ["done", "finished"])
        self.assertEqual(events[-1]["logSize"], sum(len(f"{i}\n") for i in range(1, 5001)))
        self.assertEqual(self.a.request({"op": "remove", "job": job})["event"], "removed")

    def test_cancel(self):
        job = "job-cancel-1"
        s = self.b.session()
        try:
            self.start(s, job, job_spec(self.image, "echo started; sleep 60"))
            s.send({"op": "attach", "job": job})
            s.read_until(lambda e: e.get("line") == "started")
            hello = self.b.request({"op": "hello"})
            self.assertIn(job, hello["running"])
            ev = self.b.request({"op": "cancel", "job": job})
            self.assertEqual(ev["event"], "cancel")
            self.assertTrue(ev["signalled"])
            fin = s.read_until(lambda e: e["event"] == "finished")[-1]
        finally:
            s.close()
        self.assertEqual(fin["exit"]["status"], "CANCELLED")
        self.assertIsNone(fin["result"])
        # Cancelling a finished job changes nothing; list shows it finished.
        ev = self.b.request({"op": "cancel", "job": job})
        self.assertEqual(ev["state"], "finished")
        self.assertFalse(ev["signalled"])
        jobs = self.b.request({"op": "list"})["jobs"]
        self.assertIn(job, [j["job"] for j in jobs if j["state"] == "finished"])
        self.assertEqual(self.b.request({"op": "remove", "job": job})["event"], "removed")

    def test_remove_running_refused(self):
        job = "job-busy-1"
        s = self.b.session()
        try:
            self.start(s, job, job_spec(self.image, "echo up; sleep 60"))
            s.send({"op": "attach", "job": job})
            s.read_until(lambda e: e.get("line") == "up")
            ev = s.request({"op": "remove", "job": job})
            self.assertEqual(ev["code"], "CONFLICT")
            s.send({"op": "cancel", "job": job})
            s.read_until(lambda e: e["event"] == "finished")
        finally:
            s.close()
        self.assertEqual(self.b.request({"op": "remove", "job": job})["event"], "removed")

    def test_vanished_worker_is_lost_not_rerun(self):
        """A worker killed -9 leaves no exit.json: after --lost-after the job ends FAILED
        (WORKER_LOST), for every reader the same, and is never started again."""
        job = "job-lost-1"
        s = self.a.session()
        try:
            self.start(s, job, job_spec(self.image, "echo up; sleep 60"))
            s.send({"op": "attach", "job": job})
            s.read_until(lambda e: e.get("line") == "up")
            os.kill(self.a.worker_pid(job), 9)
            fin = s.read_until(lambda e: e["event"] == "finished", timeout=30)[-1]
        finally:
            s.close()
        self.assertEqual(fin["exit"]["status"], "FAILED")
        self.assertEqual(fin["exit"]["error"]["code"], "WORKER_LOST")
        ev = self.a.request({"op": "start", "job": job, "spec": job_spec(self.image, "true")})
        self.assertFalse(ev["created"])
        self.assertEqual(ev["exit"]["error"]["code"], "WORKER_LOST")
        self.assertEqual(self.a.request({"op": "remove", "job": job})["event"], "removed")


if __name__ == "__main__":
    unittest.main()


class SystemdNode(unittest.TestCase):
    """A node booted with systemd, the real node units from a meson install: a job runs as
    the transient unit gateway-job-<id>, owned by the service manager, and survives killing the
    SSH connection (and the gateway-worker@ instance that started it)."""

    @classmethod
    def setUpClass(cls):
        from harness.install import Destdir
        if not shutil.which("systemd-nspawn"):
            raise unittest.SkipTest("systemd-nspawn not installed")
        cls.tmp = procs.TempDir(prefix="gatewayd-sdnode-")
        cls.dest = Destdir()
        cls.key = sshnode.client_key(cls.tmp.path)
        cls.image_path = rootfs.busybox_image()
        with open(cls.image_path, "rb") as f:
            cls.image = hashlib.sha256(f.read()).hexdigest()
        cls.node = None
        try:
            cls.node = sshnode.SystemdNode("sd", cls.key, cls.dest.path).start()
            p = cls.node.sftp(f"put {cls.image_path} {cls.image}.squashfs.partial\n")
            if p.returncode != 0:
                raise AssertionError(f"sftp: {p.stderr}\n{cls.node.log()}")
            ev = cls.node.request({"op": "image-install", "image": cls.image})
            if ev.get("event") != "image-installed":
                raise AssertionError(f"image-install: {ev}")
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "node", None):
            cls.node.stop()
        cls.dest.cleanup()
        cls.tmp.cleanup()

    def unit_state(self, job):
        return self.node.run(["systemctl", "is-active", f"gateway-job-{job}.service"], check=False).stdout.strip()

    def test_job_unit_survives_lost_connection(self):
        node = self.node
        hello = node.request({"op": "hello"})
        self.assertEqual(hello["launch"], "systemd")
        job = "7d0c4a2e-2222-4b4b-9c9c-000000000002"
        script = "echo first; for i in 1 2 3 4 5; do sleep 0.4; echo line$i; done; echo 'PlanQK:Job:Result: {\"node\":\"sd\"}'"
        s = node.session()
        try:
            ev = s.request({"op": "start", "job": job, "spec": job_spec(self.image, script)})
            self.assertEqual(ev["event"], "started", f"{ev}\n{node.run(['journalctl', '--no-pager', '-n', '50'], check=False).stdout}")
            self.assertEqual(ev["unit"], f"gateway-job-{job}.service")
            s.send({"op": "attach", "job": job})
            seen = s.read_until(lambda e: e.get("line") == "first", timeout=30)
        finally:
            s.kill()
        last = seen[-1]["seq"]
        # The job is its own unit, outside the connection's gateway-worker@ instance, and alive.
        self.assertEqual(self.unit_state(job), "active")
        cg = node.run(["systemctl", "show", "-P", "ControlGroup", f"gateway-job-{job}.service"]).stdout.strip()
        self.assertTrue(cg.endswith(f"/gateway-job-{job}.service"), cg)
        self.assertNotIn("gateway-worker@", cg)

        s = node.session()
        try:
            again = s.request({"op": "start", "job": job, "spec": job_spec(self.image, "echo SECOND RUN")})
            self.assertFalse(again["created"])
            s.send({"op": "attach", "job": job, "from": last})
            rest = s.read_until(lambda e: e["event"] == "finished", timeout=30)[1:]
        finally:
            s.close()
        self.assertEqual([e["seq"] for e in rest], list(range(last + 1, last + 1 + len(rest))))
        lines = [e["line"] for e in seen + rest if e["event"] == "log" and "line" in e]
        self.assertEqual(lines, ["first"] + [f"line{i}" for i in range(1, 6)] + ['PlanQK:Job:Result: {"node":"sd"}'])
        self.assertEqual(rest[-1]["exit"]["status"], "SUCCEEDED", rest[-1])
        self.assertEqual(rest[-1]["result"], {"node": "sd"})
        # --collect: the unit is gone once it ended.
        procs.wait_for(lambda: self.unit_state(job) in ("inactive", "unknown"), what="job unit collected")
        self.assertEqual(node.request({"op": "remove", "job": job})["event"], "removed")

    def test_cancel_job_unit(self):
        """cancel signals the worker in its unit: the job ends CANCELLED and the unit is gone."""
        node = self.node
        job = "job-sd-cancel-1"
        s = node.session()
        try:
            ev = s.request({"op": "start", "job": job, "spec": job_spec(self.image, "echo up; sleep 60")})
            self.assertEqual(ev["event"], "started", ev)
            s.send({"op": "attach", "job": job})
            s.read_until(lambda e: e.get("line") == "up", timeout=30)
            self.assertEqual(self.unit_state(job), "active")
            ev = node.request({"op": "cancel", "job": job})
            self.assertTrue(ev["signalled"], ev)
            fin = s.read_until(lambda e: e["event"] == "finished", timeout=30)[-1]
        finally:
            s.close()
        self.assertEqual(fin["exit"]["status"], "CANCELLED")
        procs.wait_for(lambda: self.unit_state(job) in ("inactive", "unknown"), what="job unit collected")
        self.assertEqual(node.request({"op": "remove", "job": job})["event"], "removed")


class ServeInput(unittest.TestCase):
    """serve on pipes (no SSH): many mangled requests, each answered with exactly one event;
    serve neither crashes nor stops answering."""

    def test_mangled_requests(self):
        import random
        rnd = random.Random(4711)
        tmp = procs.TempDir(prefix="gatewayd-serve-")
        self.addCleanup(tmp.cleanup)
        values = [None, True, 0, -1, 2**63, 1.5, "", "x" * 200, "../../etc", "a/b", "\u00e9", [], {}, [1, {}],
                  {"id": "e" * 64}, {"image": {"id": "e" * 64}}, "e" * 64, "j-1"]
        keys = ["op", "job", "spec", "input", "from", "file", "offset", "length", "image", "size", "metaSize", "req"]
        ops = ["hello", "start", "attach", "cancel", "remove", "list", "read", "image-install", "image-remove",
               "image-list", "nope", 5]
        lines = []
        for _ in range(600):
            req = {"op": rnd.choice(ops)}
            for k in rnd.sample(keys, rnd.randint(0, 5)):
                req[k] = rnd.choice(values)
            text = json.dumps(req)
            if rnd.random() < 0.2:      # byte-level damage
                i = rnd.randrange(len(text))
                text = text[:i] + rnd.choice(["", "\"", "{", "\\", "\x00", "\xff"]) + text[i + 1:]
            lines.append(text.replace("\n", " "))
        data = "".join(l + "\n" for l in lines).encode("utf-8", "surrogateescape") + b'{"op":"hello"}\n'
        p = subprocess.run([sshnode.worker_binary(), "serve", f"--state-dir={tmp.path}", "--launch=detached",
                            f"--runtime-dir={tmp.path}/rt"], input=data, capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        out = [json.loads(x) for x in p.stdout.decode().splitlines()]
        blank = sum(1 for l in lines if not l.strip(" \t\r"))
        self.assertEqual(len(out), len(lines) - blank + 1)
        self.assertEqual(out[-1]["event"], "hello")
        # Nothing was started: no spec was valid (no image is installed).
        self.assertFalse([j for j in os.listdir(os.path.join(tmp.path, "jobs"))])
