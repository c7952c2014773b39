"""The Debian packages (debian/, scripts/build-package) installed with dpkg into a container
booted with systemd from the host's tree under a tmpfs overlay (harness/nspawn.py), as on a
fresh machine: the accounts and directories from sysusers.d/tmpfiles.d, gatewayd.socket enabled
and started by the package, man pages and completion in place, then the quick start's job
(scripts/quickstart.py) through the installed units: a registry inside the container (it has
a private network), `systemctl start gatewayd.socket`, `gatewayctl pull`, `service create`,
`submit --wait` as root and as an ordinary user, and the HTTP socket.

The packages come from $GATEWAYD_DEB_DIR (scripts/test builds them once, next to the other
steps); without it they are built here with scripts/build-package (about a minute).
GATEWAYD_DEB_DIR=none skips the module (scripts/test sets it for the second, ASan, suite:
the packages do not depend on the build under test)."""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import images, procs
from harness.nspawn import Container
from harness.registry import Registry

# scripts/quickstart.py's sample service.
SAMPLE = """#!/bin/sh
echo "PlanQK:Job:InterimResult: {\\"step\\": 1}"
echo "PlanQK:Job:Result: {\\"greeting\\": \\"hello from gatewayd\\", \\"input\\": $(cat /var/input/data.json)}"
"""
REGISTRY = "127.0.0.1:5000"
REF = f"{REGISTRY}/demo/hello:latest"
REGISTRY_CONFIG = f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: /srv/registry
http:
  addr: {REGISTRY}
