"""SSH test nodes on one host (facts/ssh-nodes.md): per node a real sshd on 127.0.0.1 with its own
ed25519 host key and authorized_keys whose forced command is `gateway-worker connect --socket
SOCK --image-dir IMAGES`, and a node socket emulated with `systemd-socket-activate --inetd -a -l
SOCK gateway-worker serve --state-dir STATE` (one root serve per connection, as Accept=yes). All
nodes share one unprivileged account (useradd -M -d / -U, unlocked with usermod -p '*').

Jobs that serve starts detached double-fork away from it; PID 1 here does not reap orphans, so
the test process makes itself a child subreaper (subreaper()) and reaps them at stop()."""
import ctypes
import json
import os
import pwd
import grp
import select
import shutil
import signal
import socket
import subprocess
import time

from . import procs
from .registry import free_port
from .users import _retry

ACCOUNT = "gwnode-test"
PR_SET_CHILD_SUBREAPER = 36


def worker_binary():
    return os.path.join(procs.build_dir(), "src", "worker", "gateway-worker")


def ensure_account():
    """The node account: no home (/), own group, not locked (a locked account is refused
    without PAM), shell /bin/sh (sshd runs the forced command through it)."""
    try:
        pwd.getpwnam(ACCOUNT)
    except KeyError:
        _retry(["useradd", "--system", "-M", "-d", "/", "-s", "/bin/sh", "-U", ACCOUNT], ok_codes=(0, 9))
        _retry(["usermod", "-p", "*", ACCOUNT], ok_codes=(0,))
    pw = pwd.getpwnam(ACCOUNT)
    return pw.pw_uid, pw.pw_gid


def subreaper(on=True):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap_orphans(known=()):
    """Waits for children we did not start ourselves (orphans handed to us as subreaper) that
    have exited. known: pids of our own Popen children, left to their Popen."""
    reaped = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        for pid in kids:
            if pid in known:
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state == "Z":
                try:
                    os.waitpid(pid, 0)
                    reaped.append(pid)
                except ChildProcessError:
                    pass
    return reaped


class Session:
    """One `ssh node` connection speaking the serve protocol through the relay."""

    def __init__(self, node, argv_extra=(), command=None):
        self.node = node
        argv = node.ssh_argv(*argv_extra)
        if command is not None:
            argv.append(command)
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.buf = b""
        self.eof = False

    def send(self, obj):
        line = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
        if isinstance(line, str):
            line = line.encode()
        if not line.endswith(b"\n"):
            line += b"\n"
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def close_input(self):
        self.proc.stdin.close()

    def read(self, timeout=15):
        """The next event (a dict); None at the end of the stream."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no event from {self.node.name} within {timeout}s; got {self.buf[:200]!r}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.eof = True
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def request(self, obj, timeout=15):
        self.send(obj)
        return self.read(timeout)

    def read_until(self, predicate, timeout=30):
        """Events up to and including the first one that satisfies predicate."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            ev = self.read(max(0.1, deadline - time.monotonic()))
            if ev is None:
                raise AssertionError(f"stream ended before the awaited event; got {got}")
            got.append(ev)
            if predicate(ev):
                return got
            if ev.get("event") == "finished":
                raise AssertionError(f"the job finished before the awaited event: {got}")

    def kill(self):
        """The client dies (-9), as a lost connection."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def close(self, timeout=15):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        return self.proc.returncode


class SSHNode:
    def __init__(self, name, client_key, serve_args=()):
        self.name = name
        self.client_key = client_key
        self.serve_args = list(serve_args)
        self.tmp = procs.TempDir(prefix=f"gatewayd-node-{name}-")
        os.chmod(self.tmp.path, 0o755)   # sshd reads authorized_keys as the account
        self.dir = self.tmp.path
        self.state = os.path.join(self.dir, "state")
        self.images = os.path.join(self.dir, "images")
        self.socket = os.path.join(self.dir, "run", "worker.sock")
        self.runtime = os.path.join(self.dir, "worker-runtime")
        self.procs = procs.Processes()
        self.port = None
        self.sshd = None
        self.activate = None

    # ---- setup ----

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        uid, gid = ensure_account()
        sshd_dir = os.path.join(self.dir, "sshd")
        os.makedirs(sshd_dir)
        os.makedirs(os.path.dirname(self.socket))
        os.makedirs(self.images)
        os.chown(self.images, uid, gid)
        host_key = os.path.join(sshd_dir, "host_ed25519_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
        with open(self.client_key + ".pub") as f:
            pub = f.read().strip()
        command = " ".join(f"'{a}'" for a in (worker_binary(), "connect", "--socket", self.socket,
                                                  "--image-dir", self.images))
        with open(os.path.join(sshd_dir, "authorized_keys"), "w") as f:
            f.write(f'restrict,command="{command}" {pub}\n')
        self.port = free_port()
        with open(host_key + ".pub") as f:
            host_pub = " ".join(f.read().split()[:2])
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {host_pub}\n")
        config = os.path.join(sshd_dir, "sshd_config")
        with open(config, "w") as f:
            f.write(f"""ListenAddress 127.0.0.1
