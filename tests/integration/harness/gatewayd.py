"""Launching the gatewayd under test and talking to it through its real surfaces: HTTP with
curl on the unix socket, D-Bus with busctl, and gatewayctl, each optionally as another user.

Three ways to start it:
  "direct"  gatewayd binds <runtime-dir>/http.sock itself;
  "socket"  under systemd-socket-activate (the socket unit's shape: one fd named "http");
            the daemon is exec'd on the first connection;
  "dbus"    bus activation from the private bus' service directory on the first call.
Readiness is an event: READY=1 on a notify socket the harness listens on, or the bus name."""
import collections
import json
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time
import unittest

from . import procs, rootfs
from .users import as_user_argv

BUS_NAME = "org.gatewayd.Gateway1"
BUS_PATH = "/org/gatewayd/Gateway1"
MANAGER_IFACE = "org.gatewayd.Gateway1.Manager"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ERROR: UndefinedBehaviorSanitizer", "AddressSanitizer:DEADLYSIGNAL")


def gatewayd_binary():
    return os.path.join(procs.build_dir(), "src", "gatewayd", "gatewayd")


def gatewayctl_binary():
    return os.path.join(procs.build_dir(), "src", "ctl", "gatewayctl")


def sanitizer_env(env):
    """Sanitizer settings for children: report to stderr (which the harness scans), fail hard.
    Harmless for a build without sanitizers."""
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:halt_on_error=1:"
                   "detect_stack_use_after_return=1:strict_string_checks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.setdefault("LSAN_OPTIONS", "")
    return env


class NotifyListener:
    """The receiving end of NOTIFY_SOCKET: collects sd_notify() datagrams in a thread so that
    tests can wait for READY=1, STOPPING=1 or a STATUS= line as events."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.messages = []
        self.cond = threading.Condition()
        self._r, self._w = os.pipe()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            r, _, _ = select.select([self.sock, self._r], [], [])
            if self._r in r:
                return
            data = self.sock.recv(65536)
            with self.cond:
                for line in data.decode(errors="replace").split("\n"):
                    if line:
                        self.messages.append(line)
                self.cond.notify_all()

    def count(self):
        with self.cond:
            return len(self.messages)

    def wait(self, message, start=0, timeout=15, alive=None):
        """Waits until MESSAGE (e.g. "READY=1", or a prefix like "STATUS=") arrives at index
        >= START. ALIVE, if given, is called between wake-ups; when it returns False the wait
        fails early (the daemon died). Returns the index of the message."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.messages)):
                    m = self.messages[i]
                    if m == message or (message.endswith("=") and m.startswith(message)):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {message} from gatewayd (got {self.messages[start:]})")
                self.cond.wait(min(left, 0.2))
                if alive is not None and not alive():
                    for i in range(start, len(self.messages)):
                        if self.messages[i] == message:
                            return i
                    raise RuntimeError(f"gatewayd exited before sending {message}")

    def close(self):
        os.write(self._w, b"x")
        self.thread.join()
        self.sock.close()
        os.close(self._r)
        os.close(self._w)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class HttpResponse(collections.namedtuple("HttpResponse", "status headers json")):
    """(status, headers, json) — headers is a dict with lower-case names; .body is the raw text."""
    body = ""

    def error_code(self):
        try:
            return self.json["error"]["code"]
        except (TypeError, KeyError):
            return None

    def error_message(self):
        try:
            return self.json["error"]["message"]
        except (TypeError, KeyError):
            return None


def parse_curl_output(raw):
    """Splits curl -i output into status, headers and body, skipping 1xx interim responses."""
    while True:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError(f"no HTTP response in curl output: {raw[:200]!r}")
        lines = head.decode("iso-8859-1").split("\r\n")
        status = int(lines[0].split()[1])
        if 100 <= status < 200:
            raw = rest
            continue
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers, rest


