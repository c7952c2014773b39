"""A private system bus: a real dbus-daemon with a copy of the system bus configuration,
listening on a socket in a temporary directory, with our bus policy and a private activation
directory. Clients find it through DBUS_SYSTEM_BUS_ADDRESS."""
import os
import re
import signal
import subprocess

from . import procs

SYSTEM_CONF = "/usr/share/dbus-1/system.conf"
SYSTEM_CONF_DIR = "/usr/share/dbus-1"


def _private_config(text, socket_path, policy_dir, service_dir):
    """Turns the distribution's system.conf into one for an unprivileged-path private bus:
    no fork, no user switch, no pid file, no syslog, no setuid activation helper and no
    standard service directories (activation only from our own directory)."""
    for tag in ("user", "pidfile", "servicehelper"):
        text = re.sub(rf"<{tag}>[^<]*</{tag}>", "", text)
    for tag in ("fork", "syslog", "standard_system_servicedirs", "keep_umask"):
        text = re.sub(rf"<{tag}\s*/>", "", text)
    text = re.sub(r"<listen>[^<]*</listen>", f"<listen>unix:path={socket_path}</listen>", text)
    # Relative include directories are relative to the config file, which now lives elsewhere.
    text = re.sub(r"<includedir>(?!/)([^<]*)</includedir>",
                  lambda m: f"<includedir>{os.path.join(SYSTEM_CONF_DIR, m.group(1))}</includedir>",
                  text)
    text = re.sub(r"<include([^>]*)>(?!/)([^<]*)</include>",
                  lambda m: m.group(0) if "selinux" in m.group(1)
                  else f"<include{m.group(1)}>{os.path.join(SYSTEM_CONF_DIR, m.group(2))}</include>",
                  text)
    extra = (f"  <includedir>{policy_dir}</includedir>\n"
             f"  <servicedir>{service_dir}</servicedir>\n")
    return text.replace("</busconfig>", extra + "</busconfig>")