Port {self.port}
HostKey {host_key}
PidFile none
AuthorizedKeysFile {sshd_dir}/authorized_keys
AllowUsers {ACCOUNT}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
Subsystem sftp /usr/lib/openssh/sftp-server
""")

        # The node socket: one root serve per connection.
        self.activate_log = open(os.path.join(self.dir, "serve.log"), "wb")
        self.activate = self.procs.start(
            ["systemd-socket-activate", "--inetd", "-a", "-l", self.socket, worker_binary(), "serve",
             f"--state-dir={self.state}", f"--image-dir={self.images}",
             f"--runtime-dir={self.runtime}"] + self.serve_args,
            stdout=self.activate_log, stderr=subprocess.STDOUT)
        procs.wait_for(lambda: os.path.exists(self.socket) or self.activate.poll() is not None,
                       what=f"node socket of {self.name}")
        if self.activate.poll() is not None:
            raise RuntimeError(f"systemd-socket-activate exited: {self.log()}")
        os.chown(self.socket, 0, gid)
        os.chmod(self.socket, 0o660)

        os.makedirs("/run/sshd", exist_ok=True)
        self.sshd_log_path = os.path.join(self.dir, "sshd.log")
        self.sshd = self.procs.start(["/usr/sbin/sshd", "-D", "-e", "-f", config],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        buf = b""
        deadline = time.monotonic() + 10
        while b"Server listening" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.sshd.poll() is not None:
                raise RuntimeError(f"sshd did not start: {buf.decode(errors='replace')}")
            r, _, _ = select.select([self.sshd.stderr], [], [], left)
            if r:
                chunk = os.read(self.sshd.stderr.fileno(), 4096)
                buf += chunk
        # Keep draining sshd's log into a file so that it never blocks on a full pipe.
        self.sshd_log = open(self.sshd_log_path, "wb")
        self.sshd_log.write(buf)
        self._drain = subprocess.Popen(["cat"], stdin=self.sshd.stderr, stdout=self.sshd_log)

    # ---- clients ----

    def ssh_argv(self, *extra):
        return ["ssh", "-i", self.client_key, "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", "LogLevel=ERROR", "-p", str(self.port), *extra, f"{ACCOUNT}@127.0.0.1"]

    def session(self, command=None):
        return Session(self, command=command)

    def request(self, obj, timeout=15):
        """One request on a connection of its own; returns the first answer."""
        s = self.session()
        try:
            return s.request(obj, timeout)
        finally:
            s.close()

    def sftp(self, batch):
        """Runs sftp batch commands (as the node account, through the forced command)."""
        return subprocess.run(["sftp", "-b", "-", "-i", self.client_key, "-o", f"UserKnownHostsFile={self.known_hosts}",
                               "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                               "-P", str(self.port), f"{ACCOUNT}@127.0.0.1"],
                              input=batch, capture_output=True, text=True, timeout=60)

    def scp(self, local, remote):
        """scp (SFTP protocol, OpenSSH 9) of a local file to REMOTE, relative to the image dir."""
        return subprocess.run(["scp", "-q", "-i", self.client_key, "-o", f"UserKnownHostsFile={self.known_hosts}",
                               "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                               "-P", str(self.port), local, f"{ACCOUNT}@127.0.0.1:{remote}"],
                              capture_output=True, text=True, timeout=60)

    def log(self):
        out = []
        for name in ("serve.log", "sshd.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append(f"--- {self.name} {name}\n" + f.read()[-4000:])
            except OSError:
                pass
        return "\n".join(out)

    # ---- jobs on the node, seen directly ----

    def job_dir(self, job):
        return os.path.join(self.state, "jobs", job)

    def worker_pid(self, job):
        """The pid holding the job's worker.pid lock (from /proc/locks), or None."""
        path = os.path.join(self.job_dir(job), "worker.pid")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks") as f:
            for line in f:
                p = line.split()
                if len(p) >= 6 and p[1] == "FLOCK" and p[5] == want:
                    return int(p[4])
        return None

    def stop(self):
        # Jobs still running are ended (they outlive serve on purpose) and reaped.
        jobs = os.path.join(self.state, "jobs")
        pids = []
        if os.path.isdir(jobs):
            for j in os.listdir(jobs):
                pid = self.worker_pid(j)
                if pid:
                    pids.append(pid)
                    try:
                        os.kill(pid, signal.SIGTERM)   # cancel: the worker cleans up its sandbox
                    except ProcessLookupError:
                        pass
        known = {p.pid for p in self.procs.children}

        def gone():
            reap_orphans(known)
            return all(not os.path.exists(f"/proc/{p}") for p in pids)
        try:
            procs.wait_for(gone, timeout=15, what="node workers to exit")
        finally:
            self.procs.stop_all()
            if getattr(self, "_drain", None):
                self._drain.wait(5)
                self.sshd_log.close()
            if getattr(self, "activate_log", None):
                self.activate_log.close()
            from . import rootfs
            rootfs.unmount_all_under(self.runtime)
            self.tmp.cleanup()