"""
GATEWAYD_CONFIG = {
    "DefaultImageLocation": REGISTRY,
    "LabWritableMax": "64M",
    "Locations": {REGISTRY: {"remotetype": "dockerv2", "authentication": "http", "insecure": True}},
}
PACKAGES = ("gateway-worker", "gatewayd", "gateway-worker-node")


def deb_dir(tmp):
    d = os.environ.get("GATEWAYD_DEB_DIR")
    if d == "none":
        raise unittest.SkipTest("GATEWAYD_DEB_DIR=none: the packages are tested in the other suite")
    if d:
        return d
    out = os.path.join(tmp, "debs")
    p = subprocess.run([os.path.join(procs.source_dir(), "scripts", "build-package"), out],
                       capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise AssertionError(f"scripts/build-package failed:\n{p.stdout}\n{p.stderr}")
    return out


@unittest.skipUnless(shutil.which("systemd-nspawn") and shutil.which("dpkg-buildpackage"),
                     "systemd-nspawn or dpkg-dev not installed (scripts/install-deps)")
class InstalledPackages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gatewayd-package-", dir="/var/tmp")
        cls.container = None
        try:
            debs = deb_dir(cls.tmp)
            cls.debs = {}
            for name in PACKAGES:
                hits = glob.glob(os.path.join(debs, f"{name}_*.deb"))
                if len(hits) != 1:
                    raise AssertionError(f"{name}: {len(hits)} packages in {debs}")
                cls.debs[name] = os.path.basename(hits[0])
            # The sample image, pushed to a registry on the host, whose storage the container's
            # registry then serves.
            storage = os.path.join(cls.tmp, "registry")
            reg_procs = procs.Processes()
            try:
                reg = Registry(reg_procs, cls.tmp, storage=storage).start()
                layer = images.Layer().busybox().file("usr/bin/hello", SAMPLE, mode=0o755)
                images.push_image(reg, "demo/hello", "latest",
                                  images.Image([(layer, "gzip")], entrypoint=["/usr/bin/hello"]))
            finally:
                reg_procs.stop_all()
            cls.container = Container(binds=[(debs, "/debs"), (storage, "/srv/registry-seed")],
                                      overlay=True,
                                      # Jobs get a session keyring of their own (keyctl), which
                                      # nspawn's default filter refuses.
                                      args=["--system-call-filter=@keyring"])
            cls.container.start()
            cls.install()
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def install(cls):
        c = cls.container
        # The host may forbid starting services from maintainer scripts (policy-rc.d, as in
        # build containers); a fresh machine does not.
        c.run(["rm", "-f", "/usr/sbin/policy-rc.d"])
        p = c.run(["dpkg", "-i"] + [f"/debs/{cls.debs[n]}" for n in PACKAGES], check=False, timeout=300)
        cls.dpkg_output = p.stdout + p.stderr
        if p.returncode != 0:
            raise AssertionError(f"dpkg -i failed:\n{cls.dpkg_output}")

    @classmethod
    def cleanup(cls):
        try:
            if cls.container is not None:
                cls.container.stop()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()

    def sh(self, *argv, **kw):
        return self.container.run(list(argv), **kw)

    def test_accounts_and_directories(self):
        for g in ("gatewayd-admin", "gateway-worker"):
            self.assertEqual(self.sh("getent", "group", g, check=False).returncode, 0, g)
        pw = self.sh("getent", "passwd", "gwnode").stdout.strip().split(":")
        self.assertEqual(pw[5:], ["/", "/bin/sh"])
        self.assertIn("gateway-worker", self.sh("id", "-nG", "gwnode").stdout.split())
        expect = {"/var/lib/gatewayd": "755 root root", "/run/gatewayd": "755 root root",
                  "/var/lib/gateway-worker": "755 root root",
                  "/var/lib/gateway-worker/images": "755 gwnode gwnode",
                  "/run/gateway-worker/worker.sock": "660 root gateway-worker"}
        for path, want in expect.items():
            self.assertEqual(self.sh("stat", "-c", "%a %U %G", path).stdout.strip(), want, path)

    def test_units_enabled_and_verified(self):
        for sock in ("gatewayd.socket", "gateway-worker.socket"):
            self.assertEqual(self.sh("systemctl", "is-enabled", sock).stdout.strip(), "enabled")
            # Started by the packages' postinst.
            self.assertEqual(self.sh("systemctl", "is-active", sock, check=False).stdout.strip(),
                             "active", self.dpkg_output)
        # The network listeners are installed for a site to enable, never enabled by the package.
        for sock in ("gatewayd-tcp.socket", "gatewayd-tls.socket"):
            self.assertEqual(self.sh("systemctl", "is-enabled", sock, check=False).stdout.strip(), "disabled")
        units = [f"/lib/systemd/system/{u}" for u in ("gatewayd.service", "gatewayd.socket", "gatewayd-tcp.socket",
                                                       "gatewayd-tls.socket", "gateway-worker.socket",
                                                       "gateway-worker@.service")]
        p = self.sh("systemd-analyze", "verify", *units, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_node_answers_through_ssh_forced_command(self):
        """The node account's forced command relays to the node socket, where a
        gateway-worker@ instance answers (as gatewayd's SSH session would see it)."""
        p = self.sh("setpriv", "--reuid=gwnode", "--regid=gwnode", "--init-groups", "--",
                    "/usr/libexec/gateway-worker", "connect", input='{"op":"hello"}\n', check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + self.container.journal("gateway-worker@*"))
        first = json.loads(p.stdout.splitlines()[0])
        self.assertIn("slots", json.dumps(first), p.stdout)
        # Anybody else may not connect.
        self.sh("useradd", "--no-create-home", "gwpkg-stranger")
        p = self.container.run(["/usr/libexec/gateway-worker", "connect"], user="gwpkg-stranger",
                               input='{"op":"hello"}\n', check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)

    def test_man_pages_and_completion(self):
        for doc in ("nodes.md", "worker-serve.md", "units.md.gz", "configuration.md.gz"):
            self.assertEqual(self.sh("test", "-e", f"/usr/share/doc/gatewayd/{doc}", check=False).returncode, 0, doc)
        for page in ("gatewayctl", "gatewayd", "gateway-worker", "gatewayd.json"):
            p = self.sh("man", "-w", page, check=False)
            self.assertEqual(p.returncode, 0, page + p.stderr)
            self.assertTrue(p.stdout.startswith("/usr/share/man/"), p.stdout)
        p = self.sh("bash", "-c", "source /usr/share/bash-completion/bash_completion && "
                    "_completion_loader gatewayctl; complete -p gatewayctl", check=False)
        self.assertIn("_gatewayctl", p.stdout, p.stderr)

    def test_quick_start_job(self):
        c = self.container
        # A registry inside the container, serving the sample image pushed on the host.
        self.sh("cp", "-a", "/srv/registry-seed", "/srv/registry")
        self.sh("sh", "-c", "cat > /srv/registry.yml", input=REGISTRY_CONFIG)
        self.sh("systemd-run", "--unit=test-registry", "--property=Type=exec",
                "docker-registry", "serve", "/srv/registry.yml")
        procs.wait_for(lambda: self.sh("curl", "-sf", f"http://{REGISTRY}/v2/", check=False).returncode == 0,
                       timeout=30, what="registry in the container")
        self.sh("mkdir", "-p", "/etc/gatewayd")
        self.sh("sh", "-c", "cat > /etc/gatewayd/gatewayd.json", input=json.dumps(GATEWAYD_CONFIG))
        # nspawn gives the container no loop devices; jobs loop-mount their image.
        self.sh("sh", "-c", "test -e /dev/loop-control || mknod /dev/loop-control c 10 237; "
                "for i in $(seq 0 255); do test -e /dev/loop$i || mknod /dev/loop$i b 7 $i; done")

        self.sh("systemctl", "start", "gatewayd.socket")
        journal = lambda: c.journal("gatewayd.service")  # noqa: E731
        p = self.sh("gatewayctl", "pull", "--quiet", REF, check=False, timeout=180)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + journal())
        self.assertRegex(p.stdout.strip(), r"^[0-9a-f]{64}$")
        p = self.sh("gatewayctl", "service", "create", "hello", f"--image={REF}",
                    "--description=sample service", check=False)
        self.assertEqual(p.returncode, 0, p.stderr + journal())
        self.assertIn("hello", self.sh("gatewayctl", "services").stdout)

        p = self.sh("gatewayctl", "submit", "hello", "--data=-", "--wait", input='{"n": 5}',
                    check=False, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + journal())
        self.assertEqual(json.loads(p.stdout), {"greeting": "hello from gatewayd", "input": {"n": 5}})
        self.assertEqual(self.sh("systemctl", "is-active", "gatewayd.service").stdout.strip(), "active")

        # An ordinary user: submit-job is allowed to everyone by polkit's defaults, the job
        # runs as that user, and the HTTP socket answers too.
        self.sh("useradd", "--no-create-home", "gwpkg-user")
        p = c.run(["gatewayctl", "--no-ask-password", "submit", "hello", "--wait"], user="gwpkg-user",
                  check=False, timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + journal())
        self.assertEqual(json.loads(p.stdout)["greeting"], "hello from gatewayd")
        p = c.run(["curl", "-sS", "--unix-socket", "/run/gatewayd/http.sock", "http://localhost/v1/services/hello"],
                  user="gwpkg-user", check=False)
        self.assertEqual(json.loads(p.stdout)["name"], "hello", p.stdout + p.stderr)

        # A lab member's writable layer under the installed unit (ProtectSystem=strict,
        # PrivateMounts=yes): the worker's ext4 of LabWritableMax, in gatewayd's mount namespace.
        lab = {"name": "pkglab", "members": [{"name": "m", "image": REF,
                                              "command": ["/bin/sh", "-c", "echo hi > /var/lab/hello"]}]}
        p = self.sh("gatewayctl", "lab", "put", "-", input=json.dumps(lab), check=False)
        self.assertEqual(p.returncode, 0, p.stderr + journal())
        p = c.run(["gatewayctl", "--no-ask-password", "lab", "start", "pkglab", "--json"], user="gwpkg-user", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + journal())
        inst = json.loads(p.stdout)["id"]

        def member_ended():
            out = c.run(["gatewayctl", "lab", "instance", inst, "--json"], user="gwpkg-user", check=False).stdout
            return json.loads(out) if out and json.loads(out)["state"] in ("DEGRADED", "FAILED") else None
        rec = procs.wait_for(member_ended, timeout=60, what="the lab member's end")
        self.assertEqual(rec["state"], "DEGRADED", rec)     # the member wrote its file and exited
        pid = self.sh("systemctl", "show", "-P", "MainPID", "gatewayd.service").stdout.strip()
        data = f"/var/lib/gatewayd/labs/{inst}/m.data"
        p = self.sh("nsenter", "-t", pid, "-m", "findmnt", "-n", "-b", "-o", "FSTYPE,OPTIONS,SIZE", data, check=False)
        self.assertEqual(p.returncode, 0, p.stderr + journal())
        fstype, options, size = p.stdout.split()
        self.assertEqual(fstype, "ext4")
        self.assertTrue({"nosuid", "nodev"} <= set(options.split(",")), options)
        self.assertLessEqual(int(size), 64 << 20)
        self.assertEqual(self.sh("cat", f"/proc/{pid}/root{data}/hello").stdout, "hi\n")
        p = c.run(["gatewayctl", "--no-ask-password", "lab", "stop", inst], user="gwpkg-user", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr + journal())
        procs.wait_for(lambda: self.sh("test", "-e", f"/proc/{pid}/root/var/lib/gatewayd/labs/{inst}",
                                       check=False).returncode != 0, timeout=30, what="the instance's files gone")
        self.assertNotEqual(self.sh("nsenter", "-t", pid, "-m", "findmnt", "-n", data, check=False).returncode, 0)


if __name__ == "__main__":
    unittest.main()
