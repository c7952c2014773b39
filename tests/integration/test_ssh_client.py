"""Nodes over SSH, gatewayd side: ssh-session.c (one non-blocking libssh2 session per node on an
sd-event loop) and node-client.c (serve's protocol over it), driven through tests/helpers/node-cli
against real sshd nodes with the forced command (harness/sshnode.py)."""
import hashlib
import json
import os
import select
import signal
import subprocess
import time
import unittest

from harness import procs, rootfs, sshnode


def setUpModule():
    sshnode.subreaper(True)


def tearDownModule():
    sshnode.reap_orphans()
    sshnode.subreaper(False)


def node_cli():
    return os.path.join(procs.build_dir(), "tests", "helpers", "node-cli")


def cli_env():
    """node-cli's environment: in a sanitizer build, libssh2 1.10's own leak during ECDSA public
    key authentication (in libcrypto allocations it makes and never frees) is suppressed by
    module; full stacks are needed to see libssh2 in them. Our code's leaks still fail."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "fast_unwind_on_malloc=0"]))
    env["LSAN_OPTIONS"] = "suppressions=" + os.path.join(procs.source_dir(), "tests", "lsan-libssh2.supp")
    return env


def job_spec(image, script):
    return {"image": {"id": image, "meta": {"env": ["PATH=/bin:/usr/local/bin"]}},
            "command": ["sh", "-c", script]}


def session_processes(node):
    """The per-connection sshd processes ([priv] and its children) of node's listening sshd."""
    def children(pid):
        kids = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    kids += [int(k) for k in f.read().split()]
        except OSError:
            pass
        return kids
    found = []
    for pid in children(node.sshd.pid):
        found.append(pid)
        found += children(pid)
    return found


def sshd_log(node):
    with open(node.sshd_log_path, errors="replace") as f:
        return f.read()


