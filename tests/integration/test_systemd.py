"""The installed units under a real systemd (PID 1 in a throw-away nspawn container): socket
activation through gatewayd.socket, Type=notify, D-Bus activation through SystemdService=, the
hardening actually applied to a daemon that still works, state in StateDirectory= across
restarts."""
import json
import os
import re
import shutil
import tempfile
import time
import unittest

from harness.gatewayd import BUS_NAME, BUS_PATH, MANAGER_IFACE, GatewaydTestCase
from harness.install import Destdir
from harness.nspawn import Container

CURL = ["curl", "-sS", "--unix-socket", "/run/gatewayd/http.sock",
        "-w", "\n%{http_code}"]


def exec_start(unit_path):
    with open(unit_path) as f:
        for line in f:
            if line.startswith("ExecStart="):
                return line.split("=", 1)[1].split()[0]
    raise AssertionError("no ExecStart=")


# The namespaces gateway-worker's bwrap command line asks for (src/worker/sandbox.c): no user
# namespace (bwrap runs as root), so no --unshare-all, which would try one.
BWRAP_UNSHARE = "--unshare-ipc --unshare-pid --unshare-uts --unshare-cgroup-try --unshare-net"

# What gateway-worker children will do under gatewayd.service's sandbox. Each step prints a
# marker on success; the test names the steps whose marker is missing.
PROBE_SCRIPT = r"""
set -x
d=$(mktemp -d)
unshare -m sh -c "mount -t tmpfs none $d && umount $d" && echo PROBE-mount
bwrap UNSHARE --hostname gatewayd-job --die-with-parent --ro-bind / / --proc /proc \
      --dev /dev --tmpfs /tmp -- sh -c 'test "$(cat /proc/sys/kernel/hostname)" = gatewayd-job' \
      && echo PROBE-bwrap-hostname
bwrap UNSHARE --die-with-parent --ro-bind / / --proc /proc --dev /dev -- \
      sh -c 'grep -q "^ *lo:" /proc/net/dev' && echo PROBE-bwrap-net
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'test "$(id -u)" = 65534' && echo PROBE-setuid
mkdir -p /run/gatewayd/probe-mnt && mount -t tmpfs gatewayd-probe /run/gatewayd/probe-mnt \
      && echo PROBE-service-mount
unshare -U true || echo PROBE-no-userns
# a sandbox root (src/worker/sandbox-root.h): a whiteout (without CAP_MKNOD) in a skeleton, and a
# read-only overlay of it over another directory, with the worker's options
mkdir $d/skel $d/image $d/image/hidden $d/image/shown $d/root && mknod $d/skel/hidden c 0 0 \
      && unshare -m sh -c "mount -t overlay overlay -o lowerdir=$d/skel:$d/image,redirect_dir=nofollow,metacopy=off,xino=off \
                           -o ro,nosuid,nodev $d/root && test -d $d/root/shown && ! test -e $d/root/hidden" \
      && echo PROBE-sandbox-root
rm -rf $d/skel $d/image $d/root
rmdir $d
true
"""
PROBE_SCRIPT = PROBE_SCRIPT.replace("UNSHARE", BWRAP_UNSHARE)
PROBE_STEPS = ("mount", "bwrap-hostname", "bwrap-net", "setuid", "service-mount", "no-userns", "sandbox-root")


def probe_unit(service_path):
    """gatewayd.service's [Unit] and [Service] with its sandbox, running the probe instead."""
    out = []
    with open(service_path) as f:
        for line in f:
            if line.startswith(("ExecStart=", "Type=", "BusName=", "WatchdogSec=", "NotifyAccess=",
                                "Requires=", "After=", "Also=", "[Install]", "WantedBy=")):
                continue
            out.append(line)
            if line.strip() == "[Service]":
                out.append("Type=oneshot\nExecStart=/bin/sh /run/gatewayd-probe.sh\n")
    return "".join(out)