def client_key(dir_):
    key = os.path.join(dir_, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    return key


def remove_cgroup(path):
    """rmdir of a cgroup tree, deepest first (nspawn leaves payload/ and supervisor/ in it)."""
    if not os.path.isdir(path):
        return
    for root, dirs, _ in os.walk(path, topdown=False):
        for d in dirs:
            try:
                os.rmdir(os.path.join(root, d))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


class SystemdNode(SSHNode):
    """A node booted with systemd (facts/ssh-nodes.md §2): a small root directory (/usr bound
    read-only from the host, a copy of /etc made after the account exists, a fresh machine-id,
    only our units enabled), booted with systemd-nspawn on the host network in a cgroup of its
    own, pure cgroup2 inside. The real gateway-worker.socket and gateway-worker@.service from a
    meson install (DESTDIR/usr/local bound over /usr/local, where the units' ExecStart points),
    sshd as a unit with the forced command, loop device nodes made by a oneshot. Jobs run as
    transient units gateway-job-<id>."""

    def __init__(self, name, client_key, destdir):
        super().__init__(name, client_key)
        self.destdir = destdir
        self.root = os.path.join(self.dir, "root")
        self.images = "/var/lib/gateway-worker/images"          # inside the container
        self.state = os.path.join(self.root, "var/lib/gateway-worker")   # seen from the host
        self.cgroup = f"test-node-{os.getpid()}-{name}"
        self.proc = None
        self.leader = None

    def job_dir(self, job):
        return os.path.join(self.state, "jobs", job)

    def _start(self):
        uid, gid = ensure_account()
        r = self.root
        for d in ("usr/lib", "proc", "sys", "dev", "run", "tmp", "var/lib", "root", "home", "mnt"):
            os.makedirs(os.path.join(r, d), exist_ok=True)
        os.chmod(os.path.join(r, "tmp"), 0o1777)
        for l in ("bin", "sbin", "lib", "lib64"):
            os.symlink(f"usr/{l}", os.path.join(r, l))
        shutil.copy("/usr/lib/os-release", os.path.join(r, "usr/lib/os-release"))
        subprocess.run(["cp", "-a", "/etc", os.path.join(r, "etc")], check=True)
        etc = os.path.join(r, "etc")
        with open(os.path.join(etc, "machine-id"), "w") as f:
            f.write(subprocess.run(["systemd-id128", "new"], check=True, capture_output=True, text=True).stdout)
        # The node socket's group, with the account in it (the package's sysusers.d entry would
        # make the group; here in the copy only, the host's /etc stays as it is).
        with open(os.path.join(etc, "group")) as f:
            groups = f.read()
        if "\ngateway-worker:" not in "\n" + groups:
            used = {int(l.split(":")[2]) for l in groups.splitlines() if l.count(":") >= 3}
            g = next(i for i in range(990, 100, -1) if i not in used)
            with open(os.path.join(etc, "group"), "a") as f:
                f.write(f"gateway-worker:x:{g}:{ACCOUNT}\n")

        # Our units only.
        units = os.path.join(etc, "systemd", "system")
        shutil.rmtree(units)
        os.makedirs(os.path.join(units, "sockets.target.wants"))
        os.makedirs(os.path.join(units, "multi-user.target.wants"))
        unit_src = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
                                  capture_output=True, text=True).stdout.strip() or "/lib/systemd/system"
        for u in ("gateway-worker.socket", "gateway-worker@.service"):
            shutil.copy(os.path.join(self.destdir, unit_src.lstrip("/"), u), units)
        os.symlink("../gateway-worker.socket", os.path.join(units, "sockets.target.wants", "gateway-worker.socket"))

        sshd_dir = os.path.join(self.dir, "sshd")
        os.makedirs(sshd_dir)
        host_key = os.path.join(sshd_dir, "host_ed25519_key")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
        with open(self.client_key + ".pub") as f:
            pub = f.read().strip()
        with open(os.path.join(sshd_dir, "authorized_keys"), "w") as f:
            f.write(f'restrict,command="/usr/local/libexec/gateway-worker connect --image-dir {self.images}" {pub}\n')
        self.port = free_port()
        with open(host_key + ".pub") as f:
            host_pub = " ".join(f.read().split()[:2])
        self.known_hosts = os.path.join(self.dir, "known_hosts")
        with open(self.known_hosts, "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {host_pub}\n")
        config = os.path.join(sshd_dir, "sshd_config")
        with open(config, "w") as f:
            f.write(f"""ListenAddress 127.0.0.1
Port {self.port}
HostKey {host_key}
PidFile none
AuthorizedKeysFile {sshd_dir}/authorized_keys
AllowUsers {ACCOUNT}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp /usr/lib/openssh/sftp-server
""")
        with open(os.path.join(units, "gwnode-sshd.service"), "w") as f:
            f.write(f"""[Unit]
Description=sshd of test node {self.name}
[Service]
Type=notify
RuntimeDirectory=sshd
ExecStart=/usr/sbin/sshd -D -e -f {config}
""")
        with open(os.path.join(units, "gwnode-loop.service"), "w") as f:
            f.write("""[Unit]
Description=loop device nodes for squashfs mounts
DefaultDependencies=no
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mknod -m 0660 /dev/loop-control c 10 237; i=0; while [ $i -lt 256 ]; do mknod -m 0660 /dev/loop$i b 7 $i; i=$((i+1)); done; true'
""")
        for u in ("gwnode-sshd.service", "gwnode-loop.service"):
            os.symlink(f"../{u}", os.path.join(units, "multi-user.target.wants", u))
        os.makedirs(os.path.join(r, "var/lib/gateway-worker/images"))
        os.chown(os.path.join(r, "var/lib/gateway-worker/images"), uid, gid)

        for h in ("unified", "systemd"):
            os.makedirs(f"/sys/fs/cgroup/{h}/{self.cgroup}", exist_ok=True)
        self.console_path = os.path.join(self.dir, "console.log")
        self.console = open(self.console_path, "wb")
        argv = ["systemd-nspawn", "-D", r, "--bind-ro=/usr",
                f"--bind-ro={os.path.join(self.destdir, 'usr/local')}:/usr/local",
                f"--bind={self.dir}", f"-M", f"gwt{os.getpid()}-{self.name}", "--register=no",
                "--keep-unit", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
                # nspawn's own seccomp filter refuses keyrings; the job runner gives every
                # job a fresh session keyring (a real node has no such filter).
                "--system-call-filter=add_key keyctl request_key",
                # On the host's network nspawn drops CAP_NET_ADMIN; bwrap needs it to bring up
                # lo in a job's own network namespace (and serve's PrivateNetwork= too).
                "--capability=CAP_NET_ADMIN",
                "--console=read-only", "-b"]
        script = (f'echo $$ > /sys/fs/cgroup/unified/{self.cgroup}/cgroup.procs && '
                  f'echo $$ > /sys/fs/cgroup/systemd/{self.cgroup}/cgroup.procs && exec "$@"')
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBUS_")}
        env["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = "1"
        self.proc = self.procs.start(["sh", "-c", script, "sh"] + argv, stdout=self.console,
                                     stderr=subprocess.STDOUT, env=env)
        procs.wait_for(self._find_leader, timeout=30, what="container init")

        def sshd_up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited:\n{self.log()}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        procs.wait_for(sshd_up, timeout=60, what=f"sshd in node {self.name}")
        # The socket unit is up once sockets.target is reached, before sshd.
        self.wait_socket()

    def wait_socket(self):
        procs.wait_for(lambda: self.run(["systemctl", "is-active", "gateway-worker.socket"], check=False)
                       .stdout.strip() == "active", timeout=30, what="gateway-worker.socket")

    def _find_leader(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"systemd-nspawn exited ({self.proc.returncode}):\n{self.log()}")
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        for k in kids:
            try:
                with open(f"/proc/{k}/comm") as f:
                    if f.read().strip() == "systemd":
                        self.leader = int(k)
                        return self.leader
            except OSError:
                pass
        return None

    def run(self, argv, check=True, timeout=30):
        p = subprocess.run(["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-n", "-p", "-C", "--wd=/", "--"]
                           + list(argv), capture_output=True, text=True, timeout=timeout,
                           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"})
        if check and p.returncode != 0:
            raise AssertionError(f"{argv} failed in node {self.name}: {p.stdout}\n{p.stderr}")
        return p

    def log(self):
        try:
            with open(self.console_path, errors="replace") as f:
                return f.read()[-6000:]
        except (OSError, AttributeError):
            return ""

    def stop(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self.procs.stop_all()
            if getattr(self, "console", None):
                self.console.close()
            for h in ("unified", "systemd"):
                remove_cgroup(f"/sys/fs/cgroup/{h}/{self.cgroup}")
            self.tmp.cleanup()
