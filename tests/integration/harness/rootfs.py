"""Test images without a registry: a root file system from Debian's busybox-static plus small
static C programs (tests/integration/payloads/*.c, built with gcc -static), packed with
mksquashfs. Built once per test process and cached."""
import os
import shutil
import subprocess
import tempfile

from . import procs

BUSYBOX = "/bin/busybox"
PAYLOADS = os.path.join(procs.source_dir(), "tests", "integration", "payloads")

_cache = {}


def _build_payloads(dest):
    os.makedirs(dest, exist_ok=True)
    for name in sorted(os.listdir(PAYLOADS)):
        if name.endswith(".c"):
            subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(dest, name[:-2]),
                            os.path.join(PAYLOADS, name)], check=True)


def make_rootfs(root, extra_dirs=("app", "var/lib", "etc")):
    """Fills directory root with busybox (every applet a relative symlink), the payloads in
    /usr/local/bin, and a few standard directories."""
    for d in ("bin", "usr/local/bin", "proc", "dev", "tmp", "var") + tuple(extra_dirs):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(root, "bin", a))
    os.symlink("bin", os.path.join(root, "sbin"))
    _build_payloads(os.path.join(root, "usr", "local", "bin"))
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")


def make_squashfs(root, dest):
    subprocess.run(["mksquashfs", root, dest, "-noappend", "-quiet", "-no-progress", "-comp", "lz4"],
                   check=True, stdout=subprocess.DEVNULL)
    return dest


def busybox_image(workdir=None):
    """Path of a squashfs with busybox and the payloads (cached per process). workdir: where to
    keep it; defaults to a process-wide temp dir removed at exit."""
    if "busybox" in _cache and os.path.exists(_cache["busybox"]):
        return _cache["busybox"]
    if workdir is None:
        workdir = tempfile.mkdtemp(prefix="gatewayd-rootfs-")
        import atexit
        atexit.register(shutil.rmtree, workdir, True)
    root = os.path.join(workdir, "rootfs")
    make_rootfs(root)
    _cache["busybox"] = make_squashfs(root, os.path.join(workdir, "busybox.squashfs"))
    return _cache["busybox"]


def image_mounts(runtime_dir):
    """{squashfs path: mount id} of the workers' image mounts (gateway-worker run's
    RUNTIME/worker/images/ENTRY/{source,root}), as this process's mount namespace sees them."""
    images_dir = os.path.join(runtime_dir, "worker", "images")
    ids = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            ids[fields[4]] = fields[0]
    found = {}
    for entry in (os.listdir(images_dir) if os.path.isdir(images_dir) else []):
        try:
            with open(os.path.join(images_dir, entry, "source")) as f:
                source = f.read()
        except FileNotFoundError:
            continue
        root = os.path.realpath(os.path.join(images_dir, entry, "root"))
        if root in ids:
            found[source] = ids[root]
    return found


def mounts_under(path):
    """Mount points at or below path (from /proc/self/mountinfo)."""
    path = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return found


def unmount_all_under(path):
    """Unmounts everything below path, deepest first; returns what was mounted."""
    found = mounts_under(path)
    for mp in sorted(found, key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], check=False)
    return found
