"""Shared pieces of the benchmark scripts: a private system bus, gatewayd started on it, readiness
via $NOTIFY_SOCKET (no sleeps), an HTTP client for the unix socket, CPU placement.

CPU placement (2 cores): the server under test (gatewayd or its baseline) is pinned to CPU 0 and
the load generator to CPU 1, so each gets one core and the two runs are directly comparable.
dbus-daemon (bus benchmark only) is left unpinned: it is a third busy process and the scheduler
puts it wherever there is idle time; it is the same for gatewayd and the baseline."""
import http.client
import json
import os
import select
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))

from harness.procs import Processes, TempDir, read_line_from_fd  # noqa: E402

SERVER_CPU = 0
CLIENT_CPU = 1

DURATION = float(os.environ.get("BENCH_DURATION", "5"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "1"))
# The machine is shared: gatewayd and its baseline are measured in alternating rounds and the
# medians of each are compared (with the spread of the rounds printed), so a burst of someone
# else's work during one round decides neither the figure nor the ratio.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <limit name="max_replies_per_connection">50000</limit>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow send_type="method_call"/>
  </policy>
</busconfig>
"""

SERVICE_SPEC = {
    "name": "bench",
    "image": "registry.example.org/quantum/qaoa-solver:1.4.2",
    "description": "QAOA solver used by the throughput benchmark",
    "command": ["/usr/bin/python3", "-m", "solver", "--input", "/var/input/data.json"],
    "env": {"OMP_NUM_THREADS": "1", "SOLVER_BACKEND": "simulator"},
    "resources": {"memory": 2147483648, "cpus": 1.5, "timeout": 600},
    "network": False,
}


def build_dir():
    return os.environ.get("GATEWAYD_BUILD_DIR", os.path.join(os.path.dirname(HERE), "build"))


def binary(*parts):
    return os.path.join(build_dir(), *parts)


def pin(cpu):
    return lambda: os.sched_setaffinity(0, {cpu})


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def http_request(sock_path, method, path, body=None):
    c = UnixHTTPConnection(sock_path)
    headers = {}
    if body is not None:
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


class Bench:
    """A temporary directory, a private system bus and the children of one benchmark run."""

    def __init__(self):
        self.tmp = TempDir(prefix="gatewayd-bench-")
        self.procs = Processes()
        self.notify_path = os.path.join(self.tmp.path, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.env = dict(os.environ)
        self.env.pop("LISTEN_FDS", None)
        self.env.pop("LISTEN_FDNAMES", None)
        self.env["NOTIFY_SOCKET"] = self.notify_path

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.procs.stop_all()
        self.notify.close()
        self.tmp.cleanup()

    def wait_ready(self, proc, what, timeout=20):
        """Waits for READY=1 from a child on $NOTIFY_SOCKET (or its early death)."""
        import time
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with status {proc.returncode} before it was ready")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what} did not become ready")
            r, _, _ = select.select([self.notify], [], [], min(left, 0.5))
            if r:
                msg = self.notify.recv(4096).decode(errors="replace")
                if "READY=1" in msg.split("\n"):
                    return

    def start_bus(self):
        path = os.path.join(self.tmp.path, "system_bus_socket")
        conf = os.path.join(self.tmp.path, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONFIG.format(path=path))
        r, w = os.pipe()
        # Not our notify socket: dbus-daemon would report READY=1 on it too. Its stderr only
        # carries "Failed to set fd limit" in unprivileged containers.
        env = {k: v for k, v in self.env.items() if k != "NOTIFY_SOCKET"}
        p = self.procs.start(["dbus-daemon", "--config-file=" + conf, "--nofork", "--print-address=%d" % w],
                             pass_fds=(w,), env=env, stderr=subprocess.DEVNULL)
        os.close(w)
        try:
            address = read_line_from_fd(r)
        finally:
            os.close(r)
        if not address:
            raise RuntimeError("dbus-daemon printed no address")
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = address
        return p

    def start_gatewayd(self, config=None):
        state = os.path.join(self.tmp.path, "state")
        runtime = os.path.join(self.tmp.path, "run")
        path = os.path.join(self.tmp.path, "gatewayd.json")
        with open(path, "w") as f:
            f.write(json.dumps(config or {}) + "\n")
        config = path
        p = self.procs.start([binary("src", "gatewayd", "gatewayd"), "--config", config,
                              "--state-dir", state, "--runtime-dir", runtime, "--log-level", "warning"],
                             env=self.env, preexec_fn=pin(SERVER_CPU))
        self.wait_ready(p, "gatewayd")
        return p, os.path.join(runtime, "http.sock")

    def measure(self, server_pid, argv, rate_key, count_key):
        """Runs the client once against a server; returns (rate/s, server CPU µs per request,
        fraction of the run the server spent waiting for a CPU, the client's output fields). The CPU time comes from the
        scheduler (/proc/PID/task/*/schedstat), so it holds however busy the machine is."""
        before = sched_ns(server_pid)
        f = self.run_client(argv)
        after = sched_ns(server_pid)
        n = max(int(f[count_key]), 1)
        run_us = (after[0] - before[0]) / 1000
        wait_frac = (after[1] - before[1]) / 1e9 / (DURATION + WARMUP)
        return float(f[rate_key]), run_us / n, wait_frac, f

    def run_client(self, argv):
        out = subprocess.run(argv, env=self.env, stdout=subprocess.PIPE, text=True, preexec_fn=pin(CLIENT_CPU),
                             timeout=DURATION + WARMUP + 60)
        if out.returncode != 0:
            raise RuntimeError(f"{os.path.basename(argv[0])} failed ({out.returncode}): {out.stdout.strip()}")
        fields = dict(kv.split("=", 1) for kv in out.stdout.split())
        return fields


def sched_ns(pid):
    """(on-CPU ns, runqueue-wait ns) summed over the threads of pid."""
    run = wait = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                a, b, _ = f.read().split()
            run += int(a)
            wait += int(b)
        except (FileNotFoundError, ValueError):
            pass
    return run, wait


def alternate(measure_gatewayd, measure_baseline):
    """Runs ROUNDS alternating measurements (each returning measure()'s triple); returns the
    lists of samples for gatewayd and the baseline."""
    g, b = [], []
    for _ in range(ROUNDS):
        g.append(measure_gatewayd())
        b.append(measure_baseline())
    return g, b


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def report(name, g, b, target, unit="request"):
    """Prints the summary line (median round of each, with the spread of the rounds) and the CPU
    cost per request, which the machine's other load does not distort."""
    gatewayd = median([x[0] for x in g])
    baseline = median([x[0] for x in b])
    ratio = gatewayd / baseline if baseline else 0.0
    print("  gatewayd rounds: " + ", ".join(f"{x[0]:.0f}/s" for x in g) +
          "; baseline rounds: " + ", ".join(f"{x[0]:.0f}/s" for x in b))
    gcpu, bcpu = median([x[1] for x in g]), median([x[1] for x in b])
    print(f"  server CPU per {unit} (median): gatewayd {gcpu:.2f} µs, baseline {bcpu:.2f} µs "
          f"(gatewayd costs {gcpu / bcpu:.2f}x)")
    wait = max(x[2] for x in g + b)
    if wait > 0.1:
        print(f"  note: a server waited for a CPU up to {wait * 100:.0f}% of a round: the machine is busy "
              f"with other work, rates are noisy (CPU per {unit} is not affected)")
    print(f"{name}: gatewayd {gatewayd:.0f}/s (rounds {min(x[0] for x in g):.0f}-{max(x[0] for x in g):.0f}), "
          f"baseline {baseline:.0f}/s (rounds {min(x[0] for x in b):.0f}-{max(x[0] for x in b):.0f}), "
          f"ratio of medians {ratio:.2f}", flush=True)
    verdict = "met" if ratio >= target else "MISSED"
    print(f"  (target ratio >= {target:.2f}: {verdict})", flush=True)
    return 0 if ratio >= target else 2
