"""Labs with "network": "outbound" (issue 12, docs/labs.md "Network"), without the Internet.

The test makes an "outside" network namespace, connected to the host by a veth pair with
addresses of its own (198.18.0.0/15, the benchmarking range) and a small HTTP server in it, and a
server of the host's listening on every host address. A member of an outbound lab reaches the
outside server (from its own sandbox, and curl in its namespace too), a member of a default lab
does not; an outbound member reaches no host address (the host's side of its veth, the outside
veth's host address, the host's own eth0 address), no member of another instance, and the outside
cannot reach it. DELETE removes the veth pair; when the last outbound instance is gone, the
nftables table goes and IPv4 forwarding is back as it was. A kill -9 of gatewayd keeps an outbound
instance connected, and a stale veth pair of the pool is removed at the next start."""
import json
import os
import signal
import socket
import subprocess
import threading
import unittest

from harness import images, procs, users
from test_labs import InstancesBase

POOL_OCTET = 200 + os.getpid() % 50
POOL = f"10.{POOL_OCTET}.7.0/26"    # 16 slots; another octet per test run on a shared host
OUT_OCTET = os.getpid() % 250 + 2
OUT_NET = f"198.18.{OUT_OCTET}"
OUT_NS = f"/run/netns/gwtest-out-{os.getpid()}"
OUT_IF = f"gwtout{os.getpid() % 100000}"
FORWARD = "/proc/sys/net/ipv4/ip_forward"

# Serves its own page on 8080 and fetches the outside page once it can (written as the member,
# in its writable layer). (No "wget -T": busybox 1.35 crashes on it.)
MEMBER_CMD = ["/bin/sh", "-c", "mkdir -p /var/lab/www && echo \"member $HOSTNAME\" > /var/lab/www/index.html;"
              " (until wget -q -O /var/lab/out.tmp http://$OUTSIDE/; do sleep 0.2; done;"
              " mv /var/lab/out.tmp /var/lab/out.html) & exec httpd -f -p 8080 -h /var/lab/www"]


def sh(*cmd, ns=None, check=True):
    if ns:
        cmd = ("nsenter", f"--net={ns}") + cmd
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=30)


def lab_links(pool_prefix):
    """The host's lab veths of this test's pool ("gwl" + the hex of their host-side address)."""
    return sorted(n for n in os.listdir("/sys/class/net")
                  if n.startswith("gwl") and len(n) == 11 and n[3:9] == pool_prefix)


def table_exists():
    p = sh("nft", "list", "tables", check=False)
    return f"gatewayd_labs_{pool_hex()}_26" in p.stdout


def pool_hex():
    return "0a%02x0700" % POOL_OCTET


def eth_address():
    """A global address of the host's own (not one of the test's)."""
    for link in json.loads(sh("ip", "-j", "-4", "addr").stdout):
        for a in link.get("addr_info", []):
            if link["ifname"] != "lo" and not link["ifname"].startswith(("gwl", "gwtout")):
                return a["local"]
    return None


def ns_address(netns):
    """The instance's own address (its eth0), as the instance sees it."""
    for link in json.loads(sh("ip", "-j", "-4", "addr", "show", "dev", "eth0", ns=netns).stdout):
        for a in link.get("addr_info", []):
            return a["local"]
    return None


