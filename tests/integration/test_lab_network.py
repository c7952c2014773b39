"""Labs with "network": "outbound" (issue 12, docs/labs.md "Network"), without the Internet.

The test makes an "outside" network namespace, connected to the host by a veth pair with
addresses of its own (198.18.0.0/15, the benchmarking range) and a small HTTP server in it, and a
server of the host's listening on every host address. A member of an outbound lab reaches the
outside server (from its own sandbox, and curl in its namespace too), a member of a default lab
does not; an outbound member reaches no host address (the host's side of its veth, the outside
veth's host address, the host's own eth0 address), no member of another instance, and the outside
cannot reach it. DELETE removes the veth pair; when the last outbound instance is gone, the
nftables table goes and IPv4 forwarding is back as it was. A kill -9 of gatewayd keeps an outbound
instance connected, and a stale veth pair of the pool is removed at the next start.

Names: the outside has a DNS server of its own (harness/dnsserver.py) that knows the outside
server's name. An outbound member resolves it and fetches by name, with the name server given by
LabNameServers (OutboundNetwork) or, by default, taken from the host's files (HostResolver:
gatewayd in a mount namespace whose /etc/resolv.conf names systemd-resolved's stub and whose
/run/systemd/resolve/resolv.conf names the outside's server); a default lab's member has no
resolver. ForwardingOff: gatewayd where /proc/sys is read-only (as ProtectKernelTunables=yes makes
it) and forwarding is off refuses an outbound instance with 503 and what to do, and makes nothing."""
import json
import os
import signal
import socket
import subprocess
import threading
import unittest

from harness import images, openapi, procs, users
from harness.procs import source_dir
from harness.hostlock import HostLock
from harness.stack import StackTestCase
from test_labs import InstancesBase

POOL_OCTET = 200 + os.getpid() % 50
POOL = f"10.{POOL_OCTET}.7.0/26"    # 16 slots; another octet per test run on a shared host
OUT_OCTET = os.getpid() % 250 + 2
OUT_NET = f"198.18.{OUT_OCTET}"
OUT_NS = f"/run/netns/gwtest-out-{os.getpid()}"
OUT_IF = f"gwtout{os.getpid() % 100000}"
FORWARD = "/proc/sys/net/ipv4/ip_forward"
OUT_NAME = "outside.gwtest.test"    # the outside server's name: only the outside's DNS server knows it
DNS_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness", "dnsserver.py")

# Serves its own page on 8080 and fetches the outside page once it can (written as the member,
# in its writable layer). (No "wget -T": busybox 1.35 crashes on it.)
MEMBER_CMD = ["/bin/sh", "-c", "mkdir -p /var/lab/www && echo \"member $HOSTNAME\" > /var/lab/www/index.html;"
              " (until wget -q -O /var/lab/out.tmp http://$OUTSIDE/; do sleep 0.2; done;"
              " mv /var/lab/out.tmp /var/lab/out.html) & exec httpd -f -p 8080 -h /var/lab/www"]

# What the member's resolver says: its /etc/resolv.conf, nslookup of the outside server's name,
# and the outside page fetched by name (retried: the first answer may take a moment).
RESOLVE_CMD = ["/bin/sh", "-c", "if [ -e /etc/resolv.conf ]; then cat /etc/resolv.conf; else echo none; fi > /var/lab/resolv.tmp;"
               " mv /var/lab/resolv.tmp /var/lab/resolv; nslookup $NAME > /var/lab/ns.tmp 2>&1; echo \"rc=$?\" >> /var/lab/ns.tmp;"
               " mv /var/lab/ns.tmp /var/lab/nslookup; (until wget -q -O /var/lab/byname.tmp http://$NAME:$PORT/; do sleep 0.2; done;"
               " mv /var/lab/byname.tmp /var/lab/byname) & exec sleep 100000"]


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


def resolver_lines(text):
    """A resolv.conf without its comments."""
    return [line for line in text.splitlines() if line and not line.startswith("#")]


