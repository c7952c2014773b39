"""A private munged (its own key and socket) and credentials made with the real munge CLI, as
test users (runuser), so that the credential's uid is theirs. harness/slurm.py starts its own
munged for Slurm; this one is for gatewayd's munge identities (test_munge)."""
import os
import socket
import subprocess

from . import procs, users

SBIN = "/usr/sbin"


def available():
    return all(os.access(p, os.X_OK) for p in (f"{SBIN}/munged", "/usr/bin/munge", "/usr/bin/unmunge"))


class Munged:
    """munged in DIR (0755, as munged demands for the socket's parents) with a fresh 1024-bit
    key; socket DIR/munge.sock."""

    def __init__(self, processes, dir):
        self.procs = processes
        self.dir = dir
        self.socket = os.path.join(dir, "munge.sock")
        self.key = os.path.join(dir, "munge.key")
        self.process = None

    def start(self):
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        os.chmod(self.dir, 0o755)
        if not os.path.exists(self.key):
            fd = os.open(self.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, os.urandom(128))
            os.close(fd)
        self.log = open(os.path.join(self.dir, "munged.stderr"), "ab")
        self.process = self.procs.start(
            [f"{SBIN}/munged", "-F", f"--socket={self.socket}", f"--key-file={self.key}",
             f"--pid-file={self.dir}/munged.pid", f"--seed-file={self.dir}/munged.seed"],
            stdout=subprocess.DEVNULL, stderr=self.log)
        procs.wait_for(lambda: os.path.exists(self.socket) or self._died(), timeout=10, what="munged's socket")
        return self

    def _died(self):
        if self.process.poll() is not None:
            with open(os.path.join(self.dir, "munged.stderr")) as f:
                raise RuntimeError(f"munged exited with {self.process.returncode}: {f.read()[-2000:]}")
        return False

    def stop(self):
        if self.process is not None:
            self.procs.stop(self.process)
            self.process = None
            self.log.close()
        for f in (self.socket, self.socket + ".lock"):
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass

    def encode(self, user=users.USER, payload=b"", ttl=None):
        """A credential made by `munge` running as USER (root: None)."""
        argv = ["munge", f"--socket={self.socket}"]
        if ttl is not None:
            argv.append(f"--ttl={ttl}")
        if not payload:
            argv.append("--no-input")
        p = subprocess.run(users.as_user_argv(user, argv), input=payload, capture_output=True, timeout=20)
        if p.returncode != 0:
            raise RuntimeError(f"munge failed: {p.stderr.decode()}")
        return p.stdout.decode().strip()

    def status(self, cred):
        """unmunge's verdict on a credential (consumes it: munged remembers it as used)."""
        p = subprocess.run(["unmunge", f"--socket={self.socket}"], input=cred.encode(), capture_output=True,
                           timeout=20)
        return p.returncode


class HungMunged:
    """A socket that accepts connections and never answers: a munged that hangs."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.sock.listen(128)

    def close(self):
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
