"""Connections on the HTTP socket are a bounded resource (issue 8 §2): counted per peer uid
(ConnectionsPerUser) and in total (ConnectionsMax), the ones over a limit closed at once, idle
ones closed after ConnectionTimeout, and running out of descriptors never stops accept. One
local user holding thousands of connections must not keep anyone else from being answered.

The connections are held by harness/connholder.py, run as the user they are counted for."""
import os
import resource
import shutil
import subprocess
import sys
import time
import unittest

from harness import users
from harness.bus import PrivateBus
from harness.gatewayd import Gatewayd, GatewaydTestCase
from harness.procs import TempDir, read_line_from_fd, wait_for
from harness.users import as_user_argv

HOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness", "connholder.py")
NOFILE_NEEDED = 12000  # the holders' connections plus their counterparts in gatewayd
REQUEST_BOUND = 5.0    # seconds within which every other user's request must be answered
# The system's python: the test runner's may live where the test users cannot read (pyenv in /root).
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable


class Holder:
    """A connholder.py running as USER against gatewayd's socket; cmd() sends one command and
    returns its answer line."""

    def __init__(self, tmp, socket_path, user):
        # A copy the test user can read whatever the permissions of the source tree.
        script = os.path.join(tmp, "connholder.py")
        if not os.path.exists(script):
            shutil.copy(HOLDER, script)
            os.chmod(script, 0o755)
        self.user = user
        self.proc = subprocess.Popen(as_user_argv(user, [PYTHON, script, socket_path]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def cmd(self, line, timeout=30):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return read_line_from_fd(self.proc.stdout.fileno(), timeout=timeout)

    def status(self, line="status", timeout=30):
        """Runs a command that answers "eof E reset R open O" and returns it as a dict."""
        words = self.cmd(line, timeout=timeout).split()
        return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}

    def open(self, n):
        out = self.cmd(f"open {n}", timeout=60)
        assert out == f"opened {n}", f"{self.user}: {out}"

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.cmd("close", timeout=10)
            except (OSError, TimeoutError):
                pass
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class ConnectionLimits(GatewaydTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        users.ensure_test_users()
        # Our own limit too: the holders (our children) inherit it.
        cls.saved_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
        soft, hard = cls.saved_nofile
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, NOFILE_NEEDED), max(hard, NOFILE_NEEDED)))
        cls.tmp = TempDir(prefix="gatewayd-conn-")
        cls.bus = PrivateBus().start()

    @classmethod
    def tearDownClass(cls):
        cls.bus.stop()
        cls.tmp.cleanup()
        resource.setrlimit(resource.RLIMIT_NOFILE, cls.saved_nofile)
        super().tearDownClass()

    def start_gatewayd(self, config):
        gw = self.track(Gatewayd(bus=self.bus, config=config))
        self.addCleanup(gw.stop)
        gw.start()
        return gw

    def holder(self, gw, user):
        h = Holder(self.tmp.path, gw.socket_path, user)
        self.addCleanup(h.stop)
        return h

    def assertAnswered(self, gw, user, path="/v1/status"):
        t0 = time.monotonic()
        r = gw.http("GET", path, as_user=user, timeout=REQUEST_BOUND)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200, r.body)
        self.assertLess(elapsed, REQUEST_BOUND, f"request of {user} took {elapsed:.2f} s")

    def assertRefused(self, gw, user):
        """A fresh connection of USER is closed by gatewayd without an answer."""
        with self.assertRaises(ConnectionError, msg=f"a new connection of {user} is closed"):
            gw.http("GET", "/v1/status", as_user=user, timeout=REQUEST_BOUND)

    def wait_answered(self, gw, user):
        """After connections were released: gatewayd notices the hang-ups asynchronously, there
        is no event to wait for but being answered again."""
        def answered():
            try:
                return gw.http("GET", "/v1/status", as_user=user, timeout=REQUEST_BOUND).status == 200
            except ConnectionError:
                return False
        wait_for(answered, timeout=10, what=f"gatewayd to answer {user} again")

    def test_thousands_held_by_one_user(self):
        """5000 connections of gwtest-user (more than the old fixed limit of 4096, which used to
        wedge the socket): 64 stay, the rest are closed at once; gwtest-other and root keep being
        answered, the held ones are served too; after the release the user is served again."""
        gw = self.start_gatewayd({})  # the defaults: ConnectionsPerUser 64, ConnectionsMax 4096
        n = 5000
        h = self.holder(gw, users.USER)
        h.open(n)
        st = h.status(f"wait-eof {n - 64} 15", timeout=30)
        self.assertEqual(st, {"eof": n - 64, "reset": 0, "open": 64},
                         "all but ConnectionsPerUser=64 connections closed by gatewayd (EOF)")

        for _ in range(5):
            self.assertAnswered(gw, users.OTHER)
            self.assertAnswered(gw, "root")
        self.assertAnswered(gw, users.OTHER, "/v1/services")
        self.assertEqual(h.cmd("request oldest"), "status 200", "a held connection is served")
        self.assertEqual(h.cmd("request newest"), "status 200", "a held connection is served")
        self.assertRefused(gw, users.USER)
        self.assertEqual(h.status(), {"eof": n - 64, "reset": 0, "open": 64}, "held ones stay open")

        self.assertEqual(h.cmd("close"), "closed")
        self.wait_answered(gw, users.USER)
        self.assertAnswered(gw, users.OTHER)

    def test_per_user_and_total_limits(self):
        """ConnectionsPerUser counts per uid; root is not limited by it, but ConnectionsMax
        applies to everyone, root included."""
        gw = self.start_gatewayd({"ConnectionsPerUser": 10, "ConnectionsMax": 30})
        user = self.holder(gw, users.USER)
        user.open(20)
        self.assertEqual(user.status("wait-eof 10 10"), {"eof": 10, "reset": 0, "open": 10})
        self.assertEqual(user.cmd("request oldest"), "status 200")

        root = self.holder(gw, "root")
        root.open(15)
        # Served on the newest connection: all 15 have been accepted (the listen queue is FIFO),
        # and refused ones would have been closed right at accept.
        self.assertEqual(root.cmd("request newest"), "status 200")
        self.assertEqual(root.status(), {"eof": 0, "reset": 0, "open": 15})

        other = self.holder(gw, users.OTHER)
        other.open(10)  # 25 held so far: 5 more fit under ConnectionsMax
        self.assertEqual(other.status("wait-eof 5 10"), {"eof": 5, "reset": 0, "open": 5})
        self.assertEqual(other.cmd("request oldest"), "status 200", "the oldest are kept")
        self.assertRefused(gw, "root")
        self.assertEqual(root.status(), {"eof": 0, "reset": 0, "open": 15})

        self.assertEqual(other.cmd("close"), "closed")
        self.wait_answered(gw, "root")
        self.wait_answered(gw, users.OTHER)
        self.assertEqual(user.status(), {"eof": 10, "reset": 0, "open": 10})

    def test_idle_timeout(self):
        """Idle connections (never used, after a keep-alive request, or stuck in the middle of
        a request) are closed after ConnectionTimeout."""
        gw = self.start_gatewayd({"ConnectionTimeout": 1})
        h = self.holder(gw, users.USER)
        h.open(3)
        self.assertEqual(h.cmd("request newest"), "status 200")
        self.assertEqual(h.cmd("partial oldest"), "sent")
        t0 = time.monotonic()
        st = h.status("wait-eof 3 10", timeout=20)
        elapsed = time.monotonic() - t0
        self.assertEqual(st, {"eof": 3, "reset": 0, "open": 0})
        self.assertLess(elapsed, 5, "closed after about ConnectionTimeout=1 s")
        self.assertAnswered(gw, users.USER)

    def test_out_of_descriptors(self):
        """gatewayd's descriptors run out (its RLIMIT_NOFILE lowered under it): the newest
        connections are closed at once, the open ones keep being served, nothing spins, and
        once connections go away new ones are served again."""
        gw = self.start_gatewayd({"ConnectionsPerUser": 4000, "ConnectionsMax": 4000})
        pid = gw.pid()
        limit = len(os.listdir(f"/proc/{pid}/fd")) + 20
        subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={limit}:{limit}"], check=True)

        h = self.holder(gw, users.USER)
        h.open(300)
        # About 20 fit (the daemon's own descriptors come and go a little): the rest are closed.
        st = h.status("wait-eof 270 15", timeout=30)
        self.assertEqual(st["reset"], 0, st)
        self.assertEqual(st["eof"] + st["open"], 300, st)
        self.assertTrue(0 < st["open"] <= 30, st)
        self.assertEqual(h.cmd("request oldest"), "status 200", "open connections are served")

        # Out of descriptors with a connection waiting: gatewayd must not busy-loop on it.
        cpu0 = cpu_seconds(pid)
        self.assertRefused(gw, users.OTHER)
        time.sleep(0.5)  # measuring idleness: there is no event to wait for
        self.assertLess(cpu_seconds(pid) - cpu0, 0.3, "gatewayd spins while out of descriptors")

        self.assertEqual(h.cmd("close"), "closed")
        self.wait_answered(gw, users.OTHER)
        self.assertAnswered(gw, users.USER, "/v1/services")

    def test_raises_nofile_limit(self):
        """gatewayd raises its RLIMIT_NOFILE soft limit to the hard limit at start."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        try:
            gw = self.start_gatewayd({})
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        with open(f"/proc/{gw.pid()}/limits") as f:
            line = next(l for l in f if l.startswith("Max open files"))
        self.assertEqual(line.split()[3:5], [str(hard), str(hard)], line)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    unittest.main()