class PrivateBus:
    """with PrivateBus() as bus: ... (or start()/stop()). While running, os.environ has
    DBUS_SYSTEM_BUS_ADDRESS pointing at it, so every child (busctl, gatewayctl, polkitd,
    gatewayd) uses it."""

    def __init__(self, policy_files=None):
        self.tmp = procs.TempDir(prefix="gatewayd-bus-")
        self.procs = procs.Processes()
        self.socket_path = os.path.join(self.tmp.path, "system_bus_socket")
        self.policy_dir = os.path.join(self.tmp.path, "system.d")
        self.service_dir = os.path.join(self.tmp.path, "system-services")
        self.config_path = os.path.join(self.tmp.path, "system.conf")
        self.log_path = os.path.join(self.tmp.path, "dbus-daemon.log")
        if policy_files is None:
            policy_files = [os.path.join(procs.source_dir(), "dbus", "org.gatewayd.Gateway1.conf")]
        self.policy_files = policy_files
        self.address = None
        self.proc = None
        self._old_env = None
        self._activated_pidfiles = []

    def start(self):
        os.makedirs(self.policy_dir)
        os.makedirs(self.service_dir)
        for f in self.policy_files:
            with open(f) as src, open(os.path.join(self.policy_dir, os.path.basename(f)), "w") as dst:
                dst.write(src.read())
        with open(SYSTEM_CONF) as f:
            conf = _private_config(f.read(), self.socket_path, self.policy_dir, self.service_dir)
        with open(self.config_path, "w") as f:
            f.write(conf)
        r, w = os.pipe()
        try:
            self.log = open(self.log_path, "wb")
            self.proc = self.procs.start(
                ["dbus-daemon", f"--config-file={self.config_path}", "--nofork",
                 f"--print-address={w}"],
                pass_fds=(w,), stdout=self.log, stderr=subprocess.STDOUT)
            os.close(w)
            w = -1
            line = procs.read_line_from_fd(r, timeout=10)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        if not line:
            self.stop()
            raise RuntimeError("dbus-daemon did not start:\n" + self.log_text())
        # The address carries a guid; clients only need the path.
        self.address = f"unix:path={self.socket_path}"
        # Test users connect too; dbus-daemon creates the socket under our umask.
        os.chmod(self.socket_path, 0o777)
        self._old_env = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        return self

    def env(self, base=None):
        e = dict(os.environ if base is None else base)
        e["DBUS_SYSTEM_BUS_ADDRESS"] = self.address
        return e

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def install_service(self, name, argv, pidfile=None, stderr_path=None, env=None):
        """Installs an activation file for bus name NAME that runs ARGV (through a small
        wrapper script, so that the activated process' pid and stderr are ours to track),
        then makes the bus re-read its configuration. dbus-daemon is the activated process'
        parent and reaps it; stop_activated() ends what is still running before the bus
        goes away."""
        wrapper = os.path.join(self.service_dir, f"{name}.sh")
        pidfile = pidfile or os.path.join(self.tmp.path, f"{name}.pid")
        lines = ["#!/bin/sh"]
        for k, v in (env or {}).items():
            lines.append(f"export {k}={_sh_quote(v)}")
        lines.append(f"echo $$ > {_sh_quote(pidfile)}")
        redirect = f" 2>>{_sh_quote(stderr_path)}" if stderr_path else ""
        lines.append("exec " + " ".join(_sh_quote(a) for a in argv) + redirect)
        with open(wrapper, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(wrapper, 0o755)
        with open(os.path.join(self.service_dir, f"{name}.service"), "w") as f:
            f.write(f"[D-BUS Service]\nName={name}\nExec={wrapper}\nUser=root\n")
        self._activated_pidfiles.append(pidfile)
        self.reload()
        return pidfile

    def uninstall_service(self, name):
        """Removes NAME's activation file, so that nothing can start it again (e.g. while a
        test tears down); processes already running are left to stop_activated()."""
        for f in (f"{name}.service", f"{name}.sh"):
            try:
                os.unlink(os.path.join(self.service_dir, f))
            except FileNotFoundError:
                pass
        if self.proc is not None and self.proc.poll() is None:
            self.reload()

    def reload(self):
        """ReloadConfig returns once the bus has re-read its configuration and service
        directories."""
        subprocess.run(["busctl", f"--address={self.address}", "call", "org.freedesktop.DBus",
                        "/org/freedesktop/DBus", "org.freedesktop.DBus", "ReloadConfig"],
                       check=True, capture_output=True, timeout=10)

    def name_owner_pid(self, name):
        """The pid of NAME's owner, or None if nobody owns it."""
        p = subprocess.run(["busctl", f"--address={self.address}", "call", "org.freedesktop.DBus",
                            "/org/freedesktop/DBus", "org.freedesktop.DBus",
                            "GetConnectionUnixProcessID", "s", name],
                           capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            return None
        return int(p.stdout.split()[1])

    def wait_name(self, name, timeout=10, alive=None):
        """Waits (on NameOwnerChanged, via gdbus wait) until NAME is owned. Does not activate.
        ALIVE, if given, is checked while waiting: when the process that should take the name
        dies, the wait fails at once."""
        import time
        w = subprocess.Popen(["gdbus", "wait", "--system", "--timeout", str(int(timeout)), name],
                             env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
        try:
            deadline = time.monotonic() + timeout + 5
            while True:
                try:
                    w.wait(0.1)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if (alive is not None and not alive()) or time.monotonic() > deadline:
                    raise TimeoutError(f"bus name {name} did not appear (owner died or timeout)")
            if w.returncode != 0:
                raise TimeoutError(f"bus name {name} did not appear: {w.stderr.read().strip()}")
        finally:
            if w.poll() is None:
                w.kill()
                w.wait()
            w.stderr.close()

    def stop_activated(self, timeout=10):
        """SIGTERMs processes the bus activated that are still running and waits until the
        bus has reaped them (they are dbus-daemon's children, not ours)."""
        for pf in self._activated_pidfiles:
            try:
                with open(pf) as f:
                    pid = int(f.read().strip() or 0)
            except (OSError, ValueError):
                continue
            if pid <= 0 or not _alive(pid):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                procs.wait_for(lambda: not _alive(pid), timeout=timeout, what=f"activated pid {pid} to exit")
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                procs.wait_for(lambda: not _alive(pid), timeout=timeout, what=f"activated pid {pid} to die")

    def stop(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.stop_activated()
        finally:
            self.procs.stop_all()
            if getattr(self, "log", None):
                self.log.close()
            if self._old_env is None:
                os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
            else:
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self._old_env
            self._old_env = None
            self.tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _alive(pid):
    """True while PID exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _sh_quote(s):
    return "'" + str(s).replace("'", "'\\''") + "'"


class BusMonitor:
    """busctl monitor (as root, which the system policy allows) in JSON mode: every message on
    the bus, read line by line. Subscribed once start() returns: busctl reports "Monitoring"
    only after BecomeMonitor succeeded."""

    def __init__(self, bus):
        self.bus = bus
        self.proc = None
        self.seen = []

    def start(self):
        import json  # noqa: F401  (used by wait_signal)
        self.proc = subprocess.Popen(["busctl", "--system", "monitor", "--json=short"],
                                     env=self.bus.env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        line = procs.read_line_from_fd(self.proc.stderr.fileno(), timeout=10)
        if "Monitoring" not in line:
            self.stop()
            raise RuntimeError(f"busctl monitor did not start: {line}")
        self._buf = b""
        return self

    def _lines(self, timeout):
        import select
        import time
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                if line.strip():
                    yield line
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            self._buf += chunk

    def wait_signal(self, member, path=None, interface=None, predicate=None, timeout=10):
        """Returns the first signal (parsed JSON) MEMBER [on PATH] [of INTERFACE] for which
        PREDICATE(msg) holds, among those seen so far or arriving within TIMEOUT."""
        import json

        def match(m):
            return (m.get("type") == "signal" and m.get("member") == member
                    and (path is None or m.get("path") == path)
                    and (interface is None or m.get("interface") == interface)
                    and (predicate is None or predicate(m)))
        for m in self.seen:
            if match(m):
                return m
        for line in self._lines(timeout):
            try:
                m = json.loads(line)
            except ValueError:
                continue
            self.seen.append(m)
            if match(m):
                return m
        raise TimeoutError(f"no {member} signal on {path or 'any path'} within {timeout}s")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.proc.stdout.close()
            self.proc.stderr.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
