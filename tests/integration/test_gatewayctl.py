"""gatewayctl against a real gatewayd on a private system bus with a real polkitd: the output
formats (tables, --json, key/value views, --help), its command-line errors, and how it reports
the daemon's errors."""
import fcntl
import json
import os
import re
import select
import subprocess
import tempfile
import termios
import time
import unittest

from harness import procs
from harness.bus import PrivateBus
from harness.gatewayd import Gatewayd, GatewaydTestCase, check_sanitizer_output, gatewayctl_binary
from harness.polkit import Polkit
from harness import users

IMAGE = "docker.io/library/busybox:latest"


def stdin_kw(input):
    """Never the runner's terminal: gatewayctl would start a polkit agent and prompt."""
    return {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}


def ctl(*args, env=None, input=None, as_user=None):
    """gatewayctl without a daemon (help, bad command lines); a bus address that cannot
    work, so that a test notices if gatewayctl tried to connect."""
    e = dict(os.environ if env is None else env)
    e.setdefault("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/gatewayctl-test")
    p = subprocess.run(users.as_user_argv(as_user, [gatewayctl_binary()] + list(args)), env=e,
                       capture_output=True, text=True, timeout=30, **stdin_kw(input))
    check_sanitizer_output(p.stderr)
    return p


class CommandLine(unittest.TestCase):
    """What gatewayctl decides by itself, before or without talking to the daemon."""

    def test_version(self):
        p = ctl("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^gatewayctl \d+\.\d+\.\d+\n$")

    def test_help_overview(self):
        p = ctl("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertTrue(p.stdout.startswith("gatewayctl [OPTIONS...] COMMAND"))
        for word in ("services", "service show NAME", "service create NAME", "service update NAME",
                     "service rm NAME...", "status", "--json", "--no-legend", "--no-ask-password",
                     "DBUS_SYSTEM_BUS_ADDRESS", "Exit status"):
            self.assertIn(word, p.stdout)

    def test_help_per_verb(self):
        p = ctl("service", "create", "--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith(
            "gatewayctl [OPTIONS...] service create NAME --image=REF\n"
            "        [OPTIONS...] [-- COMMAND...]\n"), p.stdout)
        for word in ("--image=REF", "--command=ARG", "--env=KEY=VALUE", "--memory=SIZE", "512M",
                     "--cpus=N", "--timeout=TIME", "--network", "--file=PATH", "Examples:"):
            self.assertIn(word, p.stdout)
        self.assertNotIn("--unset-env", p.stdout)
        # "help COMMAND" is the same manual; --help wins over missing arguments.
        self.assertEqual(ctl("help", "service", "create").stdout, p.stdout)
        self.assertEqual(ctl("--help", "service", "create", "x", "--image=y").stdout, p.stdout)
        self.assertIn("--unset-env=KEY", ctl("service", "update", "--help").stdout)
        self.assertIn("service rm NAME...", ctl("service", "rm", "-h").stdout)

    def test_help_fits_80_columns(self):
        for verb in ([], ["services"], ["service", "show"], ["service", "create"],
                     ["service", "update"], ["service", "rm"], ["status"], ["help"]):
            with self.subTest(verb=verb):
                p = ctl(*verb, "--help")
                self.assertEqual(p.returncode, 0, p.stderr)
                for line in p.stdout.splitlines():
                    self.assertLessEqual(len(line), 79, line)

    def assertUsageError(self, p, message):
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertIn(message, p.stderr)
        self.assertTrue(p.stderr.startswith("gatewayctl: "), p.stderr)
        self.assertEqual(p.stderr.count("\n"), 1, p.stderr)

    def test_bad_command_lines(self):
        cases = [
            (("frob",), "Unknown command 'frob'"),
            (("service",), "'service' needs a command: one of show, create, update, rm."),
            (("service", "frob"), "Unknown command 'service frob'"),
            (("--frob",), "Unknown option --frob"),
            (("-x",), "Unknown option -x"),
            (("status", "--image=x"), "Option --image does not apply to 'status'"),
            (("services", "--memory=1G"), "Option --memory does not apply to 'services'"),
            (("service", "create", "x", "--unset-env=A", "--image=y"),
             "Option --unset-env does not apply to 'service create'"),
            (("service", "show"), "Too few arguments; usage: gatewayctl service show NAME"),
            (("service", "show", "a", "b"), "Too many arguments"),
            (("status", "x"), "Too many arguments"),
            (("--json=fancy",), "Invalid --json= mode 'fancy'"),
            (("service", "create", "x", "--image"), "Option --image needs an argument"),
            (("service", "create", "x", "--image="), "--image= needs an image reference"),
            (("service", "create", "x", "--image=y", "--memory=12Q"), "Invalid --memory= value '12Q'"),
            (("service", "create", "x", "--image=y", "--memory=-1"), "Invalid --memory= value '-1'"),
            (("service", "create", "x", "--image=y", "--memory=99999E"), "Invalid --memory= value"),
            (("service", "create", "x", "--image=y", "--cpus=lots"), "Invalid --cpus= value 'lots'"),
            (("service", "create", "x", "--image=y", "--cpus=-1"), "Invalid --cpus= value '-1'"),
            (("service", "create", "x", "--image=y", "--timeout=soon"), "Invalid --timeout= value 'soon'"),
            (("service", "create", "x", "--image=y", "--env=NOEQUALS"), "Invalid --env= value 'NOEQUALS'"),
            (("service", "create", "x", "--image=y", "--env==v"), "Invalid --env= value '=v'"),
            (("service", "create", "x", "--image=y", "--network=perhaps"), "Invalid --network= value"),
            (("service", "create", "x"), "--image= is required"),
            (("service", "create", "x", "--image=y", "--command=a", "--", "b"),
             "--command= and \"-- ARG...\" cannot be combined"),
            (("service", "update", "x"), "Nothing to change"),
            (("service", "update", "x", "--unset-env=A=B"), "Invalid --unset-env= value"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assertUsageError(ctl(*args), message)

    def test_bad_spec_files(self):
        with tempfile.TemporaryDirectory(prefix="gatewayctl-test-") as d:
            path = os.path.join(d, "spec.json")
            for text, message in [("{\"name\": ", "is not valid JSON"),
                                  ("{} {}", "is not valid JSON: trailing data"),
                                  ("[1, 2]", "is not a JSON object"),
                                  ("", "is not valid JSON")]:
                with self.subTest(text=text):
                    with open(path, "w") as f:
                        f.write(text)
                    self.assertUsageError(ctl("service", "create", "--file", path), message)
                    self.assertUsageError(ctl("service", "create", "--file=-", input=text),
                                          "Spec standard input " + message)
            self.assertUsageError(ctl("service", "create", "-f", os.path.join(d, "missing")),
                                  "No such file or directory")
            with open(path, "w") as f:
                json.dump({"image": IMAGE}, f)
            self.assertUsageError(ctl("service", "create", "-f", path), "No service name given")
            with open(path, "w") as f:
                json.dump({"name": "a", "image": IMAGE}, f)
            self.assertUsageError(ctl("service", "create", "b", "-f", path),
                                  "The spec's name \"a\" does not match 'b'")

    def test_no_bus(self):
        p = ctl("services")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("Failed to connect to the system bus", p.stderr)


class WithoutDaemon(unittest.TestCase):
    """A bus without gatewayd (and without an activation file): a clear message, no hang."""

    def test_not_running(self):
        with PrivateBus() as bus:
            p = ctl("status", env=bus.env())
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("Failed to get status: gatewayd is not running", p.stderr)


class AgainstDaemon(GatewaydTestCase):
    """One daemon, polkitd and bus for the class; every test uses its own service names."""

    @classmethod
    def setUpClass(cls):
        users.ensure_test_users()
        cls.bus = PrivateBus().start()
        try:
            cls.polkit = Polkit(cls.bus).start()
            cls.gw = Gatewayd(mode="direct", bus=cls.bus).start()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.class_tracked = [cls.gw]

    @classmethod
    def tearDownClass(cls):
        try:
            if getattr(cls, "gw", None):
                cls.gw.stop()
        finally:
            try:
                if getattr(cls, "polkit", None):
                    cls.polkit.stop()
            finally:
                cls.bus.stop()

    def ctl(self, *args, as_user=None, input=None, env=None):
        e = self.bus.env()
        e.pop("COLUMNS", None)
        e.update(env or {})
        p = subprocess.run(users.as_user_argv(as_user, [gatewayctl_binary()] + list(args)), env=e,
                           capture_output=True, text=True, timeout=60, **stdin_kw(input))
        check_sanitizer_output(p.stderr)
        return p

    def ok(self, *args, **kw):
        p = self.ctl(*args, **kw)
        self.assertEqual(p.returncode, 0, f"gatewayctl {' '.join(args)}: {p.stderr}")
        return p.stdout

    def fails(self, *args, message, **kw):
        p = self.ctl(*args, **kw)
        self.assertEqual(p.returncode, 1, f"gatewayctl {' '.join(args)} should fail: {p.stdout}")
        self.assertEqual(p.stdout, "")
        self.assertIn(message, p.stderr)
        return p.stderr

    def create(self, name, *args):
        self.ok("service", "create", name, f"--image={IMAGE}", *args)
        self.addCleanup(self.ctl, "service", "rm", name)

    def record(self, name):
        return json.loads(self.ok("service", "show", name, "--json"))

    def listed_names(self):
        return [line.split("  ")[0] for line in self.ok("services", "--no-legend").splitlines()]

    # -- create / show --------------------------------------------------------------------

    def test_create_with_options_and_show(self):
        self.create("ctl-full", "--description=Says hello", "--env=GREETING=hi", "--env=EMPTY=",
                    "--env=EQ=a=b", "--memory=512M", "--cpus=1.5", "--timeout=1min30s", "--network",
                    "--", "echo", "hello world", "it's")
        out = self.ok("service", "show", "ctl-full")
        fields = {}
        for line in out.splitlines():
            k, sep, v = line.partition(": ")
            if sep:
                fields[k.strip()] = v
        self.assertEqual(fields["Name"], "ctl-full")
        self.assertEqual(fields["Image"], IMAGE)
        self.assertEqual(fields["Description"], "Says hello")
        self.assertEqual(fields["Command"], "echo 'hello world' 'it'\\''s'")
        self.assertEqual(fields["Network"], "yes")
        self.assertEqual(fields["Memory"], "512M")
        self.assertEqual(fields["CPUs"], "1.5")
        self.assertEqual(fields["Timeout"], "1min 30s")
        self.assertRegex(fields["Created"], r"^\w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")
        # Environment: one variable per line, continuation lines aligned under the first.
        env_lines = out[out.index("Environment: "):].splitlines()[:3]
        col = env_lines[0].index("Environment: ") + len("Environment: ")
        self.assertEqual(sorted(l[col:] for l in env_lines), ["EMPTY=", "EQ=a=b", "GREETING=hi"])
        # Labels are right-aligned: every ": " at the same column.
        self.assertEqual(len({line.index(": ") for line in out.splitlines() if ": " in line}), 1, out)

        r = self.record("ctl-full")
        self.assertEqual(r["name"], "ctl-full")
        self.assertEqual(r["image"], IMAGE)
        self.assertEqual(r["command"], ["echo", "hello world", "it's"])

    def test_create_with_command_options(self):
        self.create("ctl-cmdopt", "--command=sh", "--command=-c", "--command=echo $X")
        self.assertEqual(self.record("ctl-cmdopt")["command"], ["sh", "-c", "echo $X"])

    def test_create_from_stdin_with_overrides(self):
        spec = {"name": "ctl-file", "image": IMAGE, "command": ["true"], "description": "from file"}
        self.ok("service", "create", "--file=-", "--description=overridden", input=json.dumps(spec))
        self.addCleanup(self.ctl, "service", "rm", "ctl-file")
        r = self.record("ctl-file")
        self.assertEqual(r["command"], ["true"])
        self.assertEqual(r["description"], "overridden")

    def test_create_json_prints_record(self):
        out = self.ok("service", "create", "ctl-json-create", f"--image={IMAGE}", "--json=short")
        self.addCleanup(self.ctl, "service", "rm", "ctl-json-create")
        self.assertEqual(out.count("\n"), 1)
        self.assertEqual(json.loads(out), self.record("ctl-json-create"))

    def test_create_silent_on_success(self):
        p = self.ctl("service", "create", "ctl-quiet", f"--image={IMAGE}")
        self.addCleanup(self.ctl, "service", "rm", "ctl-quiet")
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))

    # -- tables ---------------------------------------------------------------------------

    def test_services_table(self):
        self.create("ctl-tab-a", "--description=First one")
        self.create("ctl-tab-b")
        out = self.ok("services")
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^NAME +IMAGE +DESCRIPTION$")
        self.assertEqual(lines[-2], "")
        m = re.fullmatch(r"(\d+) services? listed\.", lines[-1])
        self.assertIsNotNone(m, lines[-1])
        rows = lines[1:-2]
        self.assertEqual(int(m.group(1)), len(rows))
        # Columns start where their headers start; rows are sorted by name.
        image_col, descr_col = lines[0].index("IMAGE"), lines[0].index("DESCRIPTION")
        row_a = next(r for r in rows if r.startswith("ctl-tab-a "))
        row_b = next(r for r in rows if r.startswith("ctl-tab-b "))
        self.assertEqual(row_a[image_col:].split("  ")[0], IMAGE)
        self.assertEqual(row_a[descr_col:], "First one")
        self.assertEqual(row_b[descr_col:], "-")
        self.assertLess(rows.index(row_a), rows.index(row_b))
        names = [r.split(" ")[0] for r in rows]
        self.assertEqual(names, sorted(names))
        # No trailing blanks in a pipe, no escape sequences.
        self.assertFalse(any(l != l.rstrip() for l in lines), out)
        self.assertNotIn("\x1b", out)

    def test_services_no_legend(self):
        self.create("ctl-legend")
        out = self.ok("services", "--no-legend")
        self.assertNotIn("NAME", out)
        self.assertNotIn("listed", out)
        self.assertIn("ctl-legend", self.listed_names())

    def test_table_fits_columns_and_escapes(self):
        long_descr = "a long description " * 10
        self.create("ctl-wide", f"--description={long_descr}")
        self.create("ctl-ctrl", "--description=bad\x1b[31mred\nline")
        wide = self.ok("services", env={"COLUMNS": "60"})
        for line in wide.splitlines():
            self.assertLessEqual(len(line), 60, line)
        row = next(l for l in wide.splitlines() if l.startswith("ctl-wide "))
        self.assertTrue(row.endswith("…") or row.endswith("..."), row)
        # In a pipe without $COLUMNS, nothing is cut.
        self.assertIn(long_descr.strip(), self.ok("services"))
        row = next(l for l in self.ok("services").splitlines() if l.startswith("ctl-ctrl "))
        self.assertTrue(row.endswith("bad\\x1b[31mred\\nline"), row)
        # JSON is not escaped.
        self.assertEqual(self.record("ctl-ctrl")["description"], "bad\x1b[31mred\nline")

    # -- JSON -----------------------------------------------------------------------------

    def test_services_json(self):
        self.create("ctl-j1", "--description=one")
        self.create("ctl-j2")
        pretty = self.ok("services", "--json")
        short = self.ok("services", "--json=short")
        self.assertEqual(short.count("\n"), 1)
        self.assertGreater(pretty.count("\n"), 1)
        records = json.loads(pretty)
        self.assertEqual(records, json.loads(short))
        self.assertIsInstance(records, list)
        by_name = {r["name"]: r for r in records}
        self.assertEqual(by_name["ctl-j1"], self.record("ctl-j1"))
        self.assertEqual(by_name["ctl-j1"]["description"], "one")
        self.assertEqual(sorted(by_name), sorted(self.listed_names()))

    def test_status(self):
        self.create("ctl-status")
        out = self.ok("status")
        self.assertRegex(out, r"(?m)^ *Version: \d+\.\d+")
        self.assertRegex(out, r"(?m)^ *State dir: /")
        n = int(re.search(r"(?m)^ *Services: (\d+)$", out).group(1))
        self.assertEqual(n, len(self.listed_names()))
        status = json.loads(self.ok("status", "--json"))
        self.assertIsInstance(status, dict)

    # -- update / rm ----------------------------------------------------------------------

    def test_update_keeps_what_is_not_named(self):
        self.create("ctl-upd", "--description=keep me", "--env=A=1", "--env=B=2", "--memory=1G",
                    "--", "echo", "one")
        self.ok("service", "update", "ctl-upd", "--env=B=3", "--unset-env=A", "--memory=0", "--cpus=2")
        out = self.ok("service", "show", "ctl-upd")
        self.assertIn("Description: keep me", out)
        self.assertIn("Command: echo one", out)
        self.assertIn("Environment: B=3\n", out)
        self.assertIn("Memory: default", out)
        self.assertIn("CPUs: 2\n", out)
        self.ok("service", "update", "ctl-upd", "--", "echo", "two")
        self.assertEqual(self.record("ctl-upd")["command"], ["echo", "two"])
        self.ok("service", "update", "ctl-upd", f"--image={IMAGE}", "--network=no")
        self.assertIn("Network: no", self.ok("service", "show", "ctl-upd"))

    def test_rm_reports_each_failure(self):
        self.create("ctl-rm-a")
        self.create("ctl-rm-b")
        err = self.fails("service", "rm", "ctl-rm-a", "ctl-rm-missing", "ctl-rm-b",
                         message="Failed to remove service 'ctl-rm-missing': ")
        self.assertEqual(err.count("\n"), 1, err)
        names = self.listed_names()
        self.assertNotIn("ctl-rm-a", names)
        self.assertNotIn("ctl-rm-b", names)

    # -- daemon errors --------------------------------------------------------------------

    def test_unknown_service(self):
        self.fails("service", "show", "ctl-nope", message="Failed to get service 'ctl-nope': ")
        self.fails("service", "show", "ctl-nope", "--json", message="Failed to get service 'ctl-nope': ")
        self.fails("service", "update", "ctl-nope", "--image=x", message="Failed to get service 'ctl-nope': ")

    def test_duplicate(self):
        self.create("ctl-dup")
        self.fails("service", "create", "ctl-dup", f"--image={IMAGE}", message="Failed to create service: ")

    def test_invalid_spec_rejected_by_daemon(self):
        self.fails("service", "create", "bad name/with slash", f"--image={IMAGE}",
                   message="Failed to create service: ")
        self.assertNotIn("bad name/with slash", self.listed_names())

    def test_polkit_authorization(self):
        # An ordinary user may look but not change; an admin (polkit rule) may.
        self.create("ctl-auth")
        self.assertIn("ctl-auth", self.ok("services", as_user=users.USER))
        self.fails("service", "create", "ctl-auth-user", f"--image={IMAGE}", "--no-ask-password",
                   as_user=users.USER, message="Failed to create service: ")
        self.fails("service", "rm", "ctl-auth", as_user=users.USER,
                   message="Failed to remove service 'ctl-auth': ")
        self.ok("service", "create", "ctl-auth-admin", f"--image={IMAGE}", as_user=users.ADMIN)
        self.addCleanup(self.ctl, "service", "rm", "ctl-auth-admin")
        self.assertIn("ctl-auth-admin", self.listed_names())