@unittest.skipUnless(shutil.which("systemd-nspawn"), "systemd-nspawn not installed")
class UnderSystemd(GatewaydTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.class_tracked = []
        cls.dest = Destdir()
        cls.tmp = tempfile.mkdtemp(prefix="gatewayd-units-")
        cls.container = None
        try:
            d = cls.dest
            service = d.find("/gatewayd.service")
            exe = exec_start(d.abspath(service))
            if not exe.startswith("/usr/local/"):
                raise unittest.SkipTest(f"ExecStart={exe}: only a /usr/local prefix can be bound "
                                        "into the container's read-only /usr")
            # The system bus searches /usr/local/share/dbus-1/system-services too; /usr/share is
            # the host's (read-only) in the container.
            act_dir = d.abspath("usr/local/share/dbus-1/system-services")
            os.makedirs(act_dir, exist_ok=True)
            shutil.copy(d.abspath(d.find("/org.gatewayd.Gateway1.service")), act_dir)
            # Sanitizer builds: LeakSanitizer stops the world with ptrace, which
            # SystemCallFilter=@system-service forbids; everything else stays on.
            dropin = os.path.join(cls.tmp, "50-test.conf")
            with open(dropin, "w") as f:
                f.write("[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 "
                        "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1\n")
            # A probe unit with exactly gatewayd.service's sandbox that does what workers will
            # do (mounts, bubblewrap sandboxes, switching to the job's user).
            with open(os.path.join(cls.tmp, "gatewayd-probe.service"), "w") as f:
                f.write(probe_unit(d.abspath(service)))
            with open(os.path.join(cls.tmp, "gatewayd-probe.sh"), "w") as f:
                f.write(PROBE_SCRIPT)
            binds = [
                (os.path.join(cls.tmp, "gatewayd-probe.service"), "/etc/systemd/system/gatewayd-probe.service"),
                (os.path.join(cls.tmp, "gatewayd-probe.sh"), "/run/gatewayd-probe.sh"),
                (d.abspath("usr/local"), "/usr/local"),
                (d.abspath(service), "/etc/systemd/system/gatewayd.service"),
                (d.abspath(d.find("/gatewayd.socket")), "/etc/systemd/system/gatewayd.socket"),
                (dropin, "/etc/systemd/system/gatewayd.service.d/50-test.conf"),
                (d.abspath(d.find("/org.gatewayd.Gateway1.conf")),
                 "/etc/dbus-1/system.d/org.gatewayd.Gateway1.conf"),
            ]
            cls.container = Container(binds=binds)
            cls.class_tracked.append(cls.container)
            cls.container.start()
            cls.container.run(["useradd", "--no-create-home", "gwtest-user"])
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _cleanup(cls):
        try:
            if cls.container is not None:
                cls.container.stop()
        finally:
            cls.dest.cleanup()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()
        super().tearDownClass()

    def sh(self, *argv, **kw):
        return self.container.run(list(argv), **kw)

    def curl(self, *args, user=None):
        p = self.container.run(CURL + list(args), user=user, check=False)
        self.assertEqual(p.returncode, 0, p.stderr + self.container.journal("gatewayd.service"))
        body, _, status = p.stdout.rpartition("\n")
        return int(status), (json.loads(body) if body.strip() else None)

    def prop(self, unit, name):
        return self.sh("systemctl", "show", "-P", name, unit).stdout.strip()

    def ensure_socket_only(self):
        """gatewayd.socket listening, gatewayd.service stopped."""
        self.sh("systemctl", "start", "gatewayd.socket")
        self.sh("systemctl", "stop", "gatewayd.service")
        # The tests start and stop the service more often than StartLimitBurst= allows.
        self.sh("systemctl", "reset-failed", "gatewayd.service", check=False)
        self.assertEqual(self.prop("gatewayd.service", "ActiveState"), "inactive")

    def tearDown(self):
        if self.container is not None and self.container.proc is not None:
            j = self.container.journal("gatewayd.service")
            for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
                self.assertNotIn(marker, j)
        super().tearDown()

    def test_socket_activation(self):
        self.ensure_socket_only()
        self.assertEqual(self.prop("gatewayd.socket", "ActiveState"), "active")
        status, body = self.curl("http://localhost/v1/status", user="gwtest-user")
        self.assertEqual(status, 200, body)
        self.assertIn("version", body)
        # Type=notify: active (not activating) means READY=1 arrived; STATUS= is shown.
        self.assertEqual(self.prop("gatewayd.service", "ActiveState"), "active",
                         self.container.journal("gatewayd.service"))
        self.assertEqual(self.prop("gatewayd.service", "Type"), "notify")
        self.assertTrue(self.prop("gatewayd.service", "StatusText"), "STATUS= reached systemd")
        # SocketMode=0666 on the socket systemd made.
        st = self.sh("stat", "-c", "%a", "/run/gatewayd/http.sock").stdout.strip()
        self.assertEqual(st, "666")

    def test_dbus_activation(self):
        self.ensure_socket_only()
        p = self.sh("busctl", "--json=short", "call", BUS_NAME, BUS_PATH, MANAGER_IFACE, "GetStatus",
                    check=False)
        self.assertEqual(p.returncode, 0, p.stderr + self.container.journal("gatewayd.service")
                         + self.container.journal("dbus.service"))
        self.assertIn("version", json.loads(json.loads(p.stdout)["data"][0]))
        self.assertEqual(self.prop("gatewayd.service", "ActiveState"), "active")
        main_pid = self.prop("gatewayd.service", "MainPID")
        p = self.sh("busctl", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                    "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", BUS_NAME)
        self.assertEqual(p.stdout.split()[1], main_pid, "the unit's main process owns the name")

    def test_hardening_applied(self):
        self.ensure_socket_only()
        self.curl("http://localhost/v1/status")
        pid = self.prop("gatewayd.service", "MainPID")
        status = self.sh("cat", f"/proc/{pid}/status").stdout
        self.assertRegex(status, r"NoNewPrivs:\s+1")
        self.assertRegex(status, r"Seccomp:\s+2")
        # ProtectSystem=strict: /usr is read-only for the daemon (its own mount namespace).
        mounts = self.sh("cat", f"/proc/{pid}/mountinfo").stdout
        opts = {}
        for line in mounts.splitlines():
            f = line.split()
            opts[f[4]] = f[5].split(",")  # later lines are mounted on top: last one wins
        for mp in ("/", "/usr", "/etc"):
            if mp in opts:
                self.assertIn("ro", opts[mp], f"{mp} read-only for gatewayd")
        self.assertIn("rw", opts.get("/var/lib/gatewayd", ["rw"]), "StateDirectory= writable")
        # Capabilities: what workers need is there, the rest is gone.
        cap_bnd = int(re.search(r"CapBnd:\s+([0-9a-f]+)", status).group(1), 16)
        self.assertTrue(cap_bnd & (1 << 21), "CAP_SYS_ADMIN kept for mounts")
        self.assertTrue(cap_bnd & (1 << 7), "CAP_SETUID kept for jobs")
        self.assertFalse(cap_bnd & (1 << 16), "CAP_SYS_MODULE dropped")

    def test_sandbox_allows_worker_operations(self):
        """gatewayd.service's hardening leaves room for what workers must do (see the list of
        directives kept off in the unit): mount, bwrap with all namespaces and a hostname,
        loopback in a private network namespace, switching to a job's user; and what it takes
        away is gone: user namespaces (nothing uses them: bwrap runs as root, jobs' own seccomp
        filter refuses namespaces) and mounts leaking to the host (a
        mount made in the service, like a worker's squashfs mounts, stays in its namespace)."""
        p = self.sh("systemctl", "start", "gatewayd-probe.service", check=False)
        log = self.container.journal("gatewayd-probe.service")
        leaked = self.sh("findmnt", "-n", "/run/gatewayd/probe-mnt", check=False)
        if leaked.returncode == 0:
            self.sh("umount", "/run/gatewayd/probe-mnt", check=False)
        missing = [s for s in PROBE_STEPS if f"PROBE-{s}\n" not in log + "\n"]
        if leaked.returncode == 0:
            missing.append("mount leaked to the host: " + leaked.stdout.strip())
        self.assertEqual(missing, [], log[-4000:])
        self.assertEqual(p.returncode, 0, log[-2000:])

    def test_state_survives_restart(self):
        self.ensure_socket_only()
        spec = json.dumps({"name": "undersystemd", "image": "registry.example.org/a/b:1"})
        status, body = self.curl("-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                                 spec, "http://localhost/v1/services")
        self.assertIn(status, (201, 409), body)
        self.sh("systemctl", "restart", "gatewayd.service")
        status, body = self.curl("http://localhost/v1/services/undersystemd")
        self.assertEqual(status, 200, body)
        self.sh("test", "-f", "/var/lib/gatewayd/state.db")

    def test_unprivileged_write_refused(self):
        self.ensure_socket_only()
        spec = json.dumps({"name": "nope", "image": "registry.example.org/a/b:1"})
        status, body = self.curl("-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                                 spec, "http://localhost/v1/services", user="gwtest-user")
        self.assertEqual(status, 403, body)

    def test_clean_stop(self):
        self.ensure_socket_only()
        self.curl("http://localhost/v1/status")
        self.sh("systemctl", "stop", "gatewayd.service")
        self.assertEqual(self.prop("gatewayd.service", "Result"), "success")
        self.assertEqual(self.prop("gatewayd.socket", "ActiveState"), "active",
                         "the socket stays to start it again")
        status, _ = self.curl("http://localhost/v1/status")
        self.assertEqual(status, 200)

    def test_watchdog_pings(self):
        """With a short WatchdogSec= (runtime drop-in), gatewayd outlives several periods: its
        WATCHDOG=1 pings reach systemd under NotifyAccess=main. The wait is deliberate: what is
        tested is that nothing happens."""
        self.ensure_socket_only()
        d = "/run/systemd/system/gatewayd.service.d"
        self.sh("mkdir", "-p", d)
        self.sh("sh", "-c", f"printf '[Service]\\nWatchdogSec=1s\\n' > {d}/60-watchdog.conf")
        self.addCleanup(lambda: (self.sh("rm", "-rf", d), self.sh("systemctl", "daemon-reload")))
        self.sh("systemctl", "daemon-reload")
        self.curl("http://localhost/v1/status")
        pid = self.prop("gatewayd.service", "MainPID")
        self.assertEqual(self.prop("gatewayd.service", "WatchdogUSec"), "1s")
        time.sleep(3.5)
        self.assertEqual(self.prop("gatewayd.service", "ActiveState"), "active",
                         self.container.journal("gatewayd.service"))
        self.assertEqual(self.prop("gatewayd.service", "MainPID"), pid, "not killed by the watchdog")
        self.assertNotIn("Watchdog timeout", self.container.journal("gatewayd.service"))

    def test_idle_exit_and_socket_reactivation(self):
        """With --idle-timeout (runtime drop-in), gatewayd exits when idle and systemd starts it
        again on the next connection; HTTP requests spaced around the idle moment all get
        answers (a connection queued on the socket during the exit goes to the next instance)."""
        self.ensure_socket_only()
        d = "/run/systemd/system/gatewayd.service.d"
        exe = exec_start(self.dest.abspath(self.dest.find("/gatewayd.service")))
        self.sh("mkdir", "-p", d)
        self.sh("sh", "-c", f"printf '[Service]\\nExecStart=\\nExecStart={exe} "
                f"--state-dir=/var/lib/gatewayd --runtime-dir=/run/gatewayd --idle-timeout=1\\n' "
                f"> {d}/60-idle.conf")
        self.addCleanup(lambda: (self.sh("rm", "-rf", d), self.sh("systemctl", "daemon-reload")))
        self.sh("systemctl", "daemon-reload")
        # One shell loop inside the container: requests at gaps that straddle the timeout.
        script = ("for gap in 0 0.9 1.0 1.1 1.3 1.6 2.0 0.2 1.5; do sleep $gap; "
                  "curl -sS -m 20 -o /dev/null -w '%{http_code}\\n' --unix-socket /run/gatewayd/http.sock "
                  "http://localhost/v1/status || echo fail; done")
        p = self.sh("sh", "-c", script, check=False, timeout=120)
        codes = p.stdout.split()
        self.assertEqual(codes, ["200"] * 9, p.stderr + self.container.journal("gatewayd.service")[-3000:])
        j = self.container.journal("gatewayd.service")
        starts = j.count("Started gatewayd.service") + j.count("Started Container Image Gateway")
        self.assertGreaterEqual(starts, 2, "it really exited and was started again:\n" + j[-3000:]
                                + self.sh("systemctl", "show", "-p", "DropInPaths,ExecStart", "gatewayd.service").stdout)
        self.assertEqual(self.prop("gatewayd.service", "Result"), "success")

if __name__ == "__main__":
    unittest.main()
