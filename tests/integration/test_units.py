"""The installed data files: meson install into a DESTDIR, then systemd-analyze verify on the
installed units (with the installed gatewayd as ExecStart), the bus policy loaded by a real
dbus-daemon, the polkit actions read by a real polkitd."""
import configparser
import os
import shutil
import subprocess
import unittest

from harness import procs
from harness.bus import PrivateBus
from harness.install import Destdir
from harness.polkit import Polkit

HOST_UNIT_DIR = "/lib/systemd/system"


def unit_dir():
    p = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                       capture_output=True, text=True)
    return p.stdout.strip() or HOST_UNIT_DIR


def read_unit(path):
    """Unit files are ini-like but allow repeated keys: collect values in lists."""
    sections, cur = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                cur = sections.setdefault(line.strip("[]"), {})
                continue
            k, _, v = line.partition("=")
            cur.setdefault(k, []).append(v)
    return sections


class InstalledDataFiles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = Destdir()
        cls.destdir = cls.dest.path
        cls.files = cls.dest.files

    @classmethod
    def tearDownClass(cls):
        cls.dest.cleanup()

    def find(self, suffix):
        return self.dest.find(suffix)

    def test_install_locations(self):
        units = unit_dir().lstrip("/")
        self.assertIn(os.path.join(units, "gatewayd.service"), self.files)
        self.assertIn(os.path.join(units, "gatewayd.socket"), self.files)
        self.assertIn(os.path.join(units, "gatewayd-tcp.socket"), self.files)
        self.assertIn(os.path.join(units, "gatewayd-tls.socket"), self.files)
        self.assertIn("usr/share/dbus-1/system.d/org.gatewayd.Gateway1.conf", self.files)
        self.assertIn("usr/share/dbus-1/system-services/org.gatewayd.Gateway1.service", self.files)
        self.assertIn("usr/share/polkit-1/actions/org.gatewayd.policy", self.files)
        self.find("/gatewayd-admin.rules.example")
        # The example must not be active: nothing installed into a rules.d directory.
        self.assertFalse([f for f in self.files if "/rules.d/" in f])

    def test_exec_start_is_installed_gatewayd(self):
        unit = read_unit(os.path.join(self.destdir, self.find("/gatewayd.service")))
        exec_start = unit["Service"]["ExecStart"][0].split()[0]
        self.assertTrue(os.access(os.path.join(self.destdir, exec_start.lstrip("/")), os.X_OK),
                        f"{exec_start} installed and executable")
        self.assertTrue(exec_start.endswith("/libexec/gatewayd"), exec_start)

    def test_systemd_analyze_verify(self):
        """systemd-analyze verify --root needs the targets the units depend on (sysinit.target
        etc.) inside the root: copy the host's .target units there (not our own files). It
        checks ExecStart= inside the root, so the installed binary is what it finds."""
        root_units = os.path.join(self.destdir, unit_dir().lstrip("/"))
        copied = []
        for f in os.listdir(HOST_UNIT_DIR):
            if f.endswith(".target") and not os.path.exists(os.path.join(root_units, f)):
                shutil.copy(os.path.join(HOST_UNIT_DIR, f), root_units, follow_symlinks=False)
                copied.append(f)
        try:
            units = [os.path.join(unit_dir(), u) for u in ("gatewayd.service", "gatewayd.socket",
                                                             "gatewayd-tcp.socket", "gatewayd-tls.socket")]
            p = subprocess.run(["systemd-analyze", "verify", f"--root={self.destdir}", *units],
                               capture_output=True, text=True, env=dict(os.environ, SYSTEMD_LOG_LEVEL="info"))
            self.assertEqual(p.returncode, 0, p.stderr)
            # Unknown keys or bad values are only warnings: they must not be there either.
            self.assertEqual(p.stderr.strip(), "", p.stderr)
            # And the check is real: a broken ExecStart= is caught.
            exe = os.path.join(self.destdir, read_unit(os.path.join(root_units, "gatewayd.service"))
                               ["Service"]["ExecStart"][0].split()[0].lstrip("/"))
            os.rename(exe, exe + ".moved")
            try:
                p = subprocess.run(["systemd-analyze", "verify", f"--root={self.destdir}", units[0]],
                                   capture_output=True, text=True)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("not executable", p.stderr)
            finally:
                os.rename(exe + ".moved", exe)
        finally:
            for f in copied:
                os.unlink(os.path.join(root_units, f))

    def test_service_unit_settings(self):
        s = read_unit(os.path.join(self.destdir, self.find("/gatewayd.service")))
        svc = s["Service"]
        self.assertEqual(svc["Type"], ["notify"])
        self.assertEqual(svc["BusName"], ["org.gatewayd.Gateway1"])
        self.assertEqual(svc["NotifyAccess"], ["main"])
        self.assertEqual(svc["WatchdogSec"], ["3min"])
        self.assertEqual(svc["StateDirectory"], ["gatewayd"])
        self.assertEqual(svc["RuntimeDirectory"], ["gatewayd"])
        self.assertEqual(svc["RuntimeDirectoryPreserve"], ["yes"])
        self.assertEqual(svc["ProtectSystem"], ["strict"])
        self.assertIn("@mount", svc["SystemCallFilter"][0])
        self.assertEqual(s["Install"]["Also"], ["gatewayd.socket"])
        # Workers mount loop devices and build namespaces; jobs run as other users.
        for off in ("PrivateDevices", "RestrictNamespaces", "PrivateUsers", "DynamicUser", "User",
                    "PrivateNetwork", "ProtectClock", "MemoryDenyWriteExecute", "ProtectHostname"):
            self.assertNotIn(off, svc, f"{off}= would break workers or jobs")
        caps = svc["CapabilityBoundingSet"][0].split()
        for cap in ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_SYS_CHROOT"):
            self.assertIn(cap, caps)

    def test_socket_unit_settings(self):
        s = read_unit(os.path.join(self.destdir, self.find("/gatewayd.socket")))
        sock = s["Socket"]
        self.assertEqual(sock["ListenStream"], ["/run/gatewayd/http.sock"])
        self.assertEqual(sock["FileDescriptorName"], ["http"])
        self.assertEqual(sock["SocketMode"], ["0666"])
        self.assertEqual(sock["Service"], ["gatewayd.service"])
        self.assertEqual(s["Install"]["WantedBy"], ["sockets.target"])

    def test_remote_socket_units(self):
        """TCP and TLS listeners: the same service, told apart by FileDescriptorName (what
        http_listen_sockets() looks for); installed but not enabled, so no remote access
        appears by installing the package."""
        for name, fdname in (("gatewayd-tcp.socket", "tcp"), ("gatewayd-tls.socket", "tls")):
            with self.subTest(unit=name):
                s = read_unit(os.path.join(self.destdir, self.find("/" + name)))
                sock = s["Socket"]
                self.assertEqual(sock["FileDescriptorName"], [fdname])
                self.assertEqual(sock["Service"], ["gatewayd.service"])
                self.assertEqual(len(sock["ListenStream"]), 1)
                self.assertFalse(sock["ListenStream"][0].startswith("/"), "a TCP port, not a path")
                self.assertNotIn("SocketMode", sock)
                self.assertFalse([f for f in self.files if f.endswith(".wants/" + name)], "not enabled")

    def test_dbus_activation_file(self):
        cp = configparser.ConfigParser()
        cp.optionxform = str
        cp.read(os.path.join(self.destdir, self.find("/org.gatewayd.Gateway1.service")))
        d = cp["D-BUS Service"]
        self.assertEqual(d["Name"], "org.gatewayd.Gateway1")
        self.assertEqual(d["SystemdService"], "gatewayd.service")
        self.assertEqual(d["User"], "root")

    def test_xml_well_formed(self):
        for f in ("/org.gatewayd.Gateway1.conf", "/org.gatewayd.policy"):
            p = subprocess.run(["xmllint", "--noout", os.path.join(self.destdir, self.find(f))],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)


