"""A real polkitd on the private system bus, with gatewayd's actions and a test rule that
makes the group gatewayd-admin administrators of gatewayd.

polkitd only reads actions from /usr/share/polkit-1/actions and rules from
/etc/polkit-1/rules.d, so the files are installed there for the duration of the test (under
names unique to this process, since other test runs on the machine may do the same) and
removed afterwards, whatever happens."""
import os
import subprocess

from . import procs

POLKITD = "/usr/lib/polkit-1/polkitd"
ACTIONS_DIR = "/usr/share/polkit-1/actions"
RULES_DIR = "/etc/polkit-1/rules.d"
NAME = "org.freedesktop.PolicyKit1"


class Polkit:
    def __init__(self, bus, policy=None, rules=None):
        """BUS: a started harness.bus.PrivateBus. POLICY: our .policy file (default: the
        source tree's). RULES: JavaScript rules text (default: the admin-group example)."""
        self.bus = bus
        src = procs.source_dir()
        self.policy = policy or os.path.join(src, "polkit", "org.gatewayd.policy")
        if rules is None:
            with open(os.path.join(src, "polkit", "gatewayd-admin.rules.example")) as f:
                rules = f.read()
        self.rules = rules
        tag = f"gatewayd-test-{os.getpid()}-{id(self):x}"
        self.installed_policy = os.path.join(ACTIONS_DIR, f"org.gatewayd.{tag}.policy")
        self.installed_rules = os.path.join(RULES_DIR, f"50-{tag}.rules")
        self.procs = procs.Processes()
        self.tmp = procs.TempDir(prefix="gatewayd-polkit-")
        self.log_path = os.path.join(self.tmp.path, "polkitd.log")
        self.proc = None

    def start(self):
        try:
            with open(self.policy) as f:
                policy = f.read()
            with open(self.installed_policy, "w") as f:
                f.write(policy)
            os.makedirs(RULES_DIR, exist_ok=True)
            with open(self.installed_rules, "w") as f:
                f.write(self.rules)
            os.chmod(self.installed_rules, 0o644)
            self.log = open(self.log_path, "wb")
            self.proc = self.procs.start([POLKITD, "--no-debug"], env=self.bus.env(),
                                         stdout=self.log, stderr=subprocess.STDOUT)
            self.bus.wait_name(NAME, timeout=15, alive=lambda: self.proc.poll() is None)
        except BaseException:
            self.stop()
            raise
        return self

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        """Stops polkitd (waiting for it) and removes the installed files."""
        try:
            self.procs.stop_all()
        finally:
            for p in (self.installed_policy, self.installed_rules):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
            if getattr(self, "log", None):
                self.log.close()
            self.tmp.cleanup()

    def check(self, action, pid, as_user=None):
        """Asks polkitd about ACTION for the process PID via pkcheck (a real client), returns
        True if authorized. Useful to tell polkit problems from gatewayd problems."""
        p = subprocess.run(["pkcheck", "--action-id", action, "--process", str(pid)],
                           env=self.bus.env(), capture_output=True, text=True, timeout=15)
        return p.returncode == 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
