"""systemd as PID 1 for tests of the installed units: the host's OS booted in a throw-away
systemd-nspawn container (--volatile=yes: /usr read-only from the host, everything else a fresh
tmpfs), with files bind-mounted in. Commands run inside with nsenter. The container is powered
off and waited for at stop()."""
import os
import shutil
import signal
import subprocess
import tempfile

from . import procs

# Units of the host that must not start in the container (they bind ports or need a real host).
MASK = ("docker-registry.service", "ssh.service", "ssh.socket", "nftables.service",
        "systemd-networkd.service", "systemd-resolved.service", "slurmctld.service",
        "slurmd.service", "slurmrestd.service", "munge.service", "cron.service")


class OverlayRoot:
    """The host's root file system with a tmpfs overlay on top: a container booted from it can
    write everywhere (install packages into /usr, change the dpkg database) and the host sees
    none of it. Only the root file system is the lower layer, not the mounts below it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gatewayd-overlay-", dir="/var/tmp")
        self.root = os.path.join(self.dir, "root")
        self.upper = os.path.join(self.dir, "upper")
        os.makedirs(self.root)
        os.makedirs(self.upper)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "gatewayd-overlay", self.upper], check=True)
        try:
            for d in ("data", "work"):
                os.makedirs(os.path.join(self.upper, d))
            subprocess.run(["mount", "-t", "overlay", "gatewayd-overlay", "-o",
                            f"lowerdir=/,upperdir={self.upper}/data,workdir={self.upper}/work", self.root],
                           check=True)
        except BaseException:
            self.cleanup()
            raise

    def cleanup(self):
        for m in (self.root, self.upper):
            subprocess.run(["umount", "--lazy", m], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class Container:
    def __init__(self, binds=(), name=None, overlay=False, args=()):
        """BINDS: (host_path, container_path) pairs, bound read-only. Paths inside /usr must
        exist on the host already (the container's /usr is the host's, read-only). With OVERLAY,
        the container boots from an OverlayRoot instead: everything is writable, /usr too.
        ARGS: further systemd-nspawn options."""
        self.args = list(args)
        self.binds = list(binds)
        self.overlay = overlay
        self.overlay_root = None
        self.name = name or f"gwtest-{os.getpid()}"
        self.tmp = procs.TempDir(prefix="gatewayd-nspawn-")
        self.log_path = os.path.join(self.tmp.path, "console.log")
        self.procs = procs.Processes()
        self.proc = None
        self.leader = None

    def start(self, timeout=60):
        if self.overlay:
            self.overlay_root = OverlayRoot()
            argv = ["systemd-nspawn", "-D", self.overlay_root.root]
        else:
            argv = ["systemd-nspawn", "-D", "/", "--volatile=yes"]
        argv += ["--private-network",
                "--register=no", "--keep-unit", f"--machine={self.name}", "--console=pipe"]
        for src, dst in self.binds:
            argv.append(f"--bind-ro={src}:{dst}")
        argv += self.args
        argv += ["-b", "systemd.firstboot=off"] + [f"systemd.mask={u}" for u in MASK]
        self.log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBUS_")}
        try:
            self.proc = self.procs.start(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env)
            self.leader = procs.wait_for(self._find_leader, timeout=timeout, what="container init")
            # systemctl can only talk to PID 1 once it has set up its private socket; from then on
            # "is-system-running --wait" blocks until start-up has finished (an event).
            procs.wait_for(lambda: self.run(["systemctl", "is-system-running"], check=False).stdout.strip()
                           not in ("", "offline"), timeout=timeout, what="systemd in the container")
            p = self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=timeout)
            if p.stdout.strip() not in ("running", "degraded"):
                raise RuntimeError(f"container did not boot: {p.stdout} {p.stderr}\n{self.console()}")
        except BaseException:
            self.stop()
            raise
        return self

    def _find_leader(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"systemd-nspawn exited ({self.proc.returncode}):\n{self.console()}")
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        for k in kids:
            try:
                with open(f"/proc/{k}/comm") as f:
                    if f.read().strip() == "systemd":
                        return int(k)
            except OSError:
                pass
        return None

    def console(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def log_text(self):
        return self.console()

    def run(self, argv, user=None, check=True, timeout=60, input=None):
        """Runs ARGV inside the container (as USER if given) and returns the CompletedProcess."""
        if user:
            # No PAM configuration in the volatile /etc: setpriv instead of runuser.
            uid, gid = self.run(["id", "-u", user]).stdout.strip(), self.run(["id", "-g", user]).stdout.strip()
            argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"] + list(argv)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
        p = subprocess.run(["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-n", "-p", "-C",
                            "-r", "-w", "--"] + list(argv), capture_output=True, text=True,
                           timeout=timeout, env=env, input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed in the container ({p.returncode}):\n"
                                 f"{p.stdout}\n{p.stderr}")
        return p

    def journal(self, unit):
        return self.run(["journalctl", "--no-pager", "-o", "cat", "-u", unit], check=False).stdout

    def stop(self, timeout=30):
        """Powers the container off (SIGTERM to nspawn asks its init to shut down) and waits."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            self.procs.stop_all()
            if getattr(self, "log", None):
                self.log.close()
            self._console = self.console()
            self.tmp.cleanup()
            if self.overlay_root is not None:
                self.overlay_root.cleanup()
                self.overlay_root = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