class BusPolicy(unittest.TestCase):
    """The installed policy, loaded by a real dbus-daemon: root may own the name, nobody else;
    everybody may call the gatewayd interfaces."""

    def setUp(self):
        from harness import users
        users.ensure_test_users()
        self.users = users
        self.bus = PrivateBus().start()
        self.addCleanup(self.bus.stop)

    def own(self, user, name="org.gatewayd.Gateway1"):
        # gdbus cannot merely own a name; RequestName from busctl is dropped with its
        # connection, which is fine for asking the bus whether it would be allowed.
        return self.users.run_as(user, ["busctl", "--system", "call", "org.freedesktop.DBus",
                                        "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                        "RequestName", "su", name, "0"], env=self.bus.env())

    def test_root_may_own(self):
        p = self.own("root")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ["u", "1"])  # PRIMARY_OWNER

    def test_user_may_not_own(self):
        p = self.own(self.users.USER)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Access denied", p.stderr)

    def test_bus_loaded_policy_without_errors(self):
        self.assertNotIn("Encountered error", self.bus.log_text())


class PolkitActions(unittest.TestCase):
    """Our actions as a real polkitd reads them, with the defaults a cluster site needs."""

    def setUp(self):
        from harness import users
        users.ensure_test_users()
        self.users = users
        self.bus = PrivateBus().start()
        self.addCleanup(self.bus.stop)
        self.pk = Polkit(self.bus).start()
        self.addCleanup(self.pk.stop)

    def pkaction(self, action):
        p = subprocess.run(["pkaction", "--verbose", "--action-id", action], env=self.bus.env(),
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_defaults(self):
        for a in ("manage-services", "manage-images", "manage-jobs", "manage-labs", "manage-tokens"):
            out = self.pkaction(f"org.gatewayd.{a}")
            self.assertIn("implicit any:      auth_admin_keep", out)
        for a in ("pull-image", "submit-job"):
            out = self.pkaction(f"org.gatewayd.{a}")
            self.assertIn("implicit any:      yes", out)

    def check_as(self, user, action):
        p = self.users.run_as(user, ["sh", "-c", f"exec pkcheck --action-id {action} --process $$"],
                              env=self.bus.env())
        return p.returncode

    def test_admin_group_rule(self):
        self.assertEqual(self.check_as(self.users.ADMIN, "org.gatewayd.manage-services"), 0)
        self.assertNotEqual(self.check_as(self.users.USER, "org.gatewayd.manage-services"), 0)
        self.assertEqual(self.check_as(self.users.USER, "org.gatewayd.submit-job"), 0)
        self.assertEqual(self.check_as("root", "org.gatewayd.manage-services"), 0)


if __name__ == "__main__":
    unittest.main()