class OutboundNetwork(InstancesBase):
    extra_config = {"LabNetworkPool": POOL, "LabInstancesPerUser": 4}

    @classmethod
    def setUpClass(cls):
        with open(FORWARD) as f:
            cls.forward_before = f.read().strip()
        cls.outside_server = cls.host_any = None
        cls.oprocs = procs.Processes()
        try:
            cls._make_outside()
            super().setUpClass()
            web = images.Layer().busybox(("sh", "mkdir", "echo", "wget", "sleep", "mv", "httpd"))
            images.push_image(cls.registry, "labs/net", "1", images.Image([(web, "gzip")]))
            ref = f"{cls.registry.host}/labs/net:1"
            member = {"name": "probe", "image": ref, "command": MEMBER_CMD, "ports": [{"port": 8080, "kind": "http"}],
                      "env": {"OUTSIDE": f"{OUT_NET}.2:{cls.outside_port}"}}
            cls.outbound = cls._put_lab(cls, "out", [member], network="outbound")
            cls.closed = cls._put_lab(cls, "closed", [member])
        except BaseException:
            cls._remove_outside()
            raise

    @classmethod
    def _make_outside(cls):
        """The outside world: a namespace behind a veth, with a web server; and a server of the
        host's on every address."""
        os.makedirs("/run/netns", exist_ok=True)
        sh("ip", "netns", "add", os.path.basename(OUT_NS))
        sh("ip", "link", "add", OUT_IF, "type", "veth", "peer", "name", "eth0", "netns", OUT_NS)
        sh("ip", "addr", "add", f"{OUT_NET}.1/24", "dev", OUT_IF)
        sh("ip", "link", "set", OUT_IF, "up")
        for cmd in (["ip", "addr", "add", f"{OUT_NET}.2/24", "dev", "eth0"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "link", "set", "lo", "up"], ["ip", "route", "add", "default", "via", f"{OUT_NET}.1"]):
            sh(*cmd, ns=OUT_NS)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            cls.outside_port = s.getsockname()[1]
        cls.outside_dir = procs.TempDir(prefix="gatewayd-outside-")
        with open(os.path.join(cls.outside_dir.path, "index.html"), "w") as f:
            f.write("the outside world\n")
        cls.oprocs.start(["nsenter", f"--net={OUT_NS}", "python3", "-m", "http.server", "--bind", f"{OUT_NET}.2",
                          "--directory", cls.outside_dir.path, str(cls.outside_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.wait_for(lambda: sh("curl", "-sS", "--max-time", "1", f"http://{OUT_NET}.2:{cls.outside_port}/",
                                  ns=OUT_NS, check=False).returncode == 0, timeout=20, what="outside server")
        cls.host_any = socket.create_server(("0.0.0.0", 0))
        cls.host_any_port = cls.host_any.getsockname()[1]
        threading.Thread(target=cls._serve_any, daemon=True).start()

    @classmethod
    def _serve_any(cls):
        while True:
            try:
                c, _ = cls.host_any.accept()
            except OSError:
                return
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nhost")
            c.close()

    @classmethod
    def _remove_outside(cls):
        if cls.host_any is not None:
            cls.host_any.close()
        cls.oprocs.stop_all()
        sh("ip", "link", "del", OUT_IF, check=False)
        sh("ip", "netns", "del", os.path.basename(OUT_NS), check=False)
        if hasattr(cls, "outside_dir"):
            cls.outside_dir.cleanup()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._remove_outside()
            leftovers = lab_links(pool_hex()[:6])
            assert not leftovers, f"lab veths left behind: {leftovers}"
            assert not table_exists(), "nftables table left behind"
            with open(FORWARD) as f:
                assert f.read().strip() == cls.forward_before, "ip_forward not restored"

    def outside_url(self):
        return f"http://{OUT_NET}.2:{self.outside_port}/"

    def fetch(self, netns, url):
        return self.fetch_in_netns(netns, url)

    def test_outbound_but_not_to_the_host_or_other_instances(self):
        a = self.start(self.outbound)
        b = self.start(self.outbound)
        arec = self.await_state(a["id"], ("RUNNING",))
        brec = self.await_state(b["id"], ("RUNNING",))
        ans, bns = arec["networkNamespace"], brec["networkNamespace"]

        # The member itself (as the user, in the job sandbox) reaches the outside world.
        try:
            self.assertEqual(self.read_member_file(a["id"], "probe", "out.html"), "the outside world\n")
        except TimeoutError:
            with open(os.path.join(self.gw.state_dir, "labs", a["id"], "probe.spool", "log"), errors="replace") as f:
                self.fail("the member did not reach the outside: " + f.read()[-2000:])
        self.assertEqual(self.await_fetch(ans, self.outside_url()), "the outside world\n")
        # Each instance has its own /30 of the pool, and a veth pair of its own.
        aaddr, baddr = ns_address(ans), ns_address(bns)
        self.assertTrue(aaddr.startswith(f"10.{POOL_OCTET}.7."), aaddr)
        self.assertNotEqual(aaddr, baddr)
        self.assertEqual(len(lab_links(pool_hex()[:6])), 2)
        self.assertEqual(open(FORWARD).read().strip(), "1")

        # The host's server answers from the outside (so it listens)...
        host_out = f"{OUT_NET}.1"
        self.assertEqual(sh("curl", "-sS", "--max-time", "2", f"http://{host_out}:{self.host_any_port}/",
                            ns=OUT_NS).stdout, "host")
        # ... but not to an instance: not on the outside veth's address, not on the host's own
        # address, not on the host's side of the instance's veth, not on the instance's loopback.
        gateway = aaddr.rsplit(".", 1)[0] + "." + str(int(aaddr.rsplit(".", 1)[1]) - 1)
        host_addrs = [host_out, gateway, "127.0.0.1"] + ([eth_address()] if eth_address() else [])
        for addr in host_addrs:
            self.assertIsNone(self.fetch(ans, f"http://{addr}:{self.host_any_port}/"), addr)
        # Another instance is not reachable (its server answers inside its own namespace).
        self.assertEqual(self.await_fetch(bns, f"http://{baddr}:8080/"), "member probe\n")
        self.assertIsNone(self.fetch(ans, f"http://{baddr}:8080/"))
        # Nor can the outside reach an instance, even with a route to the pool.
        sh("ip", "route", "add", POOL, "via", host_out, ns=OUT_NS)
        self.assertIsNone(self.fetch(OUT_NS, f"http://{aaddr}:8080/"))
        # Nor the host itself (only the proxy, from inside the namespace).
        self.assertIsNone(self.fetch("/proc/1/ns/net", f"http://{aaddr}:8080/"))

        # A default lab has no way out.
        c = self.start(self.closed)
        crec = self.await_state(c["id"], ("RUNNING",))
        self.assertEqual(self.await_fetch(crec["networkNamespace"], "http://127.0.0.1:8080/"), "member probe\n")
        self.assertIsNone(self.fetch(crec["networkNamespace"], self.outside_url()))
        self.assertFalse(os.path.exists(os.path.join(self.member_dir(c["id"], "probe"), "out.html")))
        self.assertEqual(len(lab_links(pool_hex()[:6])), 2, "no veth for a default lab")

        # DELETE takes the veth pair; the last outbound instance takes the table and forwarding.
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{a['id']}", as_user=users.USER).status, 204)
        procs.wait_for(lambda: self.get(a["id"]).status == 404, timeout=30, what="instance gone")
        self.assertEqual(len(lab_links(pool_hex()[:6])), 1)
        self.assertTrue(table_exists())
        self.assertEqual(self.await_fetch(bns, self.outside_url()), "the outside world\n")
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{b['id']}", as_user=users.USER).status, 204)
        procs.wait_for(lambda: self.get(b["id"]).status == 404, timeout=30, what="instance gone")
        self.assertEqual(lab_links(pool_hex()[:6]), [])
        self.assertFalse(table_exists())
        self.assertEqual(open(FORWARD).read().strip(), self.forward_before)
        self.assertServing()

    def test_survives_kill_and_prunes_stale_links(self):
        a = self.start(self.outbound)
        arec = self.await_state(a["id"], ("RUNNING",))
        ans = arec["networkNamespace"]
        self.assertEqual(self.await_fetch(ans, self.outside_url()), "the outside world\n")
        # A veth pair of the pool that no instance holds (as a crash between an instance's end
        # and its teardown leaves one): slot 15's.
        stale = "gwl%s%02x" % (pool_hex()[:6], 0x3d)
        sh("ip", "link", "add", stale, "type", "veth", "peer", "name", stale + "p")
        self.gw.kill(signal.SIGKILL)
        self.gw.start()
        self.assertEqual(self.get(a["id"]).json["state"], "RUNNING")
        self.assertNotIn(stale, os.listdir("/sys/class/net"))
        self.assertEqual(len(lab_links(pool_hex()[:6])), 1)
        self.assertEqual(self.await_fetch(ans, self.outside_url()), "the outside world\n")
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{a['id']}", as_user=users.USER).status, 204)
        procs.wait_for(lambda: self.get(a["id"]).status == 404, timeout=30, what="instance gone")
        self.assertEqual(lab_links(pool_hex()[:6]), [])
        self.assertFalse(table_exists())

    def test_bad_network_values(self):
        for value, what in (("inbound", "network"), (1, "network"), (True, "network")):
            r = self.gw.http("PUT", "/v1/labs/bad-net", {"members": [{"name": "x", "image": "alpine"}], "network": value})
            self.assertError(r, 400, "InvalidArgument", what)
        r = self.gw.http("GET", f"/v1/labs/{self.outbound}")
        self.assertEqual(r.json["network"], "outbound")
        self.assertEqual(self.gw.http("GET", f"/v1/labs/{self.closed}").json["network"], "none")
        self.assertServing()


if __name__ == "__main__":
    unittest.main()