AUTH_USER = "gwtest-ctlauth"
AUTH_PASSWORD = "gatewayctl-Test-pw-1"

# The account may authenticate as itself (not as an administrator) for gatewayd's actions, so
# that the test can answer the prompt without knowing root's password.
AUTH_SELF_RULE = """
polkit.addRule(function(action, subject) {
        if (action.id == "org.gatewayd.manage-services" && subject.user == "%s") {
                return polkit.Result.AUTH_SELF;
        }
});
""" % AUTH_USER


def set_password(user, password):
    """chpasswd, retried while another test run holds the lock on /etc/shadow."""
    def attempt():
        p = subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, capture_output=True)
        if p.returncode != 0 and "lock" not in p.stderr:
            raise RuntimeError(f"chpasswd failed: {p.stderr.strip()}")
        return p.returncode == 0
    procs.wait_for(attempt, timeout=10, what="chpasswd to get the lock on /etc/shadow")


def _controlling_tty():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_on_pty(argv, env, answer=None, timeout=60):
    """Runs ARGV with a new pseudo-terminal as its controlling terminal and stdin/stdout/stderr,
    as if typed in a terminal. If ANSWER is given, it is typed once "Password:" appears.
    Returns (exit status, everything the terminal showed)."""
    master, slave = os.openpty()
    try:
        p = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave,
                             preexec_fn=_controlling_tty)
    finally:
        os.close(slave)
    out = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no end of output from {argv}: {out!r}")
            r, _, _ = select.select([master], [], [], left)
            if not r:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every process on the terminal is gone
                break
            if not chunk:
                break
            out += chunk
            if answer is not None and not answered and b"Password:" in out:
                # Type only once the agent has turned echo off: it does so with TCSAFLUSH,
                # which would throw away anything typed earlier.
                procs.wait_for(lambda: not termios.tcgetattr(master)[3] & termios.ECHO, timeout=10,
                               what="the password prompt to turn echo off")
                os.write(master, answer.encode() + b"\n")
                answered = True
        return p.wait(timeout=max(deadline - time.monotonic(), 1)), out.decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


