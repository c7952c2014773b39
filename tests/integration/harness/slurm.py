"""A one-node Slurm cluster (Debian 12's Slurm 22.05) under one temporary directory: a private
munged with its own key and socket, slurmctld, slurmd and slurmrestd with rest_auth/jwt only,
on ports picked by bind(0). Recipe and pitfalls: ../shared/facts/slurm.md. Ready in about 2 s;
stop() ends every process it started, the job step daemons included, and removes the directory.

    cluster = SlurmCluster()          # starts it; use once per test class/module
    cluster.rest("POST", "/slurm/v0.0.38/job/submit", body, user="gwtest-user")
    cluster.token("gwtest-user")      # an HS256 JWT signed with the cluster's jwt key
    cluster.stop()

slurmrestd listens on a unix socket (cluster.rest_socket, reachable by root and nobody only)
and on 127.0.0.1:cluster.rest_port."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from . import procs

SBIN = "/usr/sbin"


def available():
    """Whether the Slurm and munge binaries are installed (scripts/install-deps)."""
    return all(os.access(os.path.join(SBIN, b), os.X_OK)
               for b in ("munged", "slurmctld", "slurmd", "slurmrestd"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint_jwt(key, user, lifetime=600, now=None, alg="HS256"):
    """An HS256 JWT as Slurm's auth/jwt accepts it: claims sun, iat, exp."""
    now = int(time.time()) if now is None else now
    header = _b64url(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    claims = _b64url(json.dumps({"exp": now + lifetime, "iat": now, "sun": user},
                                separators=(",", ":")).encode())
    signing_input = f"{header}.{claims}".encode()
    sig = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64url(sig)}"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class SlurmCluster:
    def __init__(self, extra_conf=(), start=True):
        self.dir = tempfile.mkdtemp(prefix="gwslurm-")
        # Job users must traverse it to reach jobs/ (facts/slurm.md).
        os.chmod(self.dir, 0o711)
        self.node = socket.gethostname()
        self.extra_conf = list(extra_conf)
        self.procs = procs.Processes()
        self.munged = self.slurmctld = self.slurmd = self.slurmrestd = None
        self.jwt_key = None
        self._set_paths()
        if start:
            self._start_with_retries()

    def _set_paths(self):
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.munge_socket = os.path.join(self.dir, "munge.sock")
        self.jwt_key_path = os.path.join(self.dir, "jwt.key")
        self.rest_socket = os.path.join(self.dir, "rest", "slurmrestd.sock")
        self.jobs_dir = os.path.join(self.dir, "jobs")
        self.env = dict(os.environ, SLURM_CONF=self.conf)

    def _start_with_retries(self, attempts=3):
        """Ports come from bind(0) and are released before the daemons bind them, so another
        process (the other suite runs in parallel) can take one first: a daemon that dies while
        the cluster starts is retried with fresh ports and a fresh directory, and the last
        failure is raised with the daemons' log tails."""
        for attempt in range(attempts):
            try:
                self.start()
                return
            except RuntimeError as e:
                failure = e
            except BaseException:
                self.stop()
                raise
            self.stop()
            if attempt + 1 < attempts:
                print(f"slurm harness: start failed, retrying: {failure}", file=sys.stderr)
                self.dir = tempfile.mkdtemp(prefix="gwslurm-")
                os.chmod(self.dir, 0o711)
                self._set_paths()
        raise failure

    # --- start and stop -------------------------------------------------------------------

    def _log(self, name):
        return open(os.path.join(self.dir, name), "ab")

    def _write_conf(self):
        self.port_ctld, self.port_d, self.rest_port = _free_port(), _free_port(), _free_port()
        with open("/proc/meminfo") as f:
            mem_mb = int(f.readline().split()[1]) // 1024
        d = self.dir
        lines = [
            "ClusterName=gwtest", f"SlurmctldHost={self.node}",
            f"SlurmctldPort={self.port_ctld}", f"SlurmdPort={self.port_d}",
            "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={self.munge_socket}",
            "AuthAltTypes=auth/jwt", f"AuthAltParameters=jwt_key={self.jwt_key_path}",
            f"StateSaveLocation={d}/ctld", f"SlurmdSpoolDir={d}/spool",
            f"SlurmctldPidFile={d}/slurmctld.pid", f"SlurmdPidFile={d}/slurmd.pid",
            f"SlurmctldLogFile={d}/slurmctld.log", f"SlurmdLogFile={d}/slurmd.log",
            f"PlugStackConfig={d}/plugstack.conf",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none", "MailProg=/bin/true",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "SchedulerParameters=batch_sched_delay=0", "ReturnToService=2",
            "SlurmdParameters=config_overrides",
            f"NodeName={self.node} CPUs=8 RealMemory={mem_mb} State=UNKNOWN",
            f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
        ] + self.extra_conf
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        open(os.path.join(d, "plugstack.conf"), "w").close()

    def start(self):
        d = self.dir
        for sub in ("ctld", "spool"):
            os.makedirs(os.path.join(d, sub), mode=0o700)
        os.makedirs(self.jobs_dir)
        os.chmod(self.jobs_dir, 0o1777)
        rest_dir = os.path.dirname(self.rest_socket)
        os.makedirs(rest_dir, mode=0o700)
        os.chown(rest_dir, 65534, 65534)
        for path, size in ((os.path.join(d, "munge.key"), 128), (self.jwt_key_path, 32)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, os.urandom(size))
            os.close(fd)
        with open(self.jwt_key_path, "rb") as f:
            self.jwt_key = f.read()
        self._write_conf()

        self.munged = self.procs.start(
            [f"{SBIN}/munged", "-F", f"--socket={self.munge_socket}", f"--key-file={d}/munge.key",
             f"--pid-file={d}/munged.pid", f"--seed-file={d}/munged.seed", f"--log-file={d}/munged.log"],
            stdout=subprocess.DEVNULL, stderr=self._log("munged.stderr"))
        procs.wait_for(lambda: os.path.exists(self.munge_socket) or self._died(self.munged, "munged"),
                       timeout=10, what="munged's socket")
        self.start_slurmctld()
        self.start_slurmd()
        self.wait_node_idle()
        self.start_slurmrestd()

    def _died(self, p, name):
        if p.poll() is not None:
            raise RuntimeError(f"{name} exited with {p.returncode}:\n{self.logs()}")
        return False

    def start_slurmctld(self):
        self.slurmctld = self.procs.start([f"{SBIN}/slurmctld", "-D", "-i"], env=self.env,
                                          stdout=subprocess.DEVNULL, stderr=self._log("slurmctld.stderr"))

    def start_slurmd(self):
        self.slurmd = self.procs.start([f"{SBIN}/slurmd", "-D"], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=self._log("slurmd.stderr"))

    def node_state(self):
        p = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=self.env, capture_output=True, text=True,
                           timeout=10)
        return p.stdout.strip() if p.returncode == 0 else None

    def wait_node_idle(self, timeout=20):
        def idle():
            self._died(self.slurmctld, "slurmctld")
            self._died(self.slurmd, "slurmd")
            return self.node_state() == "idle"
        procs.wait_for(idle, timeout=timeout, what="the Slurm node to become idle")

    def start_slurmrestd(self, wait=True):
        # SLURM_JWT=daemon: without it every JWT request is refused; rest_auth/jwt only, or
        # rest_auth/local wins on the unix socket (facts/slurm.md §2).
        env = dict(self.env, SLURM_JWT="daemon")
        self.slurmrestd = self.procs.start(
            [f"{SBIN}/slurmrestd", "-a", "rest_auth/jwt",
             "-s", "openapi/v0.0.38,openapi/v0.0.37,openapi/v0.0.36", "-u", "65534", "-g", "65534",
             f"unix:{self.rest_socket}", f"127.0.0.1:{self.rest_port}"],
            env=env, stdout=subprocess.DEVNULL, stderr=self._log("slurmrestd.stderr"))
        if wait:
            def pinged():
                self._died(self.slurmrestd, "slurmrestd")
                try:
                    status, _ = self.rest("GET", "/slurm/v0.0.38/ping", user="root", timeout=2)
                except OSError:
                    return False
                return status == 200
            procs.wait_for(pinged, timeout=15, what="slurmrestd to answer ping")

    def stop_slurmrestd(self):
        if self.slurmrestd:
            self.procs.stop(self.slurmrestd)
            self.slurmrestd = None

    def _pids_with_fds_in_dir(self):
        """slurmstepd processes detach from slurmd; they are found by their open files in our
        directory (facts/slurm.md §3)."""
        found = []
        prefix = self.dir + "/"
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    try:
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    except OSError:
                        continue
                    if target.startswith(prefix):
                        found.append(int(pid))
                        break
            except OSError:
                pass
        return found

    def stop(self):
        """Stops everything (job steps too) and removes the directory."""
        self.procs.stop_all()
        self.munged = self.slurmctld = self.slurmd = self.slurmrestd = None
        for _ in range(50):
            pids = self._pids_with_fds_in_dir()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- clients --------------------------------------------------------------------------

    def token(self, user, lifetime=600, now=None):
        return mint_jwt(self.jwt_key, user, lifetime, now)

    def rest(self, method, path, body=None, user="root", token=None, via="unix", timeout=10):
        """One request to slurmrestd as USER (a JWT minted for USER unless TOKEN is given).
        Returns (status, parsed JSON or the raw text)."""
        if via == "unix":
            conn = _UnixHTTPConnection(self.rest_socket, timeout=timeout)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=timeout)
        headers = {"X-SLURM-USER-NAME": user,
                   "X-SLURM-USER-TOKEN": token if token is not None else self.token(user)}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read()
        finally:
            conn.close()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, raw.decode(errors="replace")

    def job(self, job_id, user="root"):
        status, answer = self.rest("GET", f"/slurm/v0.0.38/job/{job_id}", user=user)
        if status != 200 or not answer.get("jobs"):
            return None
        return answer["jobs"][0]

    def wait_job_state(self, job_id, states, timeout=30):
        """Polls the job (Slurm has no event to wait on) until its state is one of STATES."""
        def reached():
            j = self.job(job_id)
            return j if j and j["job_state"] in states else None
        return procs.wait_for(reached, timeout=timeout, what=f"job {job_id} to reach {states}")

    def logs(self):
        out = []
        for name in ("slurmctld.log", "slurmd.log", "slurmd.stderr", "slurmctld.stderr",
                     "slurmrestd.stderr", "munged.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append(f"--- {name}\n" + f.read()[-4000:])
            except OSError:
                pass
        return "\n".join(out)
