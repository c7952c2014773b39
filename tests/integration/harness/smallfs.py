"""A small tmpfs to run out of space on: SmallFs(size).path is mounted (size as mount(8) takes it,
e.g. "8m"); fill() takes all space but `leave` bytes with a filler file, unfill() gives it back,
cleanup() unmounts (lazily if a process still holds it) and removes the mount point."""
import errno
import os
import subprocess

from . import procs


class SmallFs:
    def __init__(self, size, prefix="gatewayd-smallfs-"):
        self.tmp = procs.TempDir(prefix=prefix)
        self.path = os.path.join(self.tmp.path, "fs")
        os.mkdir(self.path)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", self.path], check=True)
        self.fillers = []

    def free_bytes(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def fill(self, leave=0):
        """Writes a filler file until only `leave` bytes (rounded to pages) are free, or none."""
        name = os.path.join(self.path, f"filler{len(self.fillers)}")
        self.fillers.append(name)
        chunk = b"\0" * 65536
        with open(name, "wb") as f:
            try:
                while True:
                    want = self.free_bytes() - leave
                    if want <= 0:
                        break
                    f.write(chunk[:min(len(chunk), want)])
                    f.flush()
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
        return name

    def unfill(self):
        for name in self.fillers:
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
        self.fillers = []

    def cleanup(self):
        if os.path.ismount(self.path):
            if subprocess.run(["umount", self.path]).returncode != 0:
                subprocess.run(["umount", "-l", self.path])
        self.tmp.cleanup()