class InteractiveAuthorization(GatewaydTestCase):
    """On a terminal gatewayctl lets polkit ask for a password (pkttyagent); with
    --no-ask-password or without a terminal it does not. Real polkitd, real PAM."""

    @classmethod
    def setUpClass(cls):
        users.ensure_test_users()
        users.ensure_user(AUTH_USER)
        set_password(AUTH_USER, AUTH_PASSWORD)
        cls.bus = PrivateBus().start()
        try:
            cls.polkit = Polkit(cls.bus, rules=AUTH_SELF_RULE).start()
            cls.gw = Gatewayd(mode="direct", bus=cls.bus).start()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.class_tracked = [cls.gw]

    @classmethod
    def tearDownClass(cls):
        AgainstDaemon.tearDownClass.__func__(cls)

    def create_on_pty(self, name, *extra, answer=None):
        argv = users.as_user_argv(AUTH_USER, [gatewayctl_binary(), "service", "create", name,
                                              f"--image={IMAGE}", *extra])
        # polkit-agent-helper-1 is setuid, so GLib ignores $DBUS_SYSTEM_BUS_ADDRESS there and
        # it reports the password check to the standard system bus socket. In a mount namespace
        # of its own, that path leads to the private bus; nothing changes outside.
        script = ('mount -t tmpfs -o mode=0755 tmpfs /run/dbus && '
                  'touch /run/dbus/system_bus_socket && '
                  'mount --bind "$1" /run/dbus/system_bus_socket && shift && exec "$@"')
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                self.bus.socket_path] + argv
        return run_on_pty(argv, self.bus.env(), answer=answer)

    def exists(self, name):
        p = subprocess.run([gatewayctl_binary(), "service", "show", name], env=self.bus.env(),
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        return p.returncode == 0

    def test_password_prompt_on_terminal(self):
        rc, out = self.create_on_pty("ctl-pty-ok", answer=AUTH_PASSWORD)
        self.addCleanup(subprocess.run, [gatewayctl_binary(), "service", "rm", "ctl-pty-ok"],
                        env=self.bus.env(), stdin=subprocess.DEVNULL, capture_output=True)
        self.assertEqual(rc, 0, out)
        self.assertIn("AUTHENTICATING FOR org.gatewayd.manage-services", out)
        self.assertIn(f"Authenticating as: {AUTH_USER}", out)
        self.assertTrue(self.exists("ctl-pty-ok"))

    def test_wrong_password(self):
        rc, out = self.create_on_pty("ctl-pty-wrong", answer="not-the-password")
        self.assertEqual(rc, 1, out)
        self.assertIn("AUTHENTICATING FOR org.gatewayd.manage-services", out)
        self.assertIn("gatewayctl: Failed to create service: ", out)
        self.assertFalse(self.exists("ctl-pty-wrong"))

    def test_no_ask_password(self):
        rc, out = self.create_on_pty("ctl-pty-noask", "--no-ask-password")
        self.assertEqual(rc, 1, out)
        self.assertNotIn("AUTHENTICATING", out)
        self.assertIn("gatewayctl: Failed to create service: ", out)
        self.assertFalse(self.exists("ctl-pty-noask"))

    def test_no_terminal_no_prompt(self):
        p = subprocess.run(users.as_user_argv(AUTH_USER, [gatewayctl_binary(), "service", "create",
                                                          "ctl-notty", f"--image={IMAGE}"]),
                           env=self.bus.env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertNotIn("AUTHENTICATING", p.stdout + p.stderr)
        self.assertIn("Failed to create service: ", p.stderr)
        self.assertFalse(self.exists("ctl-notty"))


if __name__ == "__main__":
    unittest.main()