class Cli:
    """A running node-cli; its stdout read line by line as JSON."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                     env=cli_env())
        self.buf = b""
        self.err = b""
        self.lines = []

    def wait_stderr(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        fd = self.proc.stderr.fileno()
        while text not in self.err:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"node-cli did not log {text!r}; logged {self.err!r}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"node-cli ended without logging {text!r}: {self.err!r}")
                self.err += chunk

    def next(self, timeout=20):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"node-cli said nothing more within {timeout}s; so far {self.lines}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return None
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        obj = json.loads(line)
        self.lines.append(obj)
        return obj

    def until(self, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            obj = self.next(max(0.1, deadline - time.monotonic()))
            if obj is None:
                raise AssertionError(f"node-cli ended before the awaited line; said {self.lines}; "
                                     f"stderr {self.proc.stderr.read().decode(errors='replace')}")
            if predicate(obj):
                return obj

    def finish(self, timeout=30):
        while self.next(timeout) is not None:
            pass
        rc = self.proc.wait(timeout)
        self.stderr = (self.err + self.proc.stderr.read()).decode(errors="replace")
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.finish()


class SSHClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = procs.TempDir(prefix="gatewayd-sshclient-")
        cls.key = sshnode.client_key(cls.tmp.path)
        cls.image_path = rootfs.busybox_image()
        with open(cls.image_path, "rb") as f:
            cls.image_bytes = f.read()
        cls.image = hashlib.sha256(cls.image_bytes).hexdigest()
        cls.meta_path = os.path.join(cls.tmp.path, "busybox.meta")
        with open(cls.meta_path, "w") as f:
            f.write("FORMAT: squashfs\nENV: PATH=/bin:/usr/local/bin\n")
        cls.nodes = []
        try:
            for name in ("a", "b"):
                cls.nodes.append(sshnode.SSHNode(name, cls.key, serve_args=[
                    "--lost-after=5", "--run-option=--kill-grace=1"]).start())
            cls.a, cls.b = cls.nodes
            # Both nodes at once, one session each: SFTP upload, then image-install.
            cls.deploy_rc, cls.deploy_lines, cls.deploy_err = cls.run_cli(
                cls.nodes, "deploy", cls.image, cls.image_path, cls.meta_path)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for n in getattr(cls, "nodes", []):
            n.stop()
        cls.tmp.cleanup()

    @classmethod
    def argv(cls, nodes, *args, known_hosts=None, key=None, options=()):
        argv = [node_cli(), "--user", sshnode.ACCOUNT, "--key", key or cls.key,
                "--known-hosts", known_hosts or nodes[0].known_hosts, "--timeout", "30", *options]
        for n in nodes:
            argv += ["--host", f"127.0.0.1:{n.port}"]
        return argv + list(args)

    @classmethod
    def run_cli(cls, nodes, *args, **kw):
        if len(nodes) > 1 and "known_hosts" not in kw:
            kh = os.path.join(cls.tmp.path, "known_hosts." + "-".join(n.name for n in nodes))
            with open(kh, "w") as f:
                for n in nodes:
                    with open(n.known_hosts) as g:
                        f.write(g.read())
            kw["known_hosts"] = kh
        p = subprocess.run(cls.argv(nodes, *args, **kw), capture_output=True, text=True, timeout=60, env=cli_env())
        return p.returncode, [json.loads(x) for x in p.stdout.splitlines()], p.stderr

    def node_env(self, name, **kw):
        """A node of the test's own (it is stopped or filled)."""
        n = sshnode.SSHNode(name, self.key, **kw).start()
        self.addCleanup(n.stop)
        return n

    # ---- connecting ----

    def test_hello_on_two_nodes(self):
        rc, lines, err = self.run_cli(self.nodes, "hello")
        self.assertEqual(rc, 0, err)
        hellos = {x["node"]: x["hello"] for x in lines if x["cli"] == "hello"}
        self.assertEqual(set(hellos), {f"127.0.0.1:{n.port}" for n in self.nodes})
        for n in self.nodes:
            h = hellos[f"127.0.0.1:{n.port}"]
            self.assertEqual(h["event"], "hello")
            self.assertEqual(h["slots"], os.cpu_count())
            self.assertGreater(h["freeDisk"], 0)
            self.assertIsInstance(h["running"], list)
            self.assertEqual(h["imageDir"], n.images)
        states = [(x["node"], x["state"]) for x in lines if x["cli"] == "state"]
        for n in self.nodes:
            name = f"127.0.0.1:{n.port}"
            self.assertEqual([s for h, s in states if h == name], ["connecting", "up"])

    def assert_refused_without_auth(self, node, known_hosts, want_reason):
        before = len(sshd_log(node))
        rc, lines, err = self.run_cli([node], "hello", known_hosts=known_hosts)
        self.assertEqual(rc, 3, (lines, err))
        states = [x for x in lines if x["cli"] == "state"]
        self.assertEqual([s["state"] for s in states], ["connecting", "refused"])
        self.assertIn(want_reason, states[-1]["reason"])
        self.assertIn("not logging in", states[-1]["reason"])
        self.assertIn("refused", err)       # the log line
        self.assertFalse([x for x in lines if x["cli"] == "hello"])
        # sshd saw the connection end before any authentication.
        procs.wait_for(lambda: "Connection closed by 127.0.0.1" in sshd_log(node)[before:] or
                       "Disconnected from" in sshd_log(node)[before:], what="sshd to log the end of the connection")
        new = sshd_log(node)[before:]
        for word in ("publickey", "Accepted", "Postponed", "Starting session"):
            self.assertNotIn(word, new)

    def test_wrong_host_key_refused_without_auth(self):
        other = os.path.join(self.tmp.path, "other_host_key")
        if not os.path.exists(other):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
        kh = os.path.join(self.tmp.path, "known_hosts.wrong")
        with open(other + ".pub") as f, open(kh, "w") as g:
            g.write(f"[127.0.0.1]:{self.a.port} " + " ".join(f.read().split()[:2]) + "\n")
        self.assert_refused_without_auth(self.a, kh, "HOST KEY MISMATCH")

    def test_unknown_host_refused_without_auth(self):
        # Only another port is listed (node b's entry): the host is unknown.
        kh = os.path.join(self.tmp.path, "known_hosts.unknown")
        with open(self.b.known_hosts) as f, open(kh, "w") as g:
            g.write(f.read())
        self.assert_refused_without_auth(self.a, kh, "unknown host key")

    def test_rsa_key_refused_at_config_time(self):
        rsa = os.path.join(self.tmp.path, "id_rsa")
        if not os.path.exists(rsa):
            subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa], check=True)
        before = len(sshd_log(self.a))
        rc, lines, err = self.run_cli([self.a], "hello", key=rsa)
        self.assertEqual(rc, 1)
        self.assertEqual(lines[-1]["cli"], "error")
        self.assertIn("RSA", lines[-1]["message"])
        self.assertIn("ed25519", lines[-1]["message"])
        self.assertFalse([x for x in lines if x["cli"] == "state"])   # no connection attempted
        self.assertNotIn("Connection from", sshd_log(self.a)[before:])
        rc, _, err = self.run_cli([self.a], "check-key")
        self.assertEqual(rc, 0, err)

    def test_ecdsa_key_logs_in(self):
        key = os.path.join(self.tmp.path, "id_ecdsa")
        if not os.path.exists(key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", key], check=True)
        n = sshnode.SSHNode("ecdsa", key).start()
        self.addCleanup(n.stop)
        rc, lines, err = self.run_cli([n], "hello", key=key)
        self.assertEqual(rc, 0, err)
        self.assertEqual(lines[-1]["hello"]["event"], "hello")

    def test_key_not_authorized_refused(self):
        other = os.path.join(self.tmp.path, "id_other")
        if not os.path.exists(other):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
        rc, lines, err = self.run_cli([self.a], "hello", key=other)
        self.assertEqual(rc, 3, (lines, err))
        self.assertEqual(lines[-1]["state"], "refused")
        self.assertIn("did not accept the key", lines[-1]["reason"])

    def test_host_name_resolved_off_the_loop(self):
        """A host entry that is a name, not an address: resolved in a thread (getaddrinfo may
        block), every address tried in turn (localhost may give ::1 first, where nothing
        listens), and the host key looked up under the name as configured."""
        kh = os.path.join(self.tmp.path, "known_hosts.localhost")
        with open(self.a.known_hosts) as f, open(kh, "w") as g:
            g.write(f.read().replace("[127.0.0.1]", "[localhost]"))
        argv = [node_cli(), "--user", sshnode.ACCOUNT, "--key", self.key, "--known-hosts", kh, "--timeout", "30",
                "--host", f"localhost:{self.a.port}", "hello"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=cli_env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lines = [json.loads(x) for x in p.stdout.splitlines()]
        self.assertEqual(lines[-1]["node"], f"localhost:{self.a.port}")
        self.assertEqual(lines[-1]["hello"]["imageDir"], self.a.images)

    def test_node_down_then_up_reconnects(self):
        n = self.node_env("down")
        cli = Cli(self.argv([n], "watch", options=["--backoff-min", "0.1", "--backoff-max", "0.4",
                                                   "--keepalive", "2", "--connect-timeout", "2"]))
        try:
            cli.until(lambda x: x["cli"] == "hello")
            # The node goes away: its sshd first (no new connections), then the connection's.
            sessions = session_processes(n)
            n.sshd.kill()
            n.sshd.wait()
            for pid in sessions:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            down = cli.until(lambda x: x["cli"] == "state")
            self.assertEqual(down["state"], "unreachable")
            # It keeps trying (refused by the kernel; the state stays unreachable) ...
            cli.wait_stderr(b"unreachable: cannot connect to 127.0.0.1 port")
            # ... and once the node is back on the same port, it reconnects by itself.
            self.restart_sshd(n)
            up = cli.until(lambda x: x["cli"] == "state")
            self.assertEqual(up["state"], "up")
            self.assertEqual(cli.until(lambda x: x["cli"] == "hello")["hello"]["event"], "hello")
        finally:
            rc = cli.stop()
        self.assertEqual(rc, 0, cli.stderr)
        self.assertIn("connection lost", cli.stderr)

    def test_silent_node_found_by_keepalives(self):
        """A node that stops answering (its sshd processes stopped: no RST, no FIN) is found by
        the keepalives; an attempt that gets no SSH banner times out; it comes back by itself."""
        n = self.node_env("silent")
        cli = Cli(self.argv([n], "watch", options=["--keepalive", "1", "--connect-timeout", "1",
                                                   "--backoff-min", "0.1", "--backoff-max", "0.3"]))
        stopped = []
        try:
            cli.until(lambda x: x["cli"] == "hello")
            stopped = session_processes(n) + [n.sshd.pid]
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
            t0 = time.monotonic()
            lost = cli.until(lambda x: x["cli"] == "state", timeout=10)
            self.assertEqual(lost["state"], "unreachable")
            self.assertIn("no answer from the node", lost["reason"])
            self.assertGreater(time.monotonic() - t0, 2)
            # The listener's kernel backlog accepts the TCP connection, but nobody speaks SSH.
            cli.wait_stderr(b"no connection within 1 s")
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
            stopped = []
            self.assertEqual(cli.until(lambda x: x["cli"] == "state")["state"], "up")
        finally:
            for pid in stopped:
                os.kill(pid, signal.SIGCONT)
            rc = cli.stop()
        self.assertEqual(rc, 0, cli.stderr)

    def restart_sshd(self, n):
        config = os.path.join(n.dir, "sshd", "sshd_config")
        log = open(os.path.join(n.dir, "sshd2.log"), "wb")
        p = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config], stdout=subprocess.DEVNULL, stderr=log)

        def stop():
            for pid in session_processes(type("N", (), {"sshd": p})):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.kill()
            p.wait()
            log.close()
        self.addCleanup(stop)
        procs.wait_for(lambda: b"Server listening" in open(log.name, "rb").read() or p.poll() is not None,
                       what="sshd to listen again")
        return p

    # ---- images ----

    def test_deploy_to_two_nodes(self):
        self.assertEqual(self.deploy_rc, 0, self.deploy_err)
        done = {x["node"]: x["event"] for x in self.deploy_lines if x["cli"] == "deployed"}
        self.assertEqual(len(done), 2, self.deploy_lines)
        for n in self.nodes:
            ev = done[f"127.0.0.1:{n.port}"]
            self.assertEqual(ev["event"], "image-installed", ev)
            self.assertTrue(ev["installed"])
            self.assertEqual(ev["size"], len(self.image_bytes))
            self.assertTrue(ev["meta"])
            names = sorted(os.listdir(n.images))
            self.assertEqual(names, [f"{self.image}.meta", f"{self.image}.squashfs"])
            with open(os.path.join(n.images, f"{self.image}.squashfs"), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), self.image)
            with open(os.path.join(n.images, f"{self.image}.meta")) as f:
                self.assertIn("FORMAT: squashfs", f.read())
        # Deploying again replaces the files (SFTP rename cannot; serve's install does).
        rc, lines, err = self.run_cli([self.a], "deploy", self.image, self.image_path, self.meta_path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(lines[-1]["event"]["event"], "image-installed")
        self.assertEqual(sorted(os.listdir(self.a.images)), [f"{self.image}.meta", f"{self.image}.squashfs"])

    def test_disk_full_during_upload(self):
        n = self.node_env("full")
        uid, gid = sshnode.ensure_account()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=1m,mode=0755,uid={uid},gid={gid}", "tmpfs", n.images],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", n.images])
        big = os.path.join(self.tmp.path, "big.squashfs")
        with open(big, "wb") as f:
            f.write(self.image_bytes)
            f.write(os.urandom(3 * 1024 * 1024))
        image = "cd" * 32
        rc, lines, err = self.run_cli([n], "deploy", image, big)
        self.assertEqual(rc, 1, (lines, err))
        ev = [x for x in lines if x["cli"] == "deployed"][0]["event"]
        self.assertEqual(ev["event"], "error")
        self.assertEqual(ev["code"], "NO_SPACE", ev)
        self.assertIn("full", ev["message"])
        self.assertIn("full", err)
        # Nothing under the final name, and the partial file is gone too.
        self.assertEqual(os.listdir(n.images), [])

    # ---- jobs ----

    def run_job(self, node, job, script, options=()):
        spec = os.path.join(self.tmp.path, f"{job}.json")
        with open(spec, "w") as f:
            json.dump(job_spec(self.image, script), f)
        return Cli(self.argv([node], "run", job, spec, options=options))

    def events(self, cli):
        return [x["event"] for x in cli.lines if x["cli"] == "event"]

    def test_job_followed_to_result(self):
        cli = self.run_job(self.b, "cli-job-1", "echo hello; echo 'PlanQK:Job:Result: {\"sum\":3}'")
        self.assertEqual(cli.finish(), 0, cli.stderr)
        started = [x["event"] for x in cli.lines if x["cli"] == "started"]
        self.assertEqual(started[0]["event"], "started")
        self.assertTrue(started[0]["created"])
        evs = self.events(cli)
        self.assertEqual([e["seq"] for e in evs], list(range(1, len(evs) + 1)))
        self.assertEqual(evs[-1]["event"], "finished")
        self.assertEqual(evs[-1]["exit"]["status"], "SUCCEEDED")
        self.assertEqual(evs[-1]["result"], {"sum": 3})
        self.assertIn("hello", [e.get("line") for e in evs])

    def test_connection_killed_mid_job(self):
        """The SSH connection dies mid-job (its sshd processes are killed): the client reconnects,
        attaches from the last seq it delivered, every event arrives exactly once, the job ran
        once and ends with the same result."""
        job = "cli-job-kill"
        script = ("echo first; sleep 2; for i in 1 2 3 4 5; do sleep 0.1; echo line$i; done;"
                  " echo 'PlanQK:Job:Result: {\"ok\":true}'")
        cli = self.run_job(self.a, job, script, options=["--backoff-min", "0.1", "--backoff-max", "0.5"])
        try:
            cli.until(lambda x: x["cli"] == "event" and x["event"].get("line") == "first")
            victims = session_processes(self.a)
            self.assertTrue(victims)
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            lost = cli.until(lambda x: x["cli"] == "state")
            self.assertEqual(lost["state"], "unreachable")
            self.assertEqual(cli.until(lambda x: x["cli"] == "state")["state"], "up")
            # The job went on on the node: it is not lost with the connection.
            self.assertIsNotNone(self.a.worker_pid(job))
        finally:
            rc = cli.finish()
        self.assertEqual(rc, 0, cli.stderr)
        evs = self.events(cli)
        self.assertEqual([e["seq"] for e in evs], list(range(1, len(evs) + 1)))
        lines = [e["line"] for e in evs if e["event"] == "log" and "line" in e]
        self.assertEqual(lines, ["first"] + [f"line{i}" for i in range(1, 6)] + ['PlanQK:Job:Result: {"ok":true}'])
        self.assertEqual(evs[-1]["event"], "finished")
        self.assertEqual(evs[-1]["result"], {"ok": True})
        self.assertEqual(evs[-1]["exit"]["status"], "SUCCEEDED")
        self.assertEqual(len([x for x in cli.lines if x["cli"] == "started"]), 1)
        # One run: a single RUNNING (and FINISHING) status in the node's own event log.
        with open(os.path.join(self.a.job_dir(job), "events.jsonl")) as f:
            persisted = [json.loads(x) for x in f]
        self.assertEqual([e["status"] for e in persisted if e["event"] == "status"], ["RUNNING", "FINISHING"])

    def test_upload_while_job_streams(self):
        """An image goes up over SFTP while a chatty job's events come down the serve channel of
        the same connection (window adjustments, requests and SFTP packets interleaved): both
        complete, every event exactly once. A small socket send buffer makes libssh2 leave
        packets half sent often; another channel must then wait for their owner."""
        job = "cli-job-chatty"
        big = os.path.join(self.tmp.path, "chatty.squashfs")
        with open(big, "wb") as f:
            f.write(self.image_bytes)
            f.write(os.urandom(72 * 1024 * 1024))   # > 2 × 32 MiB: the flusher channel runs too
        with open(big, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        script = ("j=0; while [ $j -lt 8 ]; do i=0; while [ $i -lt 1500 ]; do "
                  "echo \"burst$j line$i ..............................................................\"; "
                  "i=$((i+1)); done; j=$((j+1)); sleep 0.2; done; "
                  # a tail that goes on until the test has seen the upload end (it appends to the
                  # job's data.json, bound into the job, then), so that the upload always ends
                  # while the job still streams, however slow the machine or the build is
                  "k=0; while ! grep -q release /var/input/data.json; do [ $k -lt 1500 ] || break; "
                  "echo tick$k; k=$((k+1)); sleep 0.1; done; "
                  "echo 'PlanQK:Job:Result: {\"ok\":1}'")
        log_before = len(sshd_log(self.b))
        cli = self.run_job(self.b, job, script, options=["--also-deploy", f"{digest}:{big}", "--send-buffer", "8192"])
        self.addCleanup(lambda: [os.unlink(os.path.join(self.b.images, x)) for x in os.listdir(self.b.images)
                                 if x.startswith(digest)])
        cli.until(lambda x: x["cli"] == "deployed", timeout=150)
        with open(os.path.join(self.b.job_dir(job), "input", "data.json"), "a") as f:
            f.write(" release")
        self.assertEqual(cli.finish(timeout=60), 0, cli.stderr)
        evs = self.events(cli)
        self.assertEqual([e["seq"] for e in evs], list(range(1, len(evs) + 1)))
        lines = [e["line"] for e in evs if e["event"] == "log" and "line" in e]
        self.assertEqual(len([x for x in lines if x.startswith("burst")]), 8 * 1500)
        self.assertEqual(evs[-1]["event"], "finished")
        self.assertEqual(evs[-1]["result"], {"ok": 1})
        deployed = [x for x in cli.lines if x["cli"] == "deployed"]
        self.assertEqual(deployed[0]["event"]["event"], "image-installed", deployed)
        # The upload overlapped the job's stream (it ended before the job did).
        order = [x["cli"] for x in cli.lines if x["cli"] in ("deployed", "event")]
        self.assertGreater(order.index("deployed"), 0)
        self.assertLess(order.index("deployed"), len(order) - 1)
        with open(os.path.join(self.b.images, f"{digest}.squashfs"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest)
        # Three channels on the one connection: serve, SFTP, and the flusher's SFTP.
        sessions = [x for x in sshd_log(self.b)[log_before:].splitlines() if "Starting session" in x]
        self.assertEqual([x.rsplit(" id ", 1)[1] for x in sessions], ["0", "1", "2"])

    def test_cancel_list_remove(self):
        """cancel, list, remove and the image calls through node-client: a followed job that is
        cancelled ends CANCELLED in its own stream."""
        job = "cli-job-cancel"
        cli = self.run_job(self.a, job, "echo started; sleep 30; echo never")
        try:
            cli.until(lambda x: x["cli"] == "event" and x["event"].get("line") == "started")
            rc, lines, err = self.run_cli([self.a], "request", "cancel", job)
            self.assertEqual(rc, 0, err)
            self.assertEqual(lines[-1]["event"]["event"], "cancel")
            self.assertTrue(lines[-1]["event"]["signalled"])
        finally:
            rc = cli.finish()
        self.assertEqual(rc, 0, cli.stderr)
        evs = self.events(cli)
        self.assertEqual(evs[-1]["event"], "finished")
        self.assertEqual(evs[-1]["exit"]["status"], "CANCELLED")
        self.assertNotIn("never", [e.get("line") for e in evs])

        rc, lines, err = self.run_cli([self.a], "request", "list")
        self.assertEqual(rc, 0, err)
        self.assertIn(job, [j["job"] for j in lines[-1]["event"]["jobs"] if j["state"] == "finished"])
        rc, lines, err = self.run_cli([self.a], "request", "remove", job)
        self.assertEqual(lines[-1]["event"]["event"], "removed")
        self.assertFalse(os.path.exists(self.a.job_dir(job)))
        rc, lines, err = self.run_cli([self.a], "request", "remove", job)
        self.assertEqual(rc, 1)
        self.assertEqual(lines[-1]["event"]["code"], "NOT_FOUND")

        rc, lines, err = self.run_cli([self.a], "request", "image-list")
        self.assertIn(self.image, [i["image"] for i in lines[-1]["event"]["images"]])
        other = "ef" * 32
        rc, lines, err = self.run_cli([self.a], "deploy", other, self.image_path)
        self.assertEqual(rc, 0, err)
        rc, lines, err = self.run_cli([self.a], "request", "image-remove", other)
        self.assertEqual(lines[-1]["event"]["event"], "image-removed")
        self.assertFalse([x for x in os.listdir(self.a.images) if x.startswith(other)])
