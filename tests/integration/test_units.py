"""The installed data files: meson install into a DESTDIR, then systemd-analyze verify on the
installed units (with the installed gatewayd as ExecStart), the bus policy loaded by a real
dbus-daemon, the polkit actions read by a real polkitd."""
import configparser
import os
import re
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
        # The node part (meson option node, default true).
        self.assertIn(os.path.join(units, "gateway-worker.socket"), self.files)
        self.assertIn(os.path.join(units, "gateway-worker@.service"), self.files)
        self.find("/sysusers.d/gateway-worker.conf")
        self.assertIn(os.path.join(units, "gatewayd-tcp.socket"), self.files)
        self.assertIn(os.path.join(units, "gatewayd-tls.socket"), self.files)
        self.assertIn(os.path.join(units, "gateway-proxy.socket"), self.files)
        self.assertIn(os.path.join(units, "gateway-proxy.service"), self.files)
        self.assertIn("usr/share/dbus-1/system.d/org.gatewayd.Gateway1.conf", self.files)
        self.assertIn("usr/share/dbus-1/system-services/org.gatewayd.Gateway1.service", self.files)
        self.assertIn("usr/share/polkit-1/actions/org.gatewayd.policy", self.files)
        self.find("/gatewayd-admin.rules.example")
        for f in ("usr/lib/sysusers.d/gatewayd.conf", "usr/lib/tmpfiles.d/gatewayd.conf",
                  "usr/lib/sysusers.d/gateway-worker.conf", "usr/lib/tmpfiles.d/gateway-worker.conf"):
            self.assertIn(f, self.files)
        self.find("/bash-completion/completions/gatewayctl")
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
                                                            "gatewayd-tcp.socket", "gatewayd-tls.socket",
                                                            "gateway-worker.socket", "gateway-worker@.service",
                                                            "gateway-proxy.socket", "gateway-proxy.service")]
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
        # bwrap's namespaces stay allowed; only user (and time) namespaces are refused.
        self.assertEqual(set(svc["RestrictNamespaces"][0].split()), {"mnt", "pid", "ipc", "uts", "net", "cgroup"})
        self.assertEqual(svc["PrivateMounts"], ["yes"])
        for off in ("PrivateDevices", "PrivateUsers", "DynamicUser", "User",
                    "PrivateNetwork", "ProtectClock", "ProcSubset", "MemoryDenyWriteExecute", "ProtectHostname"):
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

    def test_node_socket_unit_settings(self):
        s = read_unit(os.path.join(self.destdir, self.find("/gateway-worker.socket")))
        sock = s["Socket"]
        self.assertEqual(sock["ListenStream"], ["/run/gateway-worker/worker.sock"])
        self.assertEqual(sock["Accept"], ["yes"])
        self.assertEqual(sock["SocketGroup"], ["gateway-worker"])
        self.assertEqual(sock["SocketMode"], ["0660"])
        self.assertEqual(s["Install"]["WantedBy"], ["sockets.target"])
        with open(os.path.join(self.destdir, self.find("/sysusers.d/gateway-worker.conf"))) as f:
            self.assertIn("g gateway-worker -", f.read())

    def test_node_service_unit_settings(self):
        s = read_unit(os.path.join(self.destdir, self.find("/gateway-worker@.service")))
        svc = s["Service"]
        exec_start = svc["ExecStart"][0].split()
        self.assertTrue(exec_start[0].endswith("/libexec/gateway-worker"), exec_start)
        self.assertTrue(os.access(os.path.join(self.destdir, exec_start[0].lstrip("/")), os.X_OK))
        self.assertEqual(exec_start[1], "serve")
        self.assertEqual(svc["StandardInput"], ["socket"])
        self.assertEqual(svc["StandardOutput"], ["socket"])
        self.assertEqual(svc["StateDirectory"], ["gateway-worker"])
        for on in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateNetwork",
                   "NoNewPrivileges", "RestrictNamespaces"):
            self.assertIn(on, svc, f"{on}= expected: jobs run in units of their own, not below serve")
        # serve must stay root: it starts units for other users' jobs.
        self.assertNotIn("User", svc)
        self.assertNotIn("DynamicUser", svc)
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


def help_text(argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    return p.stdout + p.stderr


def options_in(text):
    """The options a --help text offers: --long ones anywhere, -x ones where an option line
    starts. Option values (--network=no) count as the option."""
    opts = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))
    opts |= set(re.findall(r"^\s+(-[a-zA-Z])[ ,]", text, re.M))
    opts.discard("--")
    return opts


def roff_text(path):
    """The man page's words as roff writes them: escapes for '-', font changes and
    non-breaking marks removed."""
    with open(path) as f:
        t = f.read()
    t = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\%", "", t)
    return t.replace("\\-", "-").replace("\\(en", "-")


