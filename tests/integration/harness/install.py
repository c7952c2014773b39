"""meson install of the build under test into a temporary DESTDIR."""
import os
import shutil
import subprocess
import tempfile

from . import procs


class Destdir:
    def __init__(self, build_dir=None):
        self.build_dir = build_dir or procs.build_dir()
        self.path = tempfile.mkdtemp(prefix="gatewayd-destdir-")
        os.chmod(self.path, 0o755)
        p = subprocess.run(["meson", "install", "-C", self.build_dir, "--no-rebuild", "--quiet",
                            "--destdir", self.path], capture_output=True, text=True)
        if p.returncode != 0:
            self.cleanup()
            raise AssertionError(f"meson install failed:\n{p.stdout}\n{p.stderr}")
        self.files = set()
        for root, _, files in os.walk(self.path):
            for f in files:
                self.files.add(os.path.relpath(os.path.join(root, f), self.path))

    def find(self, suffix):
        """The one installed file (path relative to DESTDIR) whose path ends with SUFFIX."""
        hits = [f for f in self.files if f.endswith(suffix)]
        if len(hits) != 1:
            raise AssertionError(f"{suffix} installed {len(hits)} times: {sorted(self.files)}")
        return hits[0]

    def abspath(self, rel):
        return os.path.join(self.path, rel.lstrip("/"))

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)
