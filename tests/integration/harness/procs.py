"""Child processes that tests start: every one is stopped and waited for, whatever happens."""
import os
import signal
import subprocess
import tempfile
import time
import shutil


class Processes:
    """Owns the children a test starts. stop_all() terminates them in reverse order and waits,
    so no daemon outlives its test (PID 1 here does not reap orphans)."""

    def __init__(self):
        self.children = []

    def start(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen(argv, **kw)
        self.children.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if p in self.children:
            self.children.remove(p)
        return p.returncode

    def stop_all(self):
        for p in reversed(list(self.children)):
            self.stop(p)


def wait_for(predicate, timeout=10.0, what="condition"):
    """Polls a condition that has no event to wait on (a socket appearing, a file written by
    another process). Returns the predicate's value; raises on timeout."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def read_line_from_fd(fd, timeout=10.0):
    """Reads one line that a child prints on an inherited pipe (e.g. --print-address)."""
    import select
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no line from child")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
    return buf.decode().strip()


class TempDir:
    def __init__(self, prefix="gatewayd-test-", dir=None):
        self.path = tempfile.mkdtemp(prefix=prefix, dir=dir)
        os.chmod(self.path, 0o755)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def build_dir():
    """The meson build directory under test (GATEWAYD_BUILD_DIR, default ./build)."""
    return os.environ.get("GATEWAYD_BUILD_DIR", os.path.join(source_dir(), "build"))


def source_dir():
    """The top of the source tree (this file is tests/integration/harness/procs.py)."""
    here = os.path.abspath(__file__)
    for _ in range(4):
        here = os.path.dirname(here)
    return here


def pids_mentioning(text):
    """Processes whose command line contains text (e.g. a test's temporary directory)."""
    found = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(d))
        except OSError:
            pass
    return found


def kill_processes_mentioning(text, timeout=15):
    """SIGKILLs the processes that outlive their parent on purpose (gateway-worker runs jobs in
    its own session so a job survives gatewayd) and waits until they are gone. They are not our
    children, so there is nothing to wait() for: their /proc entries are watched."""
    pids = pids_mentioning(text)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def gone():
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        return False
            except OSError:
                pass
        return True
    wait_for(gone, timeout=timeout, what="left-over workers to exit")
    return pids