class Gatewayd:
    """One gatewayd under test. Use as a context manager or start()/stop(); stop() checks the
    daemon's stderr for sanitizer reports and raises AssertionError if there are any."""

    def __init__(self, mode="direct", bus=None, idle_timeout=None, config=None, extra_args=(),
                 state_dir=None, env=None, state_dir_arg=True, listen=(), wrapper=(), runtime_dir=None):
        assert mode in ("direct", "socket", "dbus")
        if mode == "dbus" and bus is None:
            raise ValueError("D-Bus activation needs a PrivateBus")
        self.mode = mode
        self.bus = bus
        self.idle_timeout = idle_timeout
        self.extra_args = list(extra_args)
        self.tmp = procs.TempDir(prefix="gatewayd-daemon-")
        self.state_dir = state_dir or os.path.join(self.tmp.path, "state")
        # False: no --state-dir, the state directory comes from the configuration (or the
        # built-in default); state_dir then only says where the test expects it.
        self.state_dir_arg = state_dir_arg
        # runtime_dir: elsewhere than the temporary directory, e.g. on a tmpfs as /run is
        self.runtime_dir = runtime_dir or os.path.join(self.tmp.path, "runtime")
        self.config_path = os.path.join(self.tmp.path, "gatewayd.json")
        self.socket_path = os.path.join(self.runtime_dir, "http.sock")
        self.stderr_path = os.path.join(self.tmp.path, "gatewayd.stderr")
        self.config = config if config is not None else {}
        self.env_extra = dict(env or {})
        # "socket" mode: further sockets passed by systemd-socket-activate, [(fdname, "HOST:PORT")]
        self.listen = list(listen)
        # An argv prefix gatewayd is exec'd by (e.g. unshare with a script that ends in
        # 'exec "$@"'): the daemon under special conditions. It must exec, not fork.
        self.wrapper = list(wrapper)
        self.procs = procs.Processes()
        self.proc = None
        self.notify = None

    # -- lifecycle --------------------------------------------------------------------------

    def argv(self):
        a = self.wrapper + [gatewayd_binary(), "--config", self.config_path]
        if self.state_dir_arg:
            a += ["--state-dir", self.state_dir]
        a += ["--runtime-dir", self.runtime_dir]
        if self.idle_timeout is not None:
            a += ["--idle-timeout", str(self.idle_timeout)]
        return a + self.extra_args

    def write_config(self, config=None):
        if config is not None:
            self.config = config
        with open(self.config_path, "w") as f:
            if isinstance(self.config, str):
                f.write(self.config)
            else:
                json.dump(self.config, f)

    def child_env(self):
        env = os.environ.copy()
        if self.bus is not None:
            env = self.bus.env(env)
        env.update(self.env_extra)
        env["NOTIFY_SOCKET"] = self.notify.path
        env.setdefault("GATEWAYD_LOG_LEVEL", "debug")
        return sanitizer_env(env)

    def start(self, wait=True):
        if self.state_dir_arg:
            os.makedirs(self.state_dir, exist_ok=True)
        os.makedirs(self.runtime_dir, exist_ok=True)
        os.chmod(self.runtime_dir, 0o755)
        self.write_config()
        if self.notify is None:
            self.notify = NotifyListener(os.path.join(self.tmp.path, "notify"))
        try:
            if self.mode == "dbus":
                env = self.child_env()
                keep = {k: env[k] for k in ("NOTIFY_SOCKET", "ASAN_OPTIONS", "UBSAN_OPTIONS",
                                            "LSAN_OPTIONS", "GATEWAYD_LOG_LEVEL",
                                            "DBUS_SYSTEM_BUS_ADDRESS") if k in env}
                keep.update(self.env_extra)
                self.pidfile = self.bus.install_service(BUS_NAME, self.argv(),
                                                        stderr_path=self.stderr_path, env=keep)
                return self  # activated by the first call
            self.stderr_file = open(self.stderr_path, "ab")
            if self.mode == "direct":
                # READY=1 of this start, not of an earlier one (restarts share the listener).
                n = self.notify.count()
                self.proc = self.procs.start(self.argv(), env=self.child_env(),
                                             stdout=self.stderr_file, stderr=subprocess.STDOUT)
                if wait:
                    self.wait_ready(start=n)
            else:
                env = self.child_env()
                # The unix socket is bound last: systemd-socket-activate binds in the order given,
                # so once its file exists every TCP/TLS listener listens too.
                argv = ["systemd-socket-activate"]
                for _, address in self.listen:
                    argv += ["-l", address]
                argv += ["-l", self.socket_path]
                argv.append("--fdname=" + ":".join([name for name, _ in self.listen] + ["http"]))
                for k in ("NOTIFY_SOCKET", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                          "GATEWAYD_LOG_LEVEL", "DBUS_SYSTEM_BUS_ADDRESS", *self.env_extra):
                    if k in env:
                        argv.append(f"-E{k}={env[k]}")
                self.proc = self.procs.start(argv + self.argv(), env=env,
                                             stdout=self.stderr_file, stderr=subprocess.STDOUT)
                # systemd-socket-activate has no readiness notification of its own: the socket
                # file appearing is the only sign that it listens.
                procs.wait_for(lambda: os.path.exists(self.socket_path) or self.proc.poll() is not None,
                               timeout=10, what="systemd-socket-activate to listen")
                if self.proc.poll() is not None:
                    raise RuntimeError("systemd-socket-activate exited:\n" + self.stderr_text())
                # Like SocketMode=0666 in gatewayd.socket.
                os.chmod(self.socket_path, 0o666)
        except BaseException:
            self.stop(check=False)
            raise
        return self

    def alive(self):
        if self.mode == "dbus":
            pid = self.pid()
            return pid is not None
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, start=None, timeout=20):
        """Waits for READY=1 (sent at index >= START of the notify messages)."""
        idx = self.notify.wait("READY=1", start=0 if start is None else start, timeout=timeout,
                               alive=self.alive if self.mode != "dbus" else None)
        return idx

    def pid(self):
        if self.mode == "dbus":
            return self.bus.name_owner_pid(BUS_NAME)
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def kill(self, sig=signal.SIGKILL):
        """Sends SIG to the daemon and waits for it to go."""
        if self.mode == "dbus":
            pid = self.pid()
            if pid:
                os.kill(pid, sig)
                procs.wait_for(lambda: self.bus.name_owner_pid(BUS_NAME) is None, timeout=10,
                               what="gatewayd to leave the bus")
            return None
        rc = self.procs.stop(self.proc, sig=sig)
        self.proc = None
        if getattr(self, "stderr_file", None):
            self.stderr_file.close()
            self.stderr_file = None
        return rc

    def wait_exit(self, timeout=15):
        """Waits for the daemon to exit by itself (idle timeout); returns its exit status."""
        return self.proc.wait(timeout)

    def restart(self):
        """Stops the daemon (SIGTERM, waits) and starts a new one on the same state."""
        self.stop_daemon()
        self.start()

    def stop_daemon(self, final=False):
        if self.mode == "dbus":
            if final:
                self.bus.uninstall_service(BUS_NAME)
            self.bus.stop_activated()
        elif self.proc is not None:
            self.procs.stop(self.proc)
            self.proc = None
        if getattr(self, "stderr_file", None):
            self.stderr_file.close()
            self.stderr_file = None

    def stop(self, check=True):
        """Stops everything, cleans up; with CHECK, fails on sanitizer reports in stderr."""
        try:
            self.stop_daemon(final=True)
        finally:
            self.procs.stop_all()
            if self.notify is not None:
                self.notify.close()
                self.notify = None
            # Job workers outlive gatewayd by design; nothing of this daemon may outlive the test.
            procs.kill_processes_mentioning(self.tmp.path)
            rootfs.unmount_all_under(self.tmp.path)
        text = self.stderr_text()
        self._stderr_at_stop = text
        self.tmp.cleanup()
        if check:
            check_sanitizer_output(text)

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return getattr(self, "_stderr_at_stop", "")

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, *exc):
        self.stop(check=exc_type is None)

    # -- clients ----------------------------------------------------------------------------

    def http(self, method, path, body=None, as_user=None, headers=None, content_type="application/json",
             timeout=30):
        """One request with curl --unix-socket (run as AS_USER). BODY: dict/list → JSON, str or
        bytes → sent as is. CONTENT_TYPE None sends no Content-Type. Returns HttpResponse."""
        argv = ["curl", "-sS", "-i", "--unix-socket", self.socket_path, "-X", method,
                "--max-time", str(timeout)]
        if not any(k.lower() == "expect" for k in (headers or {})):
            argv += ["-H", "Expect:"]  # no 100-continue round trip unless a test asks for it
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = body
            argv += ["--data-binary", "@-"]
            argv += ["-H", f"Content-Type: {content_type}" if content_type else "Content-Type:"]
        for k, v in (headers or {}).items():
            argv += ["-H", f"{k}: {v}"]
        argv.append("http://localhost" + path)
        p = subprocess.run(as_user_argv(as_user, argv), input=data if data is not None else b"",
                           capture_output=True, timeout=timeout + 10)
        if p.returncode != 0:
            raise ConnectionError(f"curl {method} {path} failed ({p.returncode}): "
                                  f"{p.stderr.decode(errors='replace').strip()}")
        status, hdrs, raw = parse_curl_output(p.stdout)
        text = raw.decode(errors="replace")
        try:
            j = json.loads(text) if text.strip() else None
        except ValueError:
            j = None
        r = HttpResponse(status, hdrs, j)
        r.body = text
        r.raw = raw
        return r

    def busctl(self, *args, as_user=None, timeout=30):
        """busctl --system ARGS as AS_USER on the private bus; returns CompletedProcess."""
        argv = ["busctl", "--system", "--no-pager"] + [str(a) for a in args]
        env = self.bus.env() if self.bus else os.environ.copy()
        return subprocess.run(as_user_argv(as_user, argv), env=env, capture_output=True, text=True,
                              timeout=timeout)

    def call(self, method, signature="", *args, as_user=None, path=BUS_PATH, iface=MANAGER_IFACE,
             timeout=30):
        """A Manager method call with busctl --json=short; returns (CompletedProcess, data)
        where data is the list of reply values (None on error)."""
        argv = ["--json=short", "call", BUS_NAME, path, iface, method]
        if signature:
            argv += [signature] + list(args)
        p = self.busctl(*argv, as_user=as_user, timeout=timeout)
        data = None
        if p.returncode == 0 and p.stdout.strip():
            data = json.loads(p.stdout)["data"]
        return p, data

    def gdbus_call(self, method, *args, as_user=None, path=BUS_PATH, iface=MANAGER_IFACE, timeout=30):
        """A method call with gdbus, which (unlike busctl) prints the D-Bus error name.
        Returns (CompletedProcess, error_name or None). String arguments are quoted as
        GVariant text; ints are passed as they are."""
        argv = ["gdbus", "call", "--system", "--dest", BUS_NAME, "--object-path", path,
                "--method", f"{iface}.{method}", "--timeout", str(timeout)]
        for a in args:
            if isinstance(a, str):
                argv.append("'" + a.replace("\\", "\\\\").replace("'", "\\'") + "'")
            else:
                argv.append(str(a))
        env = self.bus.env() if self.bus else os.environ.copy()
        p = subprocess.run(as_user_argv(as_user, argv), env=env, capture_output=True, text=True,
                           timeout=timeout + 10)
        m = re.search(r"GDBus\.Error:([A-Za-z0-9_.]+):", p.stderr)
        return p, (m.group(1) if m else None)

    def gatewayctl(self, *args, as_user=None, timeout=60, input=None):
        argv = [gatewayctl_binary()] + [str(a) for a in args]
        env = self.bus.env() if self.bus else os.environ.copy()
        env["GATEWAYD_HTTP_SOCKET"] = self.socket_path
        return subprocess.run(as_user_argv(as_user, argv), env=env, capture_output=True, text=True,
                              timeout=timeout, input=input)


def check_sanitizer_output(text):
    for m in SANITIZER_MARKERS:
        if m in text:
            raise AssertionError(f"sanitizer report in gatewayd's stderr:\n{text[-8000:]}")


class GatewaydTestCase(unittest.TestCase):
    """Base class: tests register daemons with self.track(gw) so that a failing test prints
    their stderr, and any sanitizer output fails the test."""

    def setUp(self):
        super().setUp()
        self._tracked = []

    def track(self, obj):
        self._tracked.append(obj)
        return obj

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result is not None else 0
        r = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            for obj in list(getattr(self, "_tracked", [])) + list(getattr(type(self), "class_tracked", [])):
                text = obj.stderr_text() if hasattr(obj, "stderr_text") else obj.log_text()
                name = type(obj).__name__
                print(f"\n----- {name} output ({self.id()}) -----\n{text[-20000:]}\n----- end -----")
        return r