class ManPages(unittest.TestCase):
    """The installed man pages: one for every program and the configuration file, naming every
    option that the program's --help (and each verb's) offers, rendered by man without
    warnings."""

    PAGES = ("man8/gatewayd.8", "man8/gateway-worker.8", "man8/gateway-proxy.8", "man1/gatewayctl.1",
             "man5/gatewayd.json.5")

    @classmethod
    def setUpClass(cls):
        if not shutil.which("scdoc"):
            raise unittest.SkipTest("scdoc not installed (scripts/install-deps), man pages not built")
        cls.dest = Destdir()
        cls.build = procs.build_dir()

    @classmethod
    def tearDownClass(cls):
        cls.dest.cleanup()

    def page(self, name):
        return self.dest.abspath(self.dest.find("/share/man/" + name))

    def test_installed(self):
        for p in self.PAGES:
            self.assertTrue(os.path.getsize(self.page(p)) > 1000, p)

    def test_render_without_warnings(self):
        for p in self.PAGES:
            r = subprocess.run(["man", "--warnings", "-l", self.page(p)], capture_output=True, text=True,
                               env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat",
                                        PAGER="cat"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "", f"{p}: {r.stderr}")
            self.assertIn("NAME", r.stdout)
            # The warnings check is real: a broken request is reported.
        bad = os.path.join(self.dest.path, "bad.1")
        with open(bad, "w") as f:
            f.write('.TH bad 1\n.SH NAME\nbad\n.xx\n')
        r = subprocess.run(["man", "--warnings", "-l", bad], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat"))
        self.assertIn("warning", r.stderr)

    def check_options(self, page, helps):
        text = roff_text(self.page(page))
        missing = {}
        for argv in helps:
            opts = options_in(help_text(argv))
            self.assertTrue(opts, f"{argv}: no options found in --help")
            for o in sorted(opts):
                if not re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", text):
                    missing.setdefault(" ".join(os.path.basename(a) for a in argv), []).append(o)
        self.assertEqual(missing, {}, f"options of --help missing from {page}")

    def test_gatewayd_options(self):
        self.check_options("man8/gatewayd.8", [[os.path.join(self.build, "src/gatewayd/gatewayd"), "--help"]])

    def test_worker_options(self):
        w = os.path.join(self.build, "src/worker/gateway-worker")
        self.check_options("man8/gateway-worker.8", [[w, "--help"], [w, "pull", "--help"], [w, "run", "--help"],
                                                    [w, "serve", "--help"], [w, "connect", "--help"],
                                                    [w, "program", "--help"],
                                                    [os.path.join(self.build, "src/worker/gateway-worker-run"), "--help"]])

    def test_proxy_options(self):
        self.check_options("man8/gateway-proxy.8", [[os.path.join(self.build, "src/proxy/gateway-proxy"), "--help"]])

    def test_gatewayctl_options(self):
        ctl = os.path.join(self.build, "src/ctl/gatewayctl")
        verbs = [["services"], ["service", "show"], ["service", "create"], ["service", "update"],
                 ["service", "rm"], ["pull"], ["images"], ["image", "show"], ["rmi"], ["image", "expire"],
                 ["submit"], ["jobs"], ["job", "show"], ["job", "rm"], ["result"], ["logs"], ["cancel"],
                 ["status"], ["platforms"], ["platform", "show"], ["nodes"], ["program", "upload"], ["program", "list"],
                 ["program", "rm"], ["program", "run"]]
        self.check_options("man1/gatewayctl.1", [[ctl, "--help"]] + [[ctl, *v, "--help"] for v in verbs])

    def test_configuration_keys(self):
        """gatewayd.json(5) is made from docs/configuration.md: every key of the example is in it."""
        text = roff_text(self.page("man5/gatewayd.json.5"))
        with open(os.path.join(procs.source_dir(), "docs/gatewayd.json.example")) as f:
            keys = set(re.findall(r'"([A-Za-z][A-Za-z0-9]*)"\s*:', f.read()))
        self.assertTrue(keys)
        self.assertEqual(sorted(k for k in keys if k not in text), [])


class UnitSecurity(unittest.TestCase):
    """docs/units.md reports, for every installed service unit, the exposure that
    systemd-analyze security measures and a reason for every setting it finds open."""

    @classmethod
    def setUpClass(cls):
        cls.dest = Destdir()
        with open(os.path.join(procs.source_dir(), "docs", "units.md")) as f:
            cls.doc = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.dest.cleanup()

    def section(self, unit):
        m = re.search(r"^### " + re.escape(unit) + r"\n(.*?)(?=^##|\Z)", self.doc, re.M | re.S)
        self.assertIsNotNone(m, f"docs/units.md has no section '### {unit}'")
        return m.group(1).replace("\\|", "|")

    def analyze(self, rel):
        p = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={self.dest.path}",
                            "--no-pager", rel], capture_output=True, text=True)
        overall = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", p.stdout)
        self.assertIsNotNone(overall, p.stdout + p.stderr)
        open_settings = [line.split()[1] for line in p.stdout.splitlines() if line.startswith("✗")]
        return overall.group(1), open_settings

    def test_every_service_documented(self):
        services = sorted(f for f in self.dest.files if re.search(r"/systemd/system/[^/]+\.service$", f))
        self.assertTrue(services)
        for rel in services:
            unit = os.path.basename(rel)
            with self.subTest(unit=unit):
                text = self.section(unit)
                exposure, open_settings = self.analyze(rel)
                m = re.search(r"Overall exposure: \*\*(\d+\.\d+)", text)
                self.assertIsNotNone(m, f"{unit}: no 'Overall exposure: **N.N' in docs/units.md")
                self.assertEqual(m.group(1), exposure, f"{unit}: exposure in docs/units.md is not the measured one")
                undocumented = []
                for name in open_settings:
                    base, _, neg = name.partition("=~")
                    if f"`{name}`" not in text and not (neg and f"`{base}=~" in text and f"`~{neg}`" in text):
                        undocumented.append(name)
                self.assertEqual(undocumented, [], f"{unit}: open settings without a reason in docs/units.md")


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
        for a in ("manage-services", "manage-images", "manage-jobs", "manage-labs", "manage-tokens",
                  "manage-platforms"):
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
