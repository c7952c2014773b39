"""A lab member's writable layer has a size of its own (LabWritableMax, docs/labs.md "Members"):
an ext4 in a sparse file of the instance (a copy of the site's empty one of that size, made once),
loop-mounted nosuid,nodev on the layer's directory by the member's worker. A member writing without end gets ENOSPC at the size and the state
directory's file system keeps the rest; the layer is the member's (owner, 0700); deleting the
instance unmounts it, detaches its loop device and removes the file. LabWritableMax 0 keeps the
plain directory and needs no mkfs.ext4; without mkfs.ext4 the member ends, and the instance says
what to do."""
import os
import unittest

from harness import images, procs, users
from test_labs import InstancesBase

MIB = 1 << 20
FILL_CMD = ["/bin/sh", "-c",
            "dd if=/dev/zero of=/var/lab/big bs=1M count=64 2>/dev/null; rc=$?; size=$(wc -c < /var/lab/big);"
            " rm /var/lab/big; echo \"$rc $size\" > /var/lab/result.tmp; mv /var/lab/result.tmp /var/lab/result;"
            " exec sleep 100000"]


def mount_of(path):
    """(fstype, mount options, super options) of the mount at path in our mount namespace, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ")
            fields = pre.split()
            if fields[4] == path:
                fstype, _source, sopts = post.split()
                return fstype, set(fields[5].split(",")), set(sopts.split(","))
    return None


def loop_devices_of(path):
    """The loop devices backed by path."""
    found = []
    for dev in os.listdir("/sys/block"):
        try:
            with open(f"/sys/block/{dev}/loop/backing_file") as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing in (path, f"{path} (deleted)"):
            found.append(dev)
    return found


class LabDiskBase(InstancesBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            filler = images.Layer().busybox(("sh", "dd", "wc", "rm", "echo", "mv", "sleep"))
            images.push_image(cls.registry, "labs/filler", "1", images.Image([(filler, "gzip")]))
            cls.filler = cls._put_lab(cls, "filler", [
                {"name": "fill", "image": f"{cls.registry.host}/labs/filler:1", "command": FILL_CMD}])
        except BaseException:
            cls.tearDownClass()
            raise

    def instance_dir(self, id_):
        return os.path.join(self.gw.state_dir, "labs", id_)


class SizedLayer(LabDiskBase):
    extra_config = {"LabWritableMax": "32M"}

    def test_member_fills_its_layer_not_the_state(self):
        inst = self.start(self.filler)
        self.await_state(inst["id"], ("RUNNING",))
        rc, size = self.read_member_file(inst["id"], "fill", "result").split()
        # dd ran out of room at the layer's size (less ext4's own metadata), not at 64 MiB
        self.assertNotEqual(rc, "0")
        self.assertGreater(int(size), 24 * MIB)
        self.assertLess(int(size), 32 * MIB)

        data = self.member_dir(inst["id"], "fill")
        image = os.path.join(self.instance_dir(inst["id"]), "fill.img")
        fstype, opts, _ = mount_of(data)
        self.assertEqual(fstype, "ext4")
        self.assertTrue({"rw", "nosuid", "nodev"} <= opts, opts)
        st = os.stat(data)
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (users.uid_of(users.USER), 0o700))
        # what the state's file system gave: the sparse file, at most the layer's size
        self.assertLessEqual(os.stat(image).st_blocks * 512, 32 * MIB)
        self.assertEqual(len(loop_devices_of(image)), 1)
        # made by a copy of the site's empty layer of that size, which stays for the next member
        template = os.path.join(self.gw.state_dir, "labs", f".writable-{32 * MIB}.img")
        st = os.stat(template)
        self.assertEqual((st.st_uid, st.st_mode & 0o777, st.st_size), (0, 0o600, 32 * MIB))

        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=users.USER).status, 204)
        procs.wait_for(lambda: self.get(inst["id"]).status == 404, timeout=30, what="instance gone")
        self.assertIsNone(mount_of(data))
        self.assertFalse(os.path.exists(self.instance_dir(inst["id"])))
        procs.wait_for(lambda: not loop_devices_of(image), timeout=10, what="the layer's loop device detached")
        self.assertTrue(os.path.exists(template))

    def test_root_member_owns_its_layer_as_nobody(self):
        inst = self.start(self.filler, as_user="root")
        self.await_state(inst["id"], ("RUNNING",), as_user="root")
        self.read_member_file(inst["id"], "fill", "result")
        st = os.stat(self.member_dir(inst["id"], "fill"))
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (65534, 65534, 0o700))


class PlainLayer(LabDiskBase):
    """0: the directory as it is, on the state's file system; no mkfs.ext4 needed (not on PATH)."""
    extra_config = {"LabWritableMax": 0}
    gatewayd_env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}

    def test_plain_directory(self):
        inst = self.start(self.filler)
        self.await_state(inst["id"], ("RUNNING",))
        rc, size = self.read_member_file(inst["id"], "fill", "result").split()
        self.assertEqual((rc, int(size)), ("0", 64 * MIB))
        self.assertIsNone(mount_of(self.member_dir(inst["id"], "fill")))
        self.assertFalse(os.path.exists(os.path.join(self.instance_dir(inst["id"]), "fill.img")))


class NoMkfs(LabDiskBase):
    """A sized layer without mkfs.ext4 on gatewayd's PATH: the member ends and the instance says why."""
    gatewayd_env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}

    def test_missing_mkfs_fails_the_instance(self):
        if os.path.exists("/usr/bin/mkfs.ext4") or os.path.exists("/bin/mkfs.ext4"):
            self.skipTest("mkfs.ext4 is on the reduced PATH here")
        inst = self.start(self.filler)
        # a member that ends before its sandbox runs degrades the instance, as any member's end
        rec = self.await_state(inst["id"], ("DEGRADED",))
        self.assertEqual(rec["members"][0]["state"], "EXITED")
        self.assertIn("mkfs.ext4 is missing", rec["error"])
        self.assertIn("LabWritableMax", rec["error"])
        self.assertFalse(os.path.exists(os.path.join(self.instance_dir(inst["id"]), "fill.img")))
        self.assertEqual([n for n in os.listdir(os.path.join(self.gw.state_dir, "labs")) if n.startswith(".writable")], [],
                         "no template, nor half of one")
        # the daemon goes on serving
        self.assertEqual(self.gw.http("GET", "/v1/lab-instances", as_user=users.USER).status, 200)


if __name__ == "__main__":
    unittest.main()