class OutboundBase(InstancesBase):
    """The outside world (a namespace with a web and a DNS server), labs "out" (outbound),
    "closed" (default), "names" and "nonames" (the same with RESOLVE_CMD)."""
    extra_config = {"LabNetworkPool": POOL, "LabInstancesPerUser": 4}

    @classmethod
    def setUpClass(cls):
        # The host's IP forwarding, which gatewayd turns on for outbound instances and off after
        # them, is one for both suites: their outbound classes take turns.
        cls.forward_lock = HostLock("ip-forward")
        with open(FORWARD) as f:
            cls.forward_before = f.read().strip()
        cls.outside_server = cls.host_any = None
        cls.oprocs = procs.Processes()
        try:
            cls._make_outside()
            super().setUpClass()
            web = images.Layer().busybox(("sh", "mkdir", "echo", "wget", "sleep", "mv", "httpd", "cat", "nslookup"))
            images.push_image(cls.registry, "labs/net", "1", images.Image([(web, "gzip")]))
            ref = f"{cls.registry.host}/labs/net:1"
            member = {"name": "probe", "image": ref, "command": MEMBER_CMD, "ports": [{"port": 8080, "kind": "http"}],
                      "env": {"OUTSIDE": f"{OUT_NET}.2:{cls.outside_port}"}}
            cls.outbound = cls._put_lab(cls, "out", [member], network="outbound")
            cls.closed = cls._put_lab(cls, "closed", [member])
            resolver = {"name": "probe", "image": ref, "command": RESOLVE_CMD,
                        "env": {"NAME": OUT_NAME, "PORT": str(cls.outside_port)}}
            cls.names = cls._put_lab(cls, "names", [resolver], network="outbound")
            cls.nonames = cls._put_lab(cls, "nonames", [resolver])
        except BaseException:
            cls._remove_outside()
            cls.forward_lock.release()
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
        dns = cls.oprocs.start(["nsenter", f"--net={OUT_NS}", "python3", DNS_SERVER, f"{OUT_NET}.2", "53",
                                f"{OUT_NAME}={OUT_NET}.2"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert procs.read_line_from_fd(dns.stdout.fileno()) == "ready", "DNS server did not start"
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
            try:
                cls._remove_outside()
                leftovers = lab_links(pool_hex()[:6])
                assert not leftovers, f"lab veths left behind: {leftovers}"
                assert not table_exists(), "nftables table left behind"
                with open(FORWARD) as f:
                    assert f.read().strip() == cls.forward_before, "ip_forward not restored"
            finally:
                cls.forward_lock.release()

    def outside_url(self):
        return f"http://{OUT_NET}.2:{self.outside_port}/"

    def fetch(self, netns, url):
        return self.fetch_in_netns(netns, url)

    def member_log(self, id_):
        try:
            with open(os.path.join(self.gw.state_dir, "labs", id_, "probe.spool", "log"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError as e:
            return str(e)

    def assertResolves(self, id_):
        """The outbound member resolved OUT_NAME to the outside server and fetched its page by name."""
        ns = self.read_member_file(id_, "probe", "nslookup")
        self.assertIn(f"Address: {OUT_NET}.2", ns)
        self.assertIn("rc=0", ns)
        try:
            self.assertEqual(self.read_member_file(id_, "probe", "byname"), "the outside world\n")
        except TimeoutError:
            self.fail("the member did not fetch the outside page by name: " + self.member_log(id_))

    def assertNoResolver(self, id_):
        """A default lab's member: no /etc/resolv.conf (not the image's, not the host's), no answer."""
        self.assertEqual(self.read_member_file(id_, "probe", "resolv"), "none\n")
        ns = self.read_member_file(id_, "probe", "nslookup")
        self.assertNotIn(f"Address: {OUT_NET}.2", ns)
        self.assertNotIn("rc=0", ns)


class OutboundNetwork(OutboundBase):
    extra_config = {**OutboundBase.extra_config, "LabNameServers": [f"{OUT_NET}.2"]}

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

    def test_names_through_lab_name_servers(self):
        a = self.start(self.names)
        c = self.start(self.nonames)
        self.assertEqual(resolver_lines(self.read_member_file(a["id"], "probe", "resolv")), [f"nameserver {OUT_NET}.2"])
        self.assertResolves(a["id"])
        self.assertNoResolver(c["id"])
        self.assertServing()

    def test_bad_network_values(self):
        for value, what in (("inbound", "network"), (1, "network"), (True, "network")):
            r = self.gw.http("PUT", "/v1/labs/bad-net", {"members": [{"name": "x", "image": "alpine"}], "network": value})
            self.assertError(r, 400, "InvalidArgument", what)
        r = self.gw.http("GET", f"/v1/labs/{self.outbound}")
        self.assertEqual(r.json["network"], "outbound")
        self.assertEqual(self.gw.http("GET", f"/v1/labs/{self.closed}").json["network"], "none")
        self.assertServing()


class PoolFull(OutboundBase):
    """A LabNetworkPool of four /30s (/28): a fifth outbound instance is refused with 503 before anything
    is made (instances that are still starting hold their address), other labs start, and the
    address is free again once an instance has ended."""
    extra_config = {**OutboundBase.extra_config, "LabNetworkPool": f"10.{POOL_OCTET}.7.0/28"}

    def test_full_pool_refused(self):
        held = [self.start(self.outbound) for _ in range(4)]
        r = self.gw.http("POST", f"/v1/labs/{self.outbound}/instances", as_user=users.OTHER)
        self.assertError(r, 503, "Unavailable", "all 4 addresses of LabNetworkPool are in use")
        schema = self.validator.response_schema("/v1/labs/{name}/instances", "post", 503)
        self.assertEqual(self.validator.check(schema, r.json), [], r.body)
        self.assertEqual(self.gw.http("GET", "/v1/lab-instances", as_user=users.OTHER).json["instances"], [])
        _, err = self.gw.gdbus_call("StartLabInstance", self.outbound, as_user=users.OTHER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.Unavailable")
        for x in held:
            self.await_state(x["id"], ("RUNNING",))
        self.assertEqual(len(lab_links(pool_hex()[:6])), 4)

        # A lab without network does not need the pool.
        self.await_state(self.start(self.closed, as_user=users.OTHER)["id"], ("RUNNING",), as_user=users.OTHER)
        # Once one has ended, its address goes to the next.
        a = held[0]
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{a['id']}", as_user=users.USER).status, 204)
        procs.wait_for(lambda: self.get(a["id"]).status == 404, timeout=30, what="instance gone")
        c = self.start(self.outbound, as_user=users.OTHER)
        self.await_state(c["id"], ("RUNNING",), as_user=users.OTHER)
        self.assertEqual(self.await_fetch(self.get(c["id"], users.OTHER).json["networkNamespace"], self.outside_url()),
                         "the outside world\n")
        self.assertServing()


class HostResolver(OutboundBase):
    """No LabNameServers: the members get the host's upstream name servers. gatewayd runs in a
    mount namespace of its own where /etc/resolv.conf names only systemd-resolved's stub (as on a
    host with systemd-resolved) and /run/systemd/resolve/ is a directory of the test's (its
    resolv.conf names the outside's DNS server). The instances' namespace files are then only in
    gatewayd's mount namespace: these tests look at the members' own files only."""

    @classmethod
    def setUpClass(cls):
        if os.path.islink("/etc/resolv.conf"):
            raise unittest.SkipTest("/etc/resolv.conf is a symlink: cannot be replaced in a mount namespace")
        cls.files = procs.TempDir(prefix="gatewayd-resolv-")
        stub = os.path.join(cls.files.path, "resolv.conf")
        cls.upstream = os.path.join(cls.files.path, "systemd", "resolve", "resolv.conf")
        os.makedirs(os.path.dirname(cls.upstream))
        with open(stub, "w") as f:
            f.write("# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch stub.test\n")
        with open(cls.upstream, "w") as f:
            f.write(f"nameserver {OUT_NET}.2\nnameserver ::1\nsearch upstream.test\n")
        systemd = os.path.dirname(os.path.dirname(cls.upstream))
        cls.wrapper = ("unshare", "-m", "--propagation", "slave", "sh", "-c",
                       f"set -e; mount --bind {stub} /etc/resolv.conf;"
                       f" if [ ! -d /run/systemd ]; then mount -t tmpfs tmpfs /run; mkdir /run/systemd; fi;"
                       f" mount --bind {systemd} /run/systemd; exec \"$@\"", "sh")
        try:
            super().setUpClass()
        except BaseException:
            cls.files.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.files.cleanup()

    def test_upstream_name_servers_behind_the_stub(self):
        a = self.start(self.names)
        self.assertEqual(resolver_lines(self.read_member_file(a["id"], "probe", "resolv")),
                         [f"nameserver {OUT_NET}.2", "search upstream.test"])
        self.assertResolves(a["id"])
        self.assertNoResolver(self.start(self.nonames)["id"])
        self.assertServing()

    def test_only_loopback_name_servers(self):
        """Without an upstream file the stub is all the host has: the instance starts, and its
        members' resolv.conf and gatewayd's log say why there is no name server."""
        os.rename(self.upstream, self.upstream + ".off")
        self.addCleanup(os.rename, self.upstream + ".off", self.upstream)
        a = self.start(self.names)
        text = self.read_member_file(a["id"], "probe", "resolv")
        self.assertEqual(resolver_lines(text), [], text)
        for what in ("no name server", "/etc/resolv.conf names only loopback", "/run/systemd/resolve/resolv.conf",
                     "LabNameServers", "docs/labs.md"):
            self.assertIn(what, text)
        self.assertIn(f"Lab instance {a['id']}: no name server for outbound lab members:", self.gw.stderr_text())
        self.assertNotIn("rc=0", self.read_member_file(a["id"], "probe", "nslookup"))
        self.assertEqual(self.await_state(a["id"], ("RUNNING",))["state"], "RUNNING")
        self.assertServing()


class ForwardingOff(StackTestCase):
    """gatewayd.service has ProtectKernelTunables=yes: /proc/sys is read-only, and gatewayd
    cannot turn IPv4 forwarding on. Here gatewayd runs in a network namespace of its own with
    forwarding off (the host's stays as it is) and a mount namespace where /proc/sys is
    read-only, as the unit makes it. An outbound instance is refused on every surface with 503
    and what to do; nothing is made; other labs and the daemon are unaffected."""
    config = {"LabNetworkPool": f"10.{POOL_OCTET}.8.0/26"}
    wrapper = ("unshare", "-m", "-n", "--propagation", "slave", "sh", "-c",
               "set -e; echo 0 > /proc/sys/net/ipv4/ip_forward; mount --bind /proc/sys /proc/sys;"
               " mount -o remount,bind,ro /proc/sys; exec \"$@\"", "sh")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.validator = openapi.Validator(openapi.load(os.path.join(source_dir(), "docs", "openapi.yaml")))
        cls.out = f"fwd-out-{os.getpid() % 10000}"
        cls.closed = f"fwd-closed-{os.getpid() % 10000}"
        for name, kw in ((cls.out, {"network": "outbound"}), (cls.closed, {})):
            r = cls.gw.http("PUT", f"/v1/labs/{name}", {"members": [{"name": "web", "image": "registry.example.org/labs/web:1"}], **kw})
            assert r.status in (200, 201), r.body

    def in_gatewayd_netns(self, *cmd):
        return sh("nsenter", f"--net=/proc/{self.gw.pid()}/ns/net", *cmd).stdout

    def assertNothingMade(self):
        for user in (users.USER, "root"):
            self.assertEqual(self.gw.http("GET", "/v1/lab-instances", as_user=user).json["instances"], [])
        labs = os.path.join(self.gw.state_dir, "labs")
        self.assertEqual(os.listdir(labs) if os.path.isdir(labs) else [], [])
        runtime = os.path.join(self.gw.runtime_dir, "labs")
        self.assertEqual([n for n in (os.listdir(runtime) if os.path.isdir(runtime) else []) if n.endswith(".netns")], [])
        self.assertEqual(self.in_gatewayd_netns("cat", FORWARD).strip(), "0")
        self.assertNotIn("gatewayd_labs", self.in_gatewayd_netns("nft", "list", "tables"))
        self.assertNotIn("gwl", self.in_gatewayd_netns("ip", "-o", "link"))

    def test_outbound_refused_with_what_to_do(self):
        r = self.gw.http("POST", f"/v1/labs/{self.out}/instances", as_user=users.USER)
        self.assertError(r, 503, "Unavailable", "net.ipv4.ip_forward=1")
        msg = r.json["error"]["message"]
        for what in (self.out, "IPv4 forwarding is off", "read-only", "ProtectKernelTunables", "/etc/sysctl.d/",
                     "docs/labs.md"):
            self.assertIn(what, msg)
        schema = self.validator.response_schema("/v1/labs/{name}/instances", "post", 503)
        self.assertEqual(self.validator.check(schema, r.json), [], r.body)
        self.assertNothingMade()

        # D-Bus: the same refusal by its error name.
        _, err = self.gw.gdbus_call("StartLabInstance", self.out, as_user=users.USER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.Unavailable")
        # LabOrchestrator's API: DRF's {"detail"} with the same message.
        labs = self.gw.http("GET", "/api/labs/", as_user=users.USER).json
        pk = [lab["id"] for lab in labs if lab["name"] == self.out][0]
        r = self.gw.http("POST", "/api/lab_instances/", {"lab": pk}, as_user=users.USER)
        self.assertEqual(r.status, 503, r.body)
        self.assertEqual(list(r.json), ["detail"])
        self.assertIn("net.ipv4.ip_forward=1", r.json["detail"])
        self.assertNothingMade()

        # A lab without network is not affected, and the daemon serves on.
        r = self.gw.http("POST", f"/v1/labs/{self.closed}/instances", as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{r.json['id']}", as_user=users.USER).status, 204)
        procs.wait_for(lambda: self.gw.http("GET", f"/v1/lab-instances/{r.json['id']}", as_user=users.USER).status == 404,
                       timeout=30, what="instance gone")
        self.assertServing()


if __name__ == "__main__":
    unittest.main()
