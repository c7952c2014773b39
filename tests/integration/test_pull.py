"""gateway-worker pull against a real docker-registry: images built from busybox-static, pushed over
HTTP, pulled, converted with mksquashfs and inspected with unsquashfs and loop mounts."""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import unittest

from harness import images, procs
from harness.images import Image, Layer
from harness.registry import Proxy, RedirectingFrontend, Registry, TestCA, TokenIssuer


def procs_free_port():
    from harness.registry import free_port
    return free_port()


def worker():
    return os.path.join(procs.build_dir(), "src", "worker", "gateway-worker")


def sample_rss(argv, peak, env=None):
    """Runs argv like subprocess.run, sampling /proc/PID/status VmRSS every few ms meanwhile."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak.append(0)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except (OSError, ValueError):
                pass
            stop.wait(0.002)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        stop.set()
        t.join()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def staged(events):
    """Whether the pull staged a tree (mksquashfs) rather than streaming into tar2sqfs."""
    logs = [e["message"] for e in events if e["event"] == "log"]
    return not any("streaming the layers into tar2sqfs" in m for m in logs) or \
        any("need the staged conversion" in m or "converting staged instead" in m for m in logs)


class PullTest(unittest.TestCase):
    def setUp(self):
        self.procs = procs.Processes()
        self.tmp = procs.TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.addCleanup(self.procs.stop_all)
        self.image_dir = os.path.join(self.tmp.path, "images")
        self.cache_dir = os.path.join(self.tmp.path, "cache")
        self.expand_dir = os.path.join(self.tmp.path, "expand")
        # The worker streams the layers into tar2sqfs; with --convert=staged (or for layers that
        # need it) it stages on a tmpfs while the image fits (default /dev/shm): a private one
        # here, so that what it leaves there can be checked. See pull()'s mode.
        self.memory_dir = os.path.join(self.tmp.path, "expand-mem")
        os.makedirs(self.memory_dir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=256m", "gw-test-mem", self.memory_dir],
                       check=True)
        self.addCleanup(subprocess.run, ["umount", self.memory_dir], check=True)
        self.registry = Registry(self.procs, self.tmp.path).start()

    # ---- helpers ----

    MODES = ("stream", "memory", "disk")

    def pull(self, ref, *args, ok=True, user=None, env=None, rss=None, mode="stream"):
        """rss: a list that gets the worker's peak VmRSS (KiB), sampled while it runs. mode:
        "stream" (the default path: layers merged into tar2sqfs), "memory" (staged on the test's
        tmpfs) or "disk" (staged in --expand-dir)."""
        extra = [] if mode == "stream" else ["--convert", "staged"]
        argv = [worker(), "pull", "--image-dir", self.image_dir, "--cache-dir", self.cache_dir,
                "--expand-dir", self.expand_dir, "--memory-expand-dir", "" if mode == "disk" else self.memory_dir,
                *extra, "--retries", "2", *args, ref]
        if user:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"] + argv
        if rss is None:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120,
                               env=env)
        else:
            p = sample_rss(argv, rss, env=env)
        events = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        # under -Db_sanitize=address,undefined a report must fail the test, failing pull or not
        self.assertNotIn("Sanitizer", p.stderr)
        self.assertNotIn("runtime error:", p.stderr)
        for e in events:
            self.assertIn("event", e)
            self.assertIn("time", e)
        if ok:
            self.assertEqual(p.returncode, 0, f"pull failed: {p.stderr}")
            done = [e for e in events if e["event"] == "done"]
            self.assertEqual(len(done), 1)
            return done[0], events, p
        self.assertNotEqual(p.returncode, 0)
        failure = [e for e in events if e["event"] == "status" and e["status"] == "FAILURE"]
        self.assertEqual(len(failure), 1, p.stdout)
        self.assertIn(failure[0]["message"], p.stderr)
        return failure[0]["message"], events, p

    def ref(self, repo, tag="latest", host=None):
        return f"{host or self.registry.host}/{repo}:{tag}"

    def tree(self, squashfs):
        """{path: (mode string, "uid/gid", symlink target or None)} from unsquashfs -lln."""
        out = subprocess.run(["unsquashfs", "-lln", squashfs], check=True, stdout=subprocess.PIPE,
                             text=True).stdout
        t = {}
        for line in out.splitlines():
            if not line or line[0] not in "-dlcbps":
                continue
            parts = line.split(None, 5)
            name = parts[5]
            target = None
            if parts[0].startswith("l"):
                name, _, target = name.partition(" -> ")
            rel = name[len("squashfs-root"):].lstrip("/") or "/"
            t[rel] = (parts[0], parts[1], target)
        return t

    def mount(self, squashfs):
        mnt = tempfile.mkdtemp(prefix="gw-mnt-", dir=self.tmp.path)
        subprocess.run(["mount", "-t", "squashfs", "-o", "loop,ro,nosuid,nodev", squashfs, mnt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-d", mnt], check=True)
        return mnt

    def assert_no_image(self):
        names = [n for n in os.listdir(self.image_dir) if not n.startswith(".cache")] \
            if os.path.isdir(self.image_dir) else []
        self.assertEqual([n for n in names if n.endswith(".squashfs") or n.endswith(".json") or ".tmp" in n], [])

    def assert_staging_clean(self):
        if os.path.isdir(self.expand_dir):
            self.assertEqual(os.listdir(self.expand_dir), [])
        for d in os.listdir(self.memory_dir):
            self.assertTrue(d.startswith("gateway-pull."), d)
            self.assertEqual(os.listdir(os.path.join(self.memory_dir, d)), [])

    def assert_cache_consistent(self):
        d = os.path.join(self.cache_dir, "blobs", "sha256")
        if not os.path.isdir(d):
            return
        for n in os.listdir(d):
            self.assertFalse(n.startswith(".tmp"), f"temp file left in cache: {n}")
            with open(os.path.join(d, n), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), n)

    def snapshot(self, root):
        s = {}
        for dirpath, dirnames, filenames in os.walk(root):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                s[p] = (st.st_mode, st.st_size, st.st_mtime_ns)
        return s

    # ---- cases ----

    def test_single_layer(self):
        img = images.busybox_image(labels={"org.example": "yes"}, workdir="/work", user="1000")
        digest, _ = images.push_image(self.registry, "busybox", "1.0", img)
        done, events, _ = self.pull(self.ref("busybox", "1.0"))

        self.assertEqual(done["digest"], digest)
        self.assertEqual(done["id"], digest[7:])
        self.assertEqual(done["squashfs"], os.path.join(self.image_dir, digest[7:] + ".squashfs"))
        self.assertEqual(done["size"], os.path.getsize(done["squashfs"]))
        statuses = [e["status"] for e in events if e["event"] == "status"]
        self.assertEqual(statuses, ["PULLING", "CONVERSION", "READY"])
        prog = [e for e in events if e["event"] == "progress"]
        self.assertEqual(prog[-1]["bytesDone"], prog[-1]["bytesTotal"])
        self.assertEqual(prog[-1]["layersApplied"], 1)
        self.assertEqual(prog[-1]["layersTotal"], 1)

        with open(done["meta"]) as f:
            meta = json.load(f)
        self.assertEqual(meta["digest"], digest)
        self.assertEqual(meta["entrypoint"], ["/bin/sh"])
        self.assertEqual(meta["cmd"], ["-c", "echo hi"])
        self.assertEqual(meta["workdir"], "/work")
        self.assertEqual(meta["user"], "1000")
        self.assertEqual(meta["labels"], {"org.example": "yes"})
        self.assertEqual(meta["os"], "linux")
        self.assertEqual(meta["architecture"], "amd64")
        self.assertTrue(meta["env"][0].startswith("PATH="))
        self.assertEqual(meta["reference"], self.ref("busybox", "1.0"))
        self.assertEqual(meta["size"], done["size"])

        t = self.tree(done["squashfs"])
        self.assertEqual(t["bin/busybox"][:2], ("-rwxr-xr-x", "0/0"))
        self.assertEqual(t["bin/sh"][2], "busybox")
        for mp in ("proc", "sys", "dev", "tmp", "var/input"):
            self.assertTrue(t[mp][0].startswith("d"), mp)
        self.assertEqual(t["tmp"][0], "drwxrwxrwt")

        mnt = self.mount(done["squashfs"])
        with open(os.path.join(mnt, "bin/busybox"), "rb") as a, open(images.BUSYBOX, "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assert_staging_clean()
        self.assert_cache_consistent()

        # a second pull finds the image in place
        done2, _, _ = self.pull(self.ref("busybox", "1.0"))
        self.assertTrue(done2["cached"])

    def test_stale_staging_is_removed(self):
        import fcntl
        images.push_image(self.registry, "stale", "latest", images.busybox_image())
        # on disk and in memory alike: a pull that stages in memory still cleans up the disk
        mem = os.path.join(self.memory_dir, "gateway-pull.0")
        os.makedirs(mem, mode=0o700)
        old = os.path.join(self.expand_dir, "gateway-pull-crashed")
        busy = os.path.join(self.expand_dir, "gateway-pull-running")
        young = os.path.join(self.expand_dir, "gateway-pull-young")
        mem_old = os.path.join(mem, "gateway-pull-crashed")
        for d in (old, busy, young, mem_old):
            os.makedirs(os.path.join(d, "rootfs", "etc"))
            with open(os.path.join(d, "rootfs", "etc", "f"), "w") as f:
                f.write("x")
        for d in (old, busy, mem_old):
            os.utime(d, (0, 0))
        lock = os.open(busy, os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, lock)
        fcntl.flock(lock, fcntl.LOCK_EX)
        _, events, _ = self.pull(self.ref("stale"), mode="memory")
        self.assertTrue(any("staging in memory" in e.get("message", "") for e in events))
        self.assertEqual(sorted(os.listdir(self.expand_dir)), ["gateway-pull-running", "gateway-pull-young"])
        self.assertEqual(os.listdir(mem), [])

    def test_multi_layer_compressions(self):
        l1 = Layer().busybox().dir("etc").file("etc/os-release", "ID=one\n").file("etc/keep", "keep\n")
        l2 = Layer().dir("etc").file("etc/os-release", "ID=two\n").dir("opt").file("opt/zstd", "z" * 100000)
        l3 = Layer().dir("opt").file("opt/plain", "plain\n").file("etc/os-release", "ID=three\n")
        l4 = Layer().dir("usr").file("usr/docker-style", "d\n")
        l5 = Layer().dir("multi").file("multi/member", "m" * 300000).file("multi/big", os.urandom(200000))
        img = Image([(l1, "gzip"), (l2, "zstd"), (l3, "none"), (l4, "gzip"), (l5, "gzip-multi")])
        images.push_image(self.registry, "multi", "latest", img)
        done, events, _ = self.pull(self.ref("multi"), "--jobs", "2")
        mnt = self.mount(done["squashfs"])
        with open(os.path.join(mnt, "etc/os-release")) as f:
            self.assertEqual(f.read(), "ID=three\n")
        with open(os.path.join(mnt, "etc/keep")) as f:
            self.assertEqual(f.read(), "keep\n")
        with open(os.path.join(mnt, "opt/zstd")) as f:
            self.assertEqual(f.read(), "z" * 100000)
        with open(os.path.join(mnt, "opt/plain")) as f:
            self.assertEqual(f.read(), "plain\n")
        with open(os.path.join(mnt, "multi/member")) as f:
            self.assertEqual(f.read(), "m" * 300000)
        self.assertEqual(os.path.getsize(os.path.join(mnt, "multi/big")), 200000)
        self.assertEqual([e for e in events if e["event"] == "progress"][-1]["layersApplied"], 5)

        # Docker schema 2 media types too
        img = Image([(Layer().busybox(), "gzip"), (l4, "gzip")], style="docker")
        digest, _ = images.push_image(self.registry, "dockerstyle", "v1", img)
        done, _, _ = self.pull(self.ref("dockerstyle", "v1"))
        self.assertEqual(done["digest"], digest)
        self.assertIn("usr/docker-style", self.tree(done["squashfs"]))

    def test_multi_arch_index(self):
        def plat(arch, variant=None):
            name = arch + ("/" + variant if variant else "")
            return Image([(Layer().busybox().file("platform", name + "\n"), "gzip")], arch=arch, variant=variant)
        imgs = [plat("arm", "v6"), plat("arm", "v7"), plat("amd64"), plat("arm64", "v8")]
        index, digests = images.push_index(self.registry, "multiarch", "latest", imgs)

        done, _, _ = self.pull(self.ref("multiarch"), "--platform", "linux/arm/v7")
        self.assertEqual(done["digest"], digests[1])
        self.assertEqual(done["indexDigest"], index)
        mnt = self.mount(done["squashfs"])
        with open(os.path.join(mnt, "platform")) as f:
            self.assertEqual(f.read(), "arm/v7\n")
        with open(done["meta"]) as f:
            meta = json.load(f)
        self.assertEqual((meta["architecture"], meta["variant"], meta["indexDigest"]), ("arm", "v7", index))

        done, _, _ = self.pull(self.ref("multiarch"), "--platform", "linux/arm/v6")
        self.assertEqual(done["digest"], digests[0])
        done, _, _ = self.pull(self.ref("multiarch"))  # the host: amd64
        self.assertEqual(done["digest"], digests[2])
        done, _, _ = self.pull(self.ref("multiarch"), "--platform", "linux/arm64")
        self.assertEqual(done["digest"], digests[3])

        msg, _, _ = self.pull(self.ref("multiarch"), "--platform", "linux/arm/v5", ok=False)
        self.assertIn("no manifest for platform linux/arm/v5", msg)

        # the same as a Docker manifest list
        index, digests = images.push_index(self.registry, "multiarch", "list", imgs, style="docker")
        done, _, _ = self.pull(self.ref("multiarch", "list"), "--platform", "linux/arm/v7")
        self.assertEqual(done["digest"], digests[1])

    def test_whiteouts_and_opaque_dirs(self):
        l1 = (Layer().dir("a").file("a/x", "x").file("a/y", "y").dir("a/sub").file("a/sub/z", "z")
              .dir("b").file("b/1", "1").file("b/2", "2").dir("b/d").file("b/d/deep", "d")
              .file("c", "c").dir("e").file("e/f", "f"))
        l2 = (Layer().dir("a").whiteout("a/x").whiteout("a/sub")
              .dir("b").opaque("b").file("b/3", "3")
              .whiteout("c").whiteout("e").file("new", "n")
              .whiteout("does/not/exist"))
        l3 = Layer().dir("e").file("e/again", "again")  # re-created after its whiteout
        images.push_image(self.registry, "wh", "latest", Image([(l1, "gzip"), (l2, "gzip"), (l3, "zstd")]))
        for mode in self.MODES:
            with self.subTest(mode=mode):
                done, _, _ = self.pull(self.ref("wh"), "--force", mode=mode)
                t = self.tree(done["squashfs"])
                got = sorted(p for p in t if p not in ("/", "proc", "sys", "dev", "tmp", "var", "var/input"))
                self.assertEqual(got, ["a", "a/y", "b", "b/3", "e", "e/again", "new"])
                self.assert_staging_clean()

    def test_hardlinks_setuid_owners_xattrs(self):
        l1 = (Layer().busybox().dir("usr").dir("usr/bin")
              .file("usr/bin/su", "#!suid\n", mode=0o4755)
              .file("usr/bin/wall", "#!sgid\n", mode=0o2755, gid=5)
              .hardlink("usr/bin/su-link", "usr/bin/su")
              .dir("home", mode=0o755).dir("home/user", mode=0o700, uid=1000, gid=1000)
              .file("home/user/notes", "mine\n", mode=0o600, uid=1000, gid=1000)
              .file("xattr-file", "x\n", xattrs={"user.gatewayd": "hello"})
              .fifo("fifo")
              .device("dev-null-copy"))
        # a hardlink in a later layer to a file of an earlier one
        l2 = Layer().dir("usr").dir("usr/bin").hardlink("usr/bin/su-link2", "usr/bin/su")
        images.push_image(self.registry, "perm", "latest", Image([(l1, "gzip"), (l2, "gzip")]))
        done, events, _ = self.pull(self.ref("perm"))
        t = self.tree(done["squashfs"])
        self.assertEqual(t["usr/bin/su"][:2], ("-rwsr-xr-x", "0/0"))
        self.assertEqual(t["usr/bin/su-link"][:2], ("-rwsr-xr-x", "0/0"))
        self.assertEqual(t["usr/bin/wall"][:2], ("-rwxr-sr-x", "0/5"))
        self.assertEqual(t["home/user"][:2], ("drwx------", "1000/1000"))
        self.assertEqual(t["home/user/notes"][:2], ("-rw-------", "1000/1000"))
        self.assertTrue(t["fifo"][0].startswith("p"))
        self.assertNotIn("dev-null-copy", t)
        self.assertTrue(any(e["event"] == "log" and "dropped 1" in e["message"] for e in events))

        mnt = self.mount(done["squashfs"])
        a = os.stat(os.path.join(mnt, "usr/bin/su"))
        self.assertEqual(a.st_ino, os.stat(os.path.join(mnt, "usr/bin/su-link")).st_ino)
        self.assertEqual(a.st_ino, os.stat(os.path.join(mnt, "usr/bin/su-link2")).st_ino)
        self.assertEqual(a.st_nlink, 3)
        self.assertEqual(os.getxattr(os.path.join(mnt, "xattr-file"), "user.gatewayd"), b"hello")

    def test_unprivileged_pull_keeps_owners(self):
        l1 = (Layer().busybox().dir("usr").dir("usr/bin").file("usr/bin/su", "s", mode=0o4755)
              .dir("secret", mode=0o500, uid=1000, gid=1000).file("secret/f", "f", mode=0o400, uid=1000, gid=1000)
              .file("with space \"q\"", "sp", mode=0o640, uid=3, gid=4))
        l2 = Layer().dir("secret", mode=0o500, uid=1000, gid=1000).file("secret/g", "g", mode=0o000, uid=7, gid=7)
        images.push_image(self.registry, "unpriv", "latest", Image([(l1, "gzip"), (l2, "gzip")]))
        for d in (self.image_dir, self.cache_dir, self.expand_dir):
            os.makedirs(d)
            os.chown(d, 65534, 65534)
        done, _, _ = self.pull(self.ref("unpriv"), user=65534)
        self.assertEqual(os.stat(done["squashfs"]).st_uid, 65534)
        t = self.tree(done["squashfs"])
        self.assertEqual(t["/"][:2], ("drwxr-xr-x", "0/0"))
        self.assertEqual(t["bin/busybox"][:2], ("-rwxr-xr-x", "0/0"))
        self.assertEqual(t["bin/sh"][1], "0/0")
        self.assertEqual(t["usr/bin/su"][:2], ("-rwsr-xr-x", "0/0"))
        self.assertEqual(t["secret"][:2], ("dr-x------", "1000/1000"))
        self.assertEqual(t["secret/f"][:2], ("-r--------", "1000/1000"))
        self.assertEqual(t["secret/g"][:2], ("----------", "7/7"))
        self.assertEqual(t['with space "q"'][:2], ("-rw-r-----", "3/4"))
        self.assertEqual(t["tmp"][:2], ("drwxrwxrwt", "0/0"))
        self.assert_staging_clean()

    def test_unprivileged_refuses_pseudo_file_injection(self):
        evil = 'x"\nbin/busybox m 6777 0 0\n"y'
        l1 = Layer().busybox().file(evil, "x")
        images.push_image(self.registry, "inject", "latest", Image([(l1, "gzip")]))
        for d in (self.image_dir, self.cache_dir, self.expand_dir):
            os.makedirs(d)
            os.chown(d, 65534, 65534)
        msg, _, _ = self.pull(self.ref("inject"), user=65534, ok=False, mode="disk")
        self.assertIn("file name with a line break", msg)
        self.assert_no_image()
        self.assert_staging_clean()
        # as root, or streaming (owners come from the tar headers), no pseudo file is involved and
        # the name is kept as it is
        for user in (None, 65534):
            with self.subTest(user=user):
                done, events, _ = self.pull(self.ref("inject"), "--force", user=user)
                self.assertFalse(staged(events))
                mnt = self.mount(done["squashfs"])
                self.assertTrue(os.path.exists(os.path.join(mnt, evil)))
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(mnt, "bin/busybox")).st_mode), 0o755)
                self.assertEqual(os.stat(os.path.join(mnt, "bin/busybox")).st_uid, 0)

    def test_htpasswd_auth(self):
        self.registry.stop()
        self.registry = Registry(self.procs, self.tmp.path, auth=("htpasswd", {"alice": "s3cret"})).start()
        digest, _ = images.push_image(self.registry, "private/app", "latest", images.busybox_image())

        msg, _, _ = self.pull(self.ref("private/app"), ok=False)
        self.assertIn("authentication required", msg)
        self.assertIn("private/app", msg)
        self.assert_no_image()

        creds = os.path.join(self.tmp.path, "creds.json")
        with open(creds, "w") as f:
            json.dump({"username": "alice", "password": "wrong"}, f)
        msg, _, _ = self.pull(self.ref("private/app"), "--credentials-file", creds, ok=False)
        self.assertIn("authentication failed", msg)

        with open(creds, "w") as f:
            json.dump({"username": "alice", "password": "s3cret"}, f)
        done, _, p = self.pull(self.ref("private/app"), "--credentials-file", creds)
        self.assertEqual(done["digest"], digest)
        self.assertNotIn("s3cret", p.stdout + p.stderr)

        msg, _, _ = self.pull(self.ref("private/app"), "--credentials-file", "/nonexistent.json", ok=False)
        self.assertIn("credentials file", msg.lower())

    def test_token_auth(self):
        issuer = TokenIssuer(self.tmp.path, users={"bob": "pw"})
        issuer.start()
        self.addCleanup(issuer.stop)
        self.registry.stop()
        self.registry = Registry(self.procs, self.tmp.path, auth=("token", issuer)).start()
        digest, _ = images.push_image(self.registry, "tok/app", "latest", images.busybox_image())

        msg, _, _ = self.pull(self.ref("tok/app"), ok=False)
        self.assertIn("authentication failed", msg)
        self.assertIn("requires credentials", msg)

        creds = os.path.join(self.tmp.path, "creds.json")
        with open(creds, "w") as f:
            json.dump({"username": "bob", "password": "pw"}, f)
        issuer.requests.clear()
        done, _, _ = self.pull(self.ref("tok/app"), "--credentials-file", creds)
        self.assertEqual(done["digest"], digest)
        self.assertTrue(issuer.requests)
        self.assertEqual(issuer.requests[0]["query"]["scope"], ["repository:tok/app:pull"])
        self.assertEqual(issuer.requests[0]["query"]["service"], [issuer.service])

        # anonymous tokens from an issuer without users
        issuer.users = None
        done, _, _ = self.pull(self.ref("tok/app"), "--force")
        self.assertEqual(done["digest"], digest)

    def test_corrupted_blob(self):
        img = Image([(Layer().busybox(), "gzip"), (Layer().file("second", "2" * 5000), "gzip")])
        _, blobs = images.push_image(self.registry, "corrupt", "latest", img)
        body, _, _ = img.build()
        layer = json.loads(body)["layers"][1]["digest"]
        path = self.registry.blob_path(layer)
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            data[len(data) // 2] ^= 0xFF
            f.seek(0)
            f.write(data)
        msg, _, _ = self.pull(self.ref("corrupt"), ok=False)
        self.assertIn("digest mismatch", msg)
        self.assertIn(layer, msg)
        self.assert_no_image()
        self.assertFalse(os.path.exists(os.path.join(self.cache_dir, "blobs", "sha256", layer[7:])))
        self.assert_cache_consistent()
        self.assert_staging_clean()

    def test_failure_stops_other_downloads(self):
        import time
        img = Image([(Layer().file("small", "s" * 1000), "gzip"), (Layer().file("big", os.urandom(12 * 1024 * 1024)), "none")])
        images.push_image(self.registry, "stop", "latest", img)
        small = json.loads(img.build()[0])["layers"][0]["digest"]
        with open(self.registry.blob_path(small), "r+b") as f:
            data = bytearray(f.read())
            data[-1] ^= 1
            f.seek(0)
            f.write(data)
        proxy = Proxy(self.registry.port, rate=1024 * 1024)  # the big layer alone would take 12 s
        self.addCleanup(proxy.stop)
        t = time.monotonic()
        msg, _, _ = self.pull(f"{proxy.host}/stop:latest", "--jobs", "2", ok=False)
        self.assertLess(time.monotonic() - t, 6)
        self.assertIn("digest mismatch", msg)
        self.assert_no_image()
        self.assert_cache_consistent()

    def test_corrupted_cache_blob(self):
        img = Image([(Layer().busybox(), "gzip")])
        images.push_image(self.registry, "cachecorrupt", "latest", img)
        done, _, _ = self.pull(self.ref("cachecorrupt"))
        layer = json.loads(img.build()[0])["layers"][0]["digest"]
        os.unlink(done["squashfs"])
        os.unlink(done["meta"])
        with open(os.path.join(self.cache_dir, "blobs", "sha256", layer[7:]), "r+b") as f:
            f.seek(100)
            f.write(b"\0garbage\0")
        msg, _, _ = self.pull(self.ref("cachecorrupt"), ok=False)
        self.assertIn("digest mismatch", msg)
        self.assert_no_image()

    def test_unknown_tag_and_repository(self):
        images.push_image(self.registry, "foo", "latest", images.busybox_image())
        msg, _, _ = self.pull(self.ref("foo", "nosuchtag"), ok=False)
        self.assertEqual(msg, f"manifest unknown: {self.registry.host}/foo:nosuchtag (HTTP 404)")
        msg, _, _ = self.pull(self.ref("nosuchrepo"), ok=False)
        self.assertIn("(HTTP 404)", msg)
        self.assertIn("nosuchrepo", msg)
        self.assert_no_image()

    def test_unreachable_registry(self):
        from harness.registry import free_port
        msg, _, _ = self.pull(f"127.0.0.1:{free_port()}/x:latest", "--retries", "1", ok=False)
        self.assertIn("Couldn't connect to server", msg)

    def test_registry_killed_mid_download(self):
        big = os.urandom(24 * 1024 * 1024)
        img = Image([(Layer().busybox(), "gzip"), (Layer().file("big", big), "none")])
        images.push_image(self.registry, "big", "latest", img)
        proxy = Proxy(self.registry.port, rate=4 * 1024 * 1024)
        self.addCleanup(proxy.stop)
        argv = [worker(), "pull", "--image-dir", self.image_dir, "--cache-dir", self.cache_dir,
                "--expand-dir", self.expand_dir, "--retries", "2", f"{proxy.host}/big:latest"]
        p = self.procs.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        events = []
        killed = False
        for line in p.stdout:
            e = json.loads(line)
            events.append(e)
            if not killed and e["event"] == "progress" and 0 < e["bytesDone"] < e["bytesTotal"] - 2000000:
                self.registry.kill()
                killed = True
        stderr = p.stderr.read()
        self.assertEqual(p.wait(), 1)
        self.assertNotIn("Sanitizer", stderr)
        self.assertTrue(killed)
        failure = [e for e in events if e["event"] == "status" and e["status"] == "FAILURE"]
        self.assertEqual(len(failure), 1)
        self.assertIn("Failed to fetch blob", failure[0]["message"])
        self.assertIn("/big@sha256:", failure[0]["message"])
        self.assertIn(failure[0]["message"], stderr)
        self.assert_no_image()
        self.assert_cache_consistent()
        self.assert_staging_clean()

    def test_sigterm_mid_download(self):
        import signal
        img = Image([(Layer().busybox(), "gzip"), (Layer().file("big", os.urandom(16 * 1024 * 1024)), "none")])
        images.push_image(self.registry, "term", "latest", img)
        proxy = Proxy(self.registry.port, rate=4 * 1024 * 1024)
        self.addCleanup(proxy.stop)
        argv = [worker(), "pull", "--image-dir", self.image_dir, "--cache-dir", self.cache_dir,
                "--expand-dir", self.expand_dir, f"{proxy.host}/term:latest"]
        p = self.procs.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        events = []
        for line in p.stdout:
            e = json.loads(line)
            events.append(e)
            if e["event"] == "progress" and e["bytesDone"] > 0 and len(events) < 1000 and p.poll() is None:
                if not any(x.get("sent") for x in events):
                    p.send_signal(signal.SIGTERM)
                    events.append({"event": "x", "sent": True})
        stderr = p.stderr.read()
        self.assertEqual(p.wait(), 1)
        failure = [e for e in events if e["event"] == "status" and e.get("status") == "FAILURE"]
        self.assertEqual(len(failure), 1, stderr)
        self.assertIn("interrupted by a signal", failure[0]["message"])
        self.assert_no_image()
        self.assert_staging_clean()
        self.assert_cache_consistent()

    def test_transient_503_is_retried(self):
        images.push_image(self.registry, "flaky", "latest", images.busybox_image())
        proxy = Proxy(self.registry.port, fail_first=2, retry_after=0)
        self.addCleanup(proxy.stop)
        done, _, _ = self.pull(f"{proxy.host}/flaky:latest")
        self.assertTrue(os.path.exists(done["squashfs"]))
        self.assertGreaterEqual(proxy.connections, 3)

        proxy2 = Proxy(self.registry.port, fail_first=100, retry_after=0)
        self.addCleanup(proxy2.stop)
        msg, _, _ = self.pull(f"{proxy2.host}/flaky:latest", "--retries", "1", ok=False)
        self.assertIn("(HTTP 503)", msg)

    def test_blob_redirect_does_not_leak_credentials(self):
        self.registry.stop()
        self.registry = Registry(self.procs, self.tmp.path, auth=("htpasswd", {"carol": "pw"})).start()
        digest, _ = images.push_image(self.registry, "redir", "latest", images.busybox_image())
        front = RedirectingFrontend(self.registry)
        self.addCleanup(front.stop)
        creds = os.path.join(self.tmp.path, "creds.json")
        with open(creds, "w") as f:
            json.dump({"username": "carol", "password": "pw"}, f)
        done, _, _ = self.pull(f"{front.host}/redir:latest", "--credentials-file", creds)
        self.assertEqual(done["digest"], digest)
        self.assertGreaterEqual(front.redirects, 2)  # config and layer
        self.assertEqual(len(front.storage_requests), front.redirects)
        for h in front.storage_requests:
            self.assertNotIn("authorization", {k.lower() for k in h})

    def test_allowed_registry_refuses_others_without_connecting(self):
        from test_images import CountingServer
        outside = CountingServer()
        self.addCleanup(outside.stop)
        images.push_image(self.registry, "allowed", "latest", images.busybox_image())
        allow = ["--allowed-registry", self.registry.host.upper(), "--allowed-registry", "registry-1.docker.io"]
        msg, _, _ = self.pull(f"{outside.host}/x/y:1", *allow, ok=False)
        self.assertIn(f"Registry {outside.host} is not an allowed location", msg)
        # Resolve-only too (the first step of every gatewayd pull).
        msg, _, _ = self.pull(f"{outside.host}/x/y:1", "--resolve-only", *allow, ok=False)
        self.assertIn("not an allowed location", msg)
        self.assertEqual(outside.connections, 0)
        done, _, _ = self.pull(self.ref("allowed"), *allow)
        self.assertTrue(done["digest"].startswith("sha256:"))

    def test_redirect_only_to_http(self):
        """A registry redirecting a blob to another scheme (file:, ftp:, gopher:, dict:) fails the
        pull; nothing is fetched from there."""
        import http.server
        import socket
        images.push_image(self.registry, "badredir", "latest", images.busybox_image())
        target = socket.socket()
        target.bind(("127.0.0.1", 0))
        target.listen(8)
        target.setblocking(False)
        self.addCleanup(target.close)
        tport = target.getsockname()[1]
        registry = self.registry
        state = {}

        class Front(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if "/blobs/sha256:" in self.path:
                    self.send_response(307)
                    self.send_header("Location", state["location"])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                req = urllib.request.Request(f"http://{registry.host}{self.path}",
                                             headers={"Accept": self.headers.get("Accept", "*/*")})
                with urllib.request.urlopen(req, timeout=30) as r:
                    body = r.read()
                    self.send_response(r.status)
                    for k in ("Content-Type", "Docker-Content-Digest"):
                        if r.headers.get(k):
                            self.send_header(k, r.headers[k])
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        import urllib.request
        front = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Front)
        threading.Thread(target=front.serve_forever, daemon=True).start()
        self.addCleanup(front.server_close)
        self.addCleanup(front.shutdown)
        host = f"127.0.0.1:{front.server_address[1]}"
        for location in (f"ftp://127.0.0.1:{tport}/blob", f"gopher://127.0.0.1:{tport}/", f"dict://127.0.0.1:{tport}/x",
                         "file:///etc/passwd", f"FTP://127.0.0.1:{tport}/blob"):
            state["location"] = location
            msg, _, _ = self.pull(f"{host}/badredir:latest", "--retries", "0", ok=False)
            self.assertIn("Bad redirect", msg, location)
        with self.assertRaises(BlockingIOError):
            target.accept()

    def test_insecure_registry_option(self):
        # "vm"/the host name resolves to 127.0.0.1 but is not a loopback name: https unless told
        import socket
        name = socket.gethostname()
        try:
            if socket.gethostbyname(name) != "127.0.0.1":
                self.skipTest("host name does not resolve to 127.0.0.1")
        except OSError:
            self.skipTest("host name does not resolve")
        images.push_image(self.registry, "insec", "latest", images.busybox_image())
        ref = f"{name}:{self.registry.port}/insec:latest"
        msg, _, _ = self.pull(ref, "--retries", "0", ok=False)
        self.assertIn(f"{name}:{self.registry.port}/insec", msg)
        done, _, _ = self.pull(ref, "--insecure-registry", f"{name}:{self.registry.port}")
        self.assertTrue(os.path.exists(done["squashfs"]))

    def proxy_trap(self):
        """An environment whose proxy is a server that counts connections: any connection the
        worker makes by a name instead of to 127.0.0.1 goes there (curl leaves the resolving of
        proxied names to the proxy), so 0 connections means the name was neither contacted nor
        looked up."""
        from test_images import CountingServer
        trap = CountingServer()
        self.addCleanup(trap.stop)
        env = dict(os.environ, http_proxy=f"http://{trap.host}", https_proxy=f"http://{trap.host}",
                   no_proxy="127.0.0.1,localhost")
        return trap, env

    def test_registry_url_option(self):
        """--registry-url: a registry reached under another name is fetched from the URL."""
        digest, _ = images.push_image(self.registry, "mirrored/app", "1", images.busybox_image())
        trap, env = self.proxy_trap()
        name = "mirror.gatewayd.invalid:5000"
        args = ["--allowed-registry", name, "--registry-url", f"{name.upper()}=http://{self.registry.host}/"]
        done, _, _ = self.pull(f"{name}/mirrored/app:1", *args, env=env)
        self.assertEqual(done["digest"], digest)
        self.assertEqual(done["reference"], f"{name}/mirrored/app:1")
        # another registry's URL does not apply
        msg, _, _ = self.pull(f"other.gatewayd.invalid/mirrored/app:1", "--retries", "0", *args[2:], env=env, ok=False)
        self.assertEqual(trap.connections, 1, msg)
        for bad in ("x", "=http://a", f"{name}=", f"{name}=ftp://127.0.0.1/", f"{name}=file:///etc"):
            msg, _, _ = self.pull(f"{name}/mirrored/app:1", "--registry-url", bad, ok=False)
            self.assertIn("Invalid --registry-url", msg)

    def test_registry_cacert_option(self):
        """--registry-cacert: TLS to a registry with a private CA; without it the pull fails with
        a TLS error that says why."""
        ca = TestCA(self.tmp.path)
        tls = Registry(self.procs, self.tmp.path, tls=ca, storage=self.registry.storage).start()
        digest, _ = images.push_image(tls, "tls/app", "1", images.busybox_image())
        url = ["--registry-url", f"{tls.host}=https://{tls.host}"]
        done, _, _ = self.pull(f"{tls.host}/tls/app:1", *url, "--registry-cacert", f"{tls.host}={ca.ca}")
        self.assertEqual(done["digest"], digest)
        msg, _, _ = self.pull(f"{tls.host}/tls/app:1", *url, "--force", ok=False)
        self.assertIn("TLS error", msg)
        self.assertIn("certificate", msg)
        self.assertIn(f"{tls.host}/tls/app:1", msg)
        # a CA that did not sign the registry's certificate
        msg, _, _ = self.pull(f"{tls.host}/tls/app:1", *url, "--force", "--registry-cacert",
                              f"{tls.host}={TestCA(os.path.join(self.tmp.path, 'other')).ca}", ok=False)
        self.assertIn("TLS error", msg)

    def test_registry_auth_none(self):
        """--registry-auth=none: no credentials go to the registry, no token service is asked."""
        issuer = TokenIssuer(self.tmp.path, users={"bob": "pw"})
        issuer.start()
        self.addCleanup(issuer.stop)
        basic = Registry(self.procs, os.path.join(self.tmp.path, "basic"), auth=("htpasswd", {"alice": "s3cret"}))
        os.makedirs(basic.tmpdir)
        basic.start()
        token = Registry(self.procs, os.path.join(self.tmp.path, "token-registry"), auth=("token", issuer))
        os.makedirs(token.tmpdir)
        token.start()
        images.push_image(basic, "private/app", "1", images.busybox_image())
        images.push_image(token, "private/app", "1", images.busybox_image())
        creds = os.path.join(self.tmp.path, "creds.json")
        for reg, user, pw in ((basic, "alice", "s3cret"), (token, "bob", "pw")):
            with self.subTest(reg.auth[0]):
                with open(creds, "w") as f:
                    json.dump({"username": user, "password": pw}, f)
                issuer.requests.clear()
                # The credentials are right: only not sending them makes the pull fail.
                msg, _, _ = self.pull(f"{reg.host}/private/app:1", "--credentials-file", creds,
                                      "--registry-auth", f"{reg.host}=none", ok=False)
                self.assertIn("authentication required", msg)
                self.assertIn('authentication "none"', msg)
                self.assertEqual(issuer.requests, [])
                # the control: with "http" (the default) the same pull works
                done, _, _ = self.pull(f"{reg.host}/private/app:1", "--credentials-file", creds,
                                       "--registry-auth", f"{reg.host}=http")
                self.assertTrue(done["digest"].startswith("sha256:"))
        msg, _, _ = self.pull(f"{basic.host}/private/app:1", "--registry-auth", f"{basic.host}=token", ok=False)
        self.assertIn("Invalid --registry-auth", msg)

    def test_registry_auth_basic(self):
        """--registry-auth=basic: basic credentials from the first request; a registry that wants a
        bearer token is refused without asking its token service."""
        issuer = TokenIssuer(self.tmp.path, users={"bob": "pw"})
        issuer.start()
        self.addCleanup(issuer.stop)
        self.registry.stop()
        self.registry = Registry(self.procs, self.tmp.path, auth=("token", issuer)).start()
        images.push_image(self.registry, "tok/app", "1", images.busybox_image())
        creds = os.path.join(self.tmp.path, "creds.json")
        with open(creds, "w") as f:
            json.dump({"username": "bob", "password": "pw"}, f)
        issuer.requests.clear()
        msg, _, _ = self.pull(self.ref("tok/app", "1"), "--credentials-file", creds,
                              "--registry-auth", f"{self.registry.host}=basic", ok=False)
        self.assertIn("asks for 'bearer' authentication", msg)
        self.assertIn('authentication "basic"', msg)
        self.assertEqual(issuer.requests, [])

        basic = Registry(self.procs, os.path.join(self.tmp.path, "basic"), auth=("htpasswd", {"alice": "s3cret"}))
        os.makedirs(basic.tmpdir)
        basic.start()
        digest, _ = images.push_image(basic, "private/app", "1", images.busybox_image())
        with open(creds, "w") as f:
            json.dump({"username": "alice", "password": "s3cret"}, f)
        done, _, _ = self.pull(f"{basic.host}/private/app:1", "--credentials-file", creds,
                               "--registry-auth", f"{basic.host}=basic")
        self.assertEqual(done["digest"], digest)
        with open(creds, "w") as f:
            json.dump({"username": "alice", "password": "wrong"}, f)
        msg, _, _ = self.pull(f"{basic.host}/private/app:1", "--credentials-file", creds, "--force",
                              "--registry-auth", f"{basic.host}=basic", ok=False)
        self.assertIn("authentication failed", msg)
        with open(creds, "w") as f:
            json.dump({"token": "abc"}, f)
        msg, _, _ = self.pull(f"{basic.host}/private/app:1", "--credentials-file", creds,
                              "--registry-auth", f"{basic.host}=basic", ok=False)
        self.assertIn("not a token", msg)

    def test_insecure_registry_matches_docker_hub_aliases(self):
        """--insecure-registry=registry-1.docker.io applies to 'alpine' (parsed as docker.io/…),
        the way --allowed-registry does. Observed through http_proxy, which curl uses only for
        http:// URLs: the proxy is our registry (it serves absolute-form requests), https goes to a
        dead port, so nothing leaves the machine either way."""
        digest, _ = images.push_image(self.registry, "library/alpine", "latest", images.busybox_image())
        dead = procs_free_port()
        env = dict(os.environ, http_proxy=f"http://{self.registry.host}", https_proxy=f"http://127.0.0.1:{dead}",
                   no_proxy="")
        for name in ("registry-1.docker.io", "DOCKER.IO"):
            with self.subTest(name):
                done, _, _ = self.pull("alpine", "--resolve-only", "--retries", "0", "--insecure-registry", name, env=env)
                self.assertEqual(done["digest"], digest)
        msg, _, _ = self.pull("alpine", "--resolve-only", "--retries", "0", env=env, ok=False)
        self.assertIn("docker.io/library/alpine", msg)

    def test_429_with_retry_after(self):
        images.push_image(self.registry, "busy", "latest", images.busybox_image())
        proxy = Proxy(self.registry.port, fail_first=1, retry_after=1, status="429 Too Many Requests")
        self.addCleanup(proxy.stop)
        import time
        t = time.monotonic()
        done, _, _ = self.pull(f"{proxy.host}/busy:latest")
        self.assertGreaterEqual(time.monotonic() - t, 1.0)  # honoured Retry-After: 1
        self.assertTrue(os.path.exists(done["squashfs"]))

    def hostile(self, name, layers, expect, mode="stream"):
        outside = os.path.join(self.tmp.path, "outside")
        os.makedirs(outside, exist_ok=True)
        with open(os.path.join(outside, "secret"), "w") as f:
            f.write("untouched\n")
        before = self.snapshot(self.tmp.path + "/outside")
        before_tmp = set(os.listdir(self.tmp.path))
        images.push_image(self.registry, "hostile/" + name, "latest", Image(layers))
        msg, events, _ = self.pull(self.ref("hostile/" + name), ok=False, mode=mode)
        self.assertIn(expect, msg)
        self.assertEqual(staged(events), mode != "stream")
        self.assertEqual(any("staging in memory" in e.get("message", "") for e in events), mode == "memory")
        self.assertEqual(self.snapshot(self.tmp.path + "/outside"), before)
        with open(os.path.join(outside, "secret")) as f:
            self.assertEqual(f.read(), "untouched\n")
        # nothing new appeared anywhere next to the staging tree
        self.assertEqual(set(os.listdir(self.tmp.path)) - before_tmp - {"images", "cache", "expand", "expand-mem"},
                         set())
        self.assertFalse(os.path.exists("/escape-gatewayd-test"))
        self.assert_no_image()
        self.assert_staging_clean()

    def test_hostile_layers(self):
        outside = os.path.join(self.tmp.path, "outside")
        cases = {
            "dotdot": ([(Layer().busybox().file("../../../escape", "x"), "gzip")], "path outside the image"),
            "dotdot-deep": ([(Layer().dir("a").file("a/../../escape", "x"), "gzip")], "path outside the image"),
            "absolute": ([(Layer().file("/escape-gatewayd-test", "x"), "gzip")], "path outside the image"),
            "symlink-then-write": ([(Layer().symlink("evil", outside).file("evil/pwned", "x"), "gzip")],
                                   "path goes through a symlink"),
            "symlink-relative": ([(Layer().symlink("evil", "../../../outside").file("evil/pwned", "x"), "gzip")],
                                 "path goes through a symlink"),
            "symlink-across-layers": ([(Layer().symlink("evil", outside), "gzip"),
                                       (Layer().file("evil/pwned", "x"), "zstd")], "path goes through a symlink"),
            "hardlink-outside": ([(Layer().hardlink("hl", "../../outside/secret"), "gzip")],
                                 "hardlink target outside the image"),
            "hardlink-absolute": ([(Layer().hardlink("hl", outside + "/secret"), "gzip")],
                                  "hardlink target outside the image"),
            "hardlink-via-symlink": ([(Layer().symlink("evil", outside).hardlink("hl", "evil/secret"), "gzip")],
                                     "path goes through a symlink"),
            "whiteout-via-symlink": ([(Layer().symlink("evil", outside), "gzip"),
                                      (Layer().whiteout("evil/secret"), "gzip")], "path goes through a symlink"),
        }
        for name, (layers, expect) in cases.items():
            for mode in self.MODES:
                with self.subTest(name, mode=mode):
                    self.hostile(name, layers, expect, mode=mode)

    def test_garbage_layer(self):
        img = Image([(Layer().busybox(), "gzip"), (os.urandom(5000), "gzip")])
        images.push_image(self.registry, "garbage", "latest", img)
        msg, _, _ = self.pull(self.ref("garbage"), ok=False)
        self.assertIn("Layer 2/2", msg)
        self.assertIn("not a tar archive", msg)
        self.assert_no_image()
        self.assert_staging_clean()

    def test_image_without_layers(self):
        images.push_image(self.registry, "empty", "latest", Image([], cmd=["/bin/true"]))
        done, _, _ = self.pull(self.ref("empty"))
        t = self.tree(done["squashfs"])
        self.assertEqual(sorted(t), ["/", "dev", "proc", "sys", "tmp", "var", "var/input"])

    def test_device_nodes_are_dropped(self):
        l1 = (Layer().busybox().dir("dev").device("dev/null").device("dev/sda", char=False, major=8, minor=0)
              .hardlink("dev/null-link", "dev/null").file("etc-file", "lower"))
        l2 = Layer().device("etc-file")  # replaces a lower file: the file goes, no node comes
        images.push_image(self.registry, "devs", "latest", Image([(l1, "gzip"), (l2, "gzip")]))
        for mode in self.MODES:
            with self.subTest(mode=mode):
                done, events, _ = self.pull(self.ref("devs"), "--force", mode=mode)
                t = self.tree(done["squashfs"])
                for p in ("dev/null", "dev/sda", "dev/null-link", "etc-file"):
                    self.assertNotIn(p, t)
                self.assertIn("dev", t)
                self.assertTrue(any(e["event"] == "log" and "dropped 4" in e["message"] for e in events))

    def assert_same_image(self, a, b):
        """Same tree (modes, owners, symlink targets), same file contents and xattrs, both mountable."""
        self.assertEqual(self.tree(a), self.tree(b))
        ma, mb = self.mount(a), self.mount(b)
        for dirpath, dirnames, filenames in os.walk(ma):
            for n in filenames:
                pa = os.path.join(dirpath, n)
                pb = os.path.join(mb, os.path.relpath(pa, ma))
                sa, sb = os.lstat(pa), os.lstat(pb)
                self.assertEqual((sa.st_mode, sa.st_uid, sa.st_gid, sa.st_size, sa.st_nlink),
                                 (sb.st_mode, sb.st_uid, sb.st_gid, sb.st_size, sb.st_nlink), pa)
                if stat.S_ISREG(sa.st_mode):  # the staged applier gives FIFOs the time of the pull
                    self.assertEqual(int(sa.st_mtime), int(sb.st_mtime), pa)
                self.assertEqual(sorted(os.listxattr(pa, follow_symlinks=False)),
                                 sorted(os.listxattr(pb, follow_symlinks=False)), pa)
                if stat.S_ISREG(sa.st_mode):
                    with open(pa, "rb") as fa, open(pb, "rb") as fb:
                        self.assertEqual(fa.read(), fb.read(), pa)

    def pull_both(self, repo):
        """Pulls repo streaming and staged; returns (streamed done, its events, staged done)."""
        done, events, _ = self.pull(self.ref(repo), "--force")
        s = os.path.join(self.tmp.path, repo + ".stream.squashfs")
        shutil.copy(done["squashfs"], s)
        staged_done, staged_events, _ = self.pull(self.ref(repo), "--force", mode="disk")
        self.assertTrue(staged(staged_events))
        self.assert_same_image(s, staged_done["squashfs"])
        self.assert_staging_clean()
        return done, events, staged_done

    def test_streaming_gives_the_staged_image(self):
        # union rules across layers: whiteouts, opaque directories, a directory replaced by a
        # file and back, symlinks, hardlinks within a layer, owners, setuid, xattrs, FIFOs, long
        # names, the root directory's own entry, a device node dropped with what it replaced
        long = "l" * 120 + "/" + "n" * 150
        l1 = (Layer().dir(".", mode=0o750).busybox().dir("a").file("a/x", "x").file("a/y", "y").dir("a/sub")
              .file("a/sub/z", "z").dir("b").file("b/1", "1").dir("c").file("c/in-dir", "c")
              .file("f", "file").dir("l" * 120).file(long, "long", uid=7, gid=8)
              .file("su", "#!suid\n", mode=0o4755).hardlink("su-link", "su")
              .file("xattr-file", "x\n", xattrs={"user.gatewayd": "hello"}).fifo("fifo")
              .file("replaced-by-node", "gone").symlink("link", "a/y").file("big", os.urandom(300000)))
        l2 = (Layer().dir("a").whiteout("a/x").whiteout("a/sub").dir("b").opaque("b").file("b/2", "2")
              .file("c", "now a file").whiteout("f").device("replaced-by-node")
              .dir("home").dir("home/u", mode=0o700, uid=1000, gid=1000).file("home/u/notes", "n", uid=1000))
        l3 = Layer().dir("f").file("f/again", "dir now").file("a/y", "upper y").file("big", os.urandom(200000))
        images.push_image(self.registry, "streamed", "latest", Image([(l1, "gzip"), (l2, "zstd"), (l3, "gzip")]))
        done, events, _ = self.pull_both("streamed")
        self.assertFalse(staged(events), events)
        self.assertTrue(any(e["event"] == "log" and "dropped 1" in e["message"] for e in events))
        t = self.tree(done["squashfs"])
        self.assertEqual(t["/"][0], "drwxr-x---")
        self.assertNotIn("a/x", t)
        self.assertNotIn("b/1", t)
        self.assertEqual(t["c"][0][0], "-")
        self.assertEqual(t["f"][0][0], "d")
        self.assertNotIn("replaced-by-node", t)
        for d in ("proc", "sys", "dev", "tmp", "var", "var/input"):
            self.assertEqual(t[d][0][0], "d", d)
        self.assertEqual(t["tmp"][0], "drwxrwxrwt")

    def test_streaming_hands_over_what_it_cannot_merge(self):
        # What one top-first pass cannot decide: the staged conversion takes over, same image
        cases = {
            "dup-in-layer": [Layer().busybox().file("f", "first").file("f", "second")],
            "whiteout-after-entry": [Layer().busybox().file("g", "lower"),
                                     Layer().file("h", "h").whiteout("h")],
            "hardlink-across-layers": [Layer().busybox().file("t", "target"),
                                       Layer().hardlink("t-link", "t")],
            "hardlink-to-shadowed": [Layer().busybox().file("t", "old").hardlink("t2", "t"),
                                     Layer().file("t", "new")],
        }
        for name, layers in cases.items():
            with self.subTest(name):
                images.push_image(self.registry, "fb-" + name, "latest", Image([(l, "gzip") for l in layers]))
                done, events, _ = self.pull(self.ref("fb-" + name), "--force")
                self.assertTrue(staged(events), name)
                self.assert_staging_clean()
                staged_done, _, _ = self.pull(self.ref("fb-" + name), "--force", mode="disk")
                self.assertEqual(self.tree(done["squashfs"]), self.tree(staged_done["squashfs"]))
        # handed over, refused there as it is when staged from the start
        images.push_image(self.registry, "fb-under-file", "latest",
                          Image([(Layer().busybox().file("d", "a file"), "gzip"), (Layer().file("d/child", "c"), "gzip")]))
        shutil.rmtree(self.image_dir)
        msg, events, _ = self.pull(self.ref("fb-under-file"), ok=False)
        self.assertTrue(staged(events))
        self.assertIn("parent is not a directory: d/child", msg)
        self.assert_no_image()
        self.assert_staging_clean()

    def test_streaming_writer_failure_converts_staged(self):
        images.push_image(self.registry, "wfail", "latest", Image([(Layer().busybox(), "gzip"),
                                                                   (Layer().file("big", os.urandom(3 << 20)), "gzip")]))
        ends = os.path.join(self.tmp.path, "reads-then-fails")
        with open(ends, "w") as f:
            f.write("#!/bin/sh\ncat >/dev/null\nexit 3\n")
        os.chmod(ends, 0o755)
        # one that is gone at once (the merger's writes fail), one that fails at the end
        for writer, expect in (("/bin/false", "cannot write"), (ends, "exit status 3")):
            with self.subTest(writer=writer):
                done, events, _ = self.pull(self.ref("wfail"), "--force", env={**os.environ, "GATEWAYD_TAR2SQFS": writer})
                warn = [e["message"] for e in events if e["event"] == "log" and "converting staged instead" in e["message"]]
                self.assertEqual(len(warn), 1, events)
                self.assertIn(expect, warn[0])
                self.assertEqual(os.path.getsize(os.path.join(self.mount(done["squashfs"]), "big")), 3 << 20)
                self.assertEqual([n for n in os.listdir(self.image_dir) if ".tmp" in n], [])
                self.assert_staging_clean()
        # without tar2sqfs at all: staged from the start
        done, events, _ = self.pull(self.ref("wfail"), "--force",
                                    env={**os.environ, "GATEWAYD_TAR2SQFS": "/nonexistent/tar2sqfs"})
        self.assertTrue(staged(events))

    def test_streaming_sparse_file(self):
        src = os.path.join(self.tmp.path, "sparse-src")
        os.makedirs(src)
        with open(os.path.join(src, "hole"), "wb") as f:
            f.seek(5 << 20)
            f.write(b"end")
        tar = subprocess.run(["tar", "--sparse", "--format=pax", "-C", src, "-cf", "-", "hole"], check=True,
                             stdout=subprocess.PIPE).stdout
        images.push_image(self.registry, "sparse-ok", "latest", Image([(tar, "gzip")]))
        done, events, _ = self.pull(self.ref("sparse-ok"))
        self.assertTrue(staged(events))
        with open(os.path.join(self.mount(done["squashfs"]), "hole"), "rb") as f:
            f.seek(5 << 20)
            self.assertEqual(f.read(), b"end")

    def test_memory_staging_falls_back_to_disk(self):
        # 3 MiB of file data: staged in memory under a 16 MiB cap, on disk over a 1 MiB one
        l1 = Layer().busybox().file("big", os.urandom(3 << 20))
        l2 = Layer().file("top", "t")
        images.push_image(self.registry, "memfb", "latest", Image([(l1, "gzip"), (l2, "zstd")]))

        def staged(events):
            return ([e["message"] for e in events if "staging in memory" in e.get("message", "")],
                    [e["message"] for e in events if "larger than its share of memory" in e.get("message", "")])

        done, events, _ = self.pull(self.ref("memfb"), "--memory-expand-max", "16M", mode="memory")
        self.assertEqual([len(x) for x in staged(events)], [1, 0])
        self.assertIn(self.memory_dir + "/gateway-pull.0", staged(events)[0][0])
        in_memory = self.tree(done["squashfs"])
        self.assert_staging_clean()

        done, events, _ = self.pull(self.ref("memfb"), "--force", "--memory-expand-max", "1M", mode="memory")
        mem, fallback = staged(events)
        self.assertEqual((len(mem), len(fallback)), (1, 1), events)
        self.assertIn(self.expand_dir, fallback[0])
        self.assertEqual(self.tree(done["squashfs"]), in_memory)
        self.assertEqual(os.path.getsize(os.path.join(self.mount(done["squashfs"]), "big")), 3 << 20)
        self.assert_staging_clean()
        self.assert_cache_consistent()

        # ImageSizeMax still holds on the disk it falls back to, and is reported as such
        subprocess.run(["rm", "-rf", self.image_dir], check=True)
        msg, events, _ = self.pull(self.ref("memfb"), "--force", "--memory-expand-max", "1M",
                                   "--image-size-max", "2M", ok=False, mode="memory")
        self.assertIn("ImageSizeMax", msg)
        self.assertIn(str(2 << 20), msg)
        self.assertEqual([len(x) for x in staged(events)], [1, 1])
        self.assert_no_image()
        self.assert_staging_clean()

    def test_memory_staging_only_on_a_private_tmpfs(self):
        images.push_image(self.registry, "memdir", "latest", Image([(Layer().busybox(), "gzip")]))
        # not a tmpfs: staged on disk
        _, events, _ = self.pull(self.ref("memdir"), "--memory-expand-dir", self.expand_dir, mode="disk")
        self.assertFalse(any("staging in memory" in e.get("message", "") for e in events))
        # a tmpfs where someone else prepared our directory (or made it writable to others): on disk
        os.makedirs(os.path.join(self.memory_dir, "gateway-pull.0"))
        os.chmod(os.path.join(self.memory_dir, "gateway-pull.0"), 0o777)
        _, events, _ = self.pull(self.ref("memdir"), "--force", mode="memory")
        self.assertFalse(any("staging in memory" in e.get("message", "") for e in events))
        os.chmod(os.path.join(self.memory_dir, "gateway-pull.0"), 0o700)
        _, events, _ = self.pull(self.ref("memdir"), "--force", mode="memory")
        self.assertTrue(any("staging in memory" in e.get("message", "") for e in events))

    def test_resolve_only(self):
        d, _ = images.push_image(self.registry, "res", "latest", images.busybox_image())
        r, w = os.pipe()
        p = subprocess.run([worker(), "pull", "--resolve-only", "--events-fd", str(w), self.ref("res")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=(w,), timeout=30)
        os.close(w)
        with os.fdopen(r) as f:
            events = [json.loads(l) for l in f]
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, d + "\n")
        done = events[-1]
        self.assertEqual((done["event"], done["digest"], done["id"], done["resolveOnly"]), ("done", d, d[7:], True))
        self.assertFalse(os.path.exists(self.image_dir))

        # for an index, the platform manifest's digest; --id-only is the same switch
        _, digests = images.push_index(self.registry, "res", "multi", [
            Image([(Layer().file("a", "a"), "gzip")], arch="arm64", variant="v8"),
            Image([(Layer().file("b", "b"), "gzip")], arch="amd64")])
        p = subprocess.run([worker(), "pull", "--id-only", "--platform", "linux/arm64", self.ref("res", "multi")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        done = [json.loads(l) for l in p.stdout.splitlines()][-1]
        self.assertEqual(done["digest"], digests[0])

    def test_pull_by_digest(self):
        d, _ = images.push_image(self.registry, "bydigest", "v1", images.busybox_image())
        done, _, _ = self.pull(f"{self.registry.host}/bydigest@{d}")
        self.assertEqual(done["digest"], d)
        done, _, _ = self.pull(f"{self.registry.host}/bydigest:v1@{d}", "--force")
        self.assertEqual(done["digest"], d)
        wrong = "sha256:" + "0" * 64
        msg, _, _ = self.pull(f"{self.registry.host}/bydigest@{wrong}", ok=False)
        self.assertIn("(HTTP 404)", msg)

    def test_concurrent_pulls_share_cache(self):
        l = [(Layer().busybox(), "gzip")] + [(Layer().file(f"f{i}", os.urandom(2 * 1024 * 1024)), "gzip") for i in range(4)]
        d, _ = images.push_image(self.registry, "conc", "latest", Image(l))
        outs = []
        for i in range(4):
            argv = [worker(), "pull", "--image-dir", self.image_dir + str(i % 2), "--cache-dir", self.cache_dir,
                    "--expand-dir", self.expand_dir, "--force", "--jobs", "3", self.ref("conc")]
            outs.append(self.procs.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        results = [(p.communicate(timeout=120), p.returncode) for p in outs]
        for (out, err), rc in results:
            self.assertEqual(rc, 0, err)
        self.assert_cache_consistent()
        self.assertEqual(len(os.listdir(os.path.join(self.cache_dir, "blobs", "sha256"))), 6)
        for i in range(2):
            self.assertEqual(sorted(os.listdir(self.image_dir + str(i))), [d[7:] + ".meta.json", d[7:] + ".squashfs"])
            t = self.tree(os.path.join(self.image_dir + str(i), d[7:] + ".squashfs"))
            self.assertIn("f3", t)
        self.assert_staging_clean()

    def test_compressors(self):
        images.push_image(self.registry, "comp", "latest", images.busybox_image())
        for comp, level in (("lz4", None), ("gzip", "1"), ("xz", None), ("zstd", "19")):
            with self.subTest(comp):
                args = ["--force", "--compressor", comp] + (["--compression-level", level] if level else [])
                done, _, _ = self.pull(self.ref("comp"), *args)
                out = subprocess.run(["unsquashfs", "-s", done["squashfs"]], stdout=subprocess.PIPE, text=True).stdout
                self.assertIn(f"Compression {comp}", out)
                with open(done["meta"]) as f:
                    self.assertEqual(json.load(f)["compressor"], comp)

    def test_bad_input(self):
        cases = [
            (["UPPER/case"], "Invalid image reference"),
            (["--platform", "linux", "x"], "Invalid platform"),
        ]
        for args, expect in cases:
            with self.subTest(args):
                msg, _, _ = self.pull(args[-1], *args[:-1], ok=False)
                self.assertIn(expect, msg)
        # argument errors: exit 1, the message on stderr and in a FAILURE event
        for args, expect in [
            (["--compressor", "brotli", "x"], "Unknown compressor"),
            (["--compression-level", "23", "x"], "Invalid --compression-level"),
            (["--compressor", "gzip", "--compression-level", "12", "x"], "Invalid --compression-level"),
            (["--jobs", "0", "x"], "Invalid --jobs"),
            (["--events-fd", "77", "x"], "Invalid --events-fd"),
            ([], "Expected exactly one REFERENCE"),
            (["a", "b"], "Expected exactly one REFERENCE"),
            (["--no-such-option", "x"], "Invalid command line"),
        ]:
            with self.subTest(args):
                p = subprocess.run([worker(), "pull", "--image-dir", self.image_dir, *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                self.assertEqual(p.returncode, 1)
                self.assertIn(expect, p.stderr)
                ev = [json.loads(l) for l in p.stdout.splitlines()]
                self.assertEqual([(e["event"], e["status"]) for e in ev], [("status", "FAILURE")])
                self.assertIn(expect, ev[0]["message"])
        p = subprocess.run([worker(), "pull", "x"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--image-dir= is required", p.stderr)
        p = subprocess.run([worker(), "pull", "--help"], stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.returncode, 0)
        for opt in ("--image-dir", "--cache-dir", "--expand-dir", "--default-location", "--platform",
                    "--credentials-file", "--insecure-registry", "--compressor", "--compression-level",
                    "--jobs", "--events-fd", "--resolve-only", "--id-only", "EXIT STATUS"):
            self.assertIn(opt, p.stdout)

    # ---- limits: a pull cannot take more disk, memory or entries than configured ----

    def test_gzip_bomb_stops_at_image_size_max(self):
        # 512 MiB of zeros in 0.5 MiB of gzip, as one member: the kind of layer that used to be
        # inflated whole into memory. Stopped at 32 MiB, with the worker's memory sampled.
        img = Image([(Layer().busybox(), "gzip"), (images.gzip_bomb(512), "gzip")])
        images.push_image(self.registry, "bomb", "latest", img)
        rss = []
        msg, events, _ = self.pull(self.ref("bomb"), "--image-size-max", "32M", ok=False, rss=rss)
        self.assertIn("ImageSizeMax", msg)
        self.assertIn(str(32 << 20), msg)
        self.assertGreater(rss[0], 0)
        self.assertLess(rss[0], 128 * 1024, f"worker peak RSS {rss[0]} KiB")
        self.assert_no_image()
        self.assert_staging_clean()
        self.assert_cache_consistent()
        # under the limit the same image unpacks; the limit counts all layers together
        rss = []
        done, _, _ = self.pull(self.ref("bomb"), "--image-size-max", "600M", rss=rss)
        self.assertEqual(self.tree(done["squashfs"])["zero"][0][0], "-")
        self.assertLess(rss[0], 128 * 1024, f"worker peak RSS {rss[0]} KiB unpacking 512 MiB")
        msg, _, _ = self.pull(self.ref("bomb"), "--force", "--image-size-max", f"{(512 << 20) + 4096}", ok=False)
        self.assertIn("ImageSizeMax", msg)

    def test_layer_is_inflated_while_it_downloads(self):
        # The decoder reads a layer as it arrives ("curl | gunzip"), not after its last byte: a
        # bomb served at 64 KiB/s (its 0.5 MiB take 8 s) stops at ImageSizeMax within the first
        # compressed bytes, and the download is abandoned with it.
        import time
        img = Image([(images.gzip_bomb(512), "gzip")])
        images.push_image(self.registry, "slowbomb", "latest", img)
        layer = json.loads(img.build()[0])["layers"][0]
        self.assertGreater(layer["size"], 400 * 1024)
        proxy = Proxy(self.registry.port, rate=64 * 1024)
        self.addCleanup(proxy.stop)
        t = time.monotonic()
        msg, events, _ = self.pull(f"{proxy.host}/slowbomb:latest", "--image-size-max", "32M", ok=False)
        self.assertLess(time.monotonic() - t, 4)
        self.assertIn("ImageSizeMax", msg)
        progress = [e for e in events if e["event"] == "progress"]
        self.assertEqual(progress[-1]["layersDone"], 0)
        self.assertLess(progress[-1]["bytesDone"], layer["size"])
        self.assert_no_image()
        self.assert_cache_consistent()
        self.assertFalse(os.path.exists(os.path.join(self.cache_dir, "blobs", "sha256", layer["digest"][7:])))

    def test_retry_of_a_layer_read_as_it_arrives(self):
        # The decoder reads a layer's bytes as they arrive; a download cut off halfway is
        # retried from the start, and the retry must bring the very bytes the decoder may have
        # read (the digest only covers the last attempt's).
        def image(name):
            img = Image([(Layer().file("big", os.urandom(3 << 20)), "gzip")])
            images.push_image(self.registry, name, "latest", img)
            return json.loads(img.build()[0])["layers"][0]
        layer = image("count")
        counter = Proxy(self.registry.port)
        self.addCleanup(counter.stop)
        done, _, _ = self.pull(f"{counter.host}/count:latest")
        os.unlink(done["squashfs"])
        os.unlink(done["meta"])
        blob = counter.connections   # the layer comes last, after manifest and configuration
        self.assertGreaterEqual(blob, 3)

        image("cut")
        proxy = Proxy(self.registry.port, cut={blob: 1 << 20})
        self.addCleanup(proxy.stop)
        done, _, _ = self.pull(f"{proxy.host}/cut:latest")
        self.assertEqual(proxy.connections, blob + 1)
        self.assertEqual(self.tree(done["squashfs"])["big"][0][0], "-")
        self.assert_cache_consistent()
        os.unlink(done["squashfs"])
        os.unlink(done["meta"])

        # other bytes on the retry where the first attempt's were read, or the other way round
        for name, flip in (("flip2", {blob + 1: 100000}), ("flip1", {blob: 100000})):
            layer = image(name)
            proxy = Proxy(self.registry.port, cut={blob: 1 << 20}, flip=flip)
            self.addCleanup(proxy.stop)
            msg, _, _ = self.pull(f"{proxy.host}/{name}:latest", ok=False)
            self.assertIn(f"blob {layer['digest']} changed between download attempts", msg)
            self.assert_no_image()
            self.assert_cache_consistent()
            self.assertFalse(os.path.exists(os.path.join(self.cache_dir, "blobs", "sha256", layer["digest"][7:])))

    def test_bomb_across_layers_and_sparse_files(self):
        # four layers, each under the limit, over it together
        img = Image([(images.gzip_bomb(8, f"zero{i}"), "gzip") for i in range(4)])
        images.push_image(self.registry, "bombs", "latest", img)
        msg, _, _ = self.pull(self.ref("bombs"), "--image-size-max", "20M", ok=False)
        self.assertIn("ImageSizeMax", msg)
        self.assert_no_image()
        self.assert_staging_clean()
        # a sparse file costs little tar but its full size to read: it counts with its size
        src = os.path.join(self.tmp.path, "sparse")
        os.makedirs(src)
        with open(os.path.join(src, "hole"), "wb") as f:
            f.truncate(64 << 30)
        tar = subprocess.run(["tar", "--sparse", "--format=pax", "-C", src, "-cf", "-", "hole"], check=True,
                             stdout=subprocess.PIPE).stdout
        self.assertLess(len(tar), 1 << 20)
        images.push_image(self.registry, "sparse", "latest", Image([(tar, "gzip")]))
        msg, _, _ = self.pull(self.ref("sparse"), "--image-size-max", "1G", ok=False)
        self.assertIn("ImageSizeMax", msg)
        self.assertIn("hole", msg)
        self.assert_no_image()
        self.assert_staging_clean()

    def test_image_files_max(self):
        l1 = Layer().dir("a")
        l2 = Layer().dir("b")
        for i in range(300):
            l1.file(f"a/{i}")
            l2.file(f"b/{i}")
        images.push_image(self.registry, "files", "latest", Image([(l1, "gzip"), (l2, "zstd")]))
        # streaming merges the top-most layer first, staging applies the bottom-most first
        for mode, crossing in (("stream", "layer 1/2"), ("disk", "layer 2/2")):
            with self.subTest(mode=mode):
                msg, _, _ = self.pull(self.ref("files"), "--image-files-max", "500", ok=False, mode=mode)
                self.assertIn("ImageFilesMax (500)", msg)
                self.assertIn(crossing, msg)
                self.assert_no_image()
                self.assert_staging_clean()
        for mode in self.MODES:
            with self.subTest(mode=mode):
                done, _, _ = self.pull(self.ref("files"), "--force", "--image-files-max", "602", mode=mode)
                self.assertIn("b/299", self.tree(done["squashfs"]))

    def test_diff_id_mismatch(self):
        good = Layer().busybox()
        other = Layer().file("other", "x").tar()
        for comp in ("gzip", "zstd", "none"):
            with self.subTest(comp):
                layer = Layer().file("f", "content of " + comp)
                img = Image([(good, "gzip"), (layer, comp)],
                            diff_ids=[images.sha256(good.tar()), images.sha256(other)])
                images.push_image(self.registry, "diffid", comp, img)
                msg, _, _ = self.pull(self.ref("diffid", comp), ok=False)
                self.assertIn("diff_id mismatch: layer 2/2", msg)
                self.assertIn(images.sha256(other), msg)
                self.assert_no_image()
                self.assert_staging_clean()
        # a trailer after the tar's end is part of the layer too: the decoder hashes to the end
        tar = good.tar() + b"\0" * 4096
        images.push_image(self.registry, "diffid", "tail",
                          Image([(tar, "gzip")], diff_ids=[images.sha256(good.tar())]))
        msg, _, _ = self.pull(self.ref("diffid", "tail"), ok=False)
        self.assertIn("diff_id mismatch", msg)
        # a configuration that does not list one diff_id per layer
        images.push_image(self.registry, "diffid", "count", Image([(good, "gzip")], diff_ids=[]))
        msg, _, _ = self.pull(self.ref("diffid", "count"), ok=False)
        self.assertIn("lists 0 diff_ids for 1 layers", msg)
        self.assert_no_image()

    def test_manifest_and_config_caps(self):
        # docker-registry itself refuses manifests over 4 MiB, so a plain HTTP server plays a
        # registry that sends one (an image manifest, and an index)
        import http.server
        body = json.dumps({"schemaVersion": 2, "layers": [], "annotations": {"pad": "x" * (4 << 20)}}).encode()

        class Big(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", images.OCI_INDEX if "index" in self.path else images.OCI_MANIFEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Big)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        for tag in ("manifest", "index"):
            msg, _, _ = self.pull(f"127.0.0.1:{srv.server_address[1]}/caps:{tag}", ok=False)
            self.assertIn("larger than 4194304 bytes", msg)

        img = Image([(Layer().file("f", "x"), "gzip")], labels={"pad": "x" * (8 << 20)})
        images.push_image(self.registry, "caps", "config", img)
        rss = []
        msg, _, _ = self.pull(self.ref("caps", "config"), ok=False, rss=rss)
        self.assertIn("more than the limit of 8388608", msg)
        self.assertLess(rss[0], 64 * 1024, "the configuration is not downloaded")
        self.assert_no_image()

        layer = (Layer().file("f", "x"), "gzip")
        images.push_image(self.registry, "caps", "layers", Image([layer] * 1001))
        msg, _, _ = self.pull(self.ref("caps", "layers"), ok=False)
        self.assertIn("more than 1000 layers", msg)
        self.assert_no_image()

    def test_gzip_variants(self):
        # what image builders write: a header with a file name, many members (pigz), an empty
        # member, padding after the last member; and a truncated stream, which must fail
        import gzip
        tar = Layer().busybox().file("hello", "x" * 100000).tar()
        src = os.path.join(self.tmp.path, "layer.tar")
        with open(src, "wb") as f:
            f.write(tar)
        whole = gzip.compress(tar, mtime=0)
        variants = {
            "name": subprocess.run(["gzip", "-c", "-9", src], stdout=subprocess.PIPE, check=True).stdout,
            "members": b"".join(gzip.compress(tar[i:i + 7000], mtime=0) for i in range(0, len(tar), 7000)),
            "empty-member": gzip.compress(b"", mtime=0) + whole,
            "padding": whole + b"\0" * 1000,
        }
        for name, data in variants.items():
            with self.subTest(name):
                images.push_image(self.registry, "gz", name, Image([(images.Blob(data, images.sha256(tar)), "gzip")]))
                done, _, _ = self.pull(self.ref("gz", name))
                mnt = self.mount(done["squashfs"])
                with open(os.path.join(mnt, "hello")) as f:
                    self.assertEqual(f.read(), "x" * 100000)
        d, _ = images.push_image(self.registry, "gz", "truncated",
                                 Image([(images.Blob(whole[:len(whole) // 2], images.sha256(tar)), "gzip")]))
        msg, _, _ = self.pull(self.ref("gz", "truncated"), ok=False)
        self.assertIn("Layer 1/1", msg)
        self.assertFalse(os.path.exists(os.path.join(self.image_dir, d[7:] + ".squashfs")))
        self.assert_staging_clean()

    def test_free_space_checked_before_conversion(self):
        os.makedirs(self.image_dir)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", self.image_dir], check=True)
        self.addCleanup(subprocess.run, ["umount", self.image_dir], check=True)
        img = Image([(Layer().file("random", os.urandom(6 << 20)), "gzip")])
        images.push_image(self.registry, "nospace", "latest", img)
        msg, events, _ = self.pull(self.ref("nospace"), ok=False)
        self.assertIn("Not enough free space in " + self.image_dir, msg)
        self.assertNotIn("CONVERSION", [e.get("status") for e in events])
        self.assert_staging_clean()
        self.assertEqual(os.listdir(self.image_dir), [])

    def test_default_location(self):
        d, _ = images.push_image(self.registry, "team/app", "latest", images.busybox_image())
        done, _, _ = self.pull("team/app", "--default-location", self.registry.host)
        self.assertEqual(done["digest"], d)
        self.assertEqual(done["reference"], f"{self.registry.host}/team/app:latest")


if __name__ == "__main__":
    unittest.main()
