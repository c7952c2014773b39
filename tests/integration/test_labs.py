"""Labs (issue 12).

Definitions over HTTP — create/replace with PUT, list, get, remove; the polkit action
org.gatewayd.manage-labs (root and gatewayd-admin members yes, ordinary users no, reading open
to all); strict validation of every field (400 InvalidArgument naming the field); definitions
survive a kill -9 of gatewayd.

Instances with real images (busybox-static from Debian, pushed to a real registry, pulled and
converted to squashfs by gatewayd): members run as the user in the job sandbox, in a network
namespace of the instance's own (checked from the host with nsenter), reach each other by name,
reach nothing of the host; a member that exits makes the instance DEGRADED; others' instances
are 404; LabInstancesPerUser → 429; DELETE leaves no process, namespace or file; the lifetime
ends an instance; kill -9 of gatewayd leaves instances RUNNING and deletable after the restart.
Every answer is checked against docs/openapi.yaml."""
import copy
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import images, openapi, procs, rootfs, users
from harness.procs import source_dir
from harness.registry import Proxy, Registry
from harness.stack import StackTestCase

MANAGE = "org.gatewayd.manage-labs"


def lab(name=None, **kw):
    d = {
        "description": "A web server and a client",
        "instructions": "# Welcome\n\nOpen **web** on port 8080.",
        "lifetime": "1:00:00",
        "limits": {"memory": "256M", "tasks": 128},
        "members": [
            {"name": "web", "image": "registry.example.org/labs/web:1", "command": ["httpd", "-f", "-p", "8080"],
             "env": {"GREETING": "hi"}, "ports": [{"port": 8080, "kind": "http"}]},
            {"name": "client", "image": "registry.example.org/labs/client:1",
             "ports": [{"port": 5900, "kind": "vnc"}, {"port": 22, "kind": "tcp"}]},
        ],
    }
    if name is not None:
        d["name"] = name
    d.update(kw)
    return d


class Definitions(StackTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = openapi.load(os.path.join(source_dir(), "docs", "openapi.yaml"))
        cls.validator = openapi.Validator(cls.api)

    def check_schema(self, r, path, method):
        """The answer is documented (status and body) in docs/openapi.yaml."""
        schema = self.validator.response_schema(path, method, r.status)
        if schema is not None:
            self.assertEqual(self.validator.check(schema, r.json), [], f"{method} {path} {r.status}: {r.body}")

    def put(self, name, body, as_user=None):
        r = self.gw.http("PUT", f"/v1/labs/{name}", body, as_user=as_user)
        self.check_schema(r, "/v1/labs/{name}", "put")
        return r

    def test_create_get_list_replace_remove(self):
        name = self.name("lab")
        r = self.put(name, lab())
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.headers.get("location"), f"/v1/labs/{name}")
        rec = r.json
        self.assertEqual(rec["name"], name)
        self.assertEqual(rec["lifetime"], 3600)
        self.assertEqual(rec["limits"], {"memory": 256 << 20, "tasks": 128})
        self.assertEqual([m["name"] for m in rec["members"]], ["web", "client"])
        self.assertEqual(rec["members"][0]["env"], {"GREETING": "hi"})
        self.assertEqual(rec["members"][1]["command"], None)
        self.assertEqual(rec["members"][1]["ports"], [{"port": 5900, "kind": "vnc"}, {"port": 22, "kind": "tcp"}])
        self.assertEqual(rec["instructions"], lab()["instructions"])

        for user in ("root", users.USER):
            r = self.gw.http("GET", f"/v1/labs/{name}", as_user=user)
            self.assertEqual(r.status, 200, r.body)
            self.check_schema(r, "/v1/labs/{name}", "get")
            self.assertEqual(r.json, rec)
            r = self.gw.http("GET", "/v1/labs", as_user=user)
            self.assertEqual(r.status, 200, r.body)
            self.check_schema(r, "/v1/labs", "get")
            self.assertIn(rec, r.json["labs"])
            names = [x["name"] for x in r.json["labs"]]
            self.assertEqual(names, sorted(names))

        # PUT replaces the whole definition; defaults come back; a GET result can be sent back.
        r = self.put(name, {"members": [{"name": "only", "image": "alpine"}]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["lifetime"], 4 * 3600, "default lifetime 4 h")
        self.assertEqual(r.json["limits"], {"memory": None, "tasks": None})
        self.assertEqual(r.json["description"], "")
        self.assertEqual(r.json["members"], [{"name": "only", "image": "alpine", "command": None, "env": {},
                                              "ports": []}])
        self.assertEqual(r.json["createdAt"], rec["createdAt"])
        self.assertGreater(r.json["updatedAt"], rec["updatedAt"])
        again = self.put(name, r.json)
        self.assertEqual(again.status, 200, again.body)
        self.assertEqual({k: v for k, v in again.json.items() if k != "updatedAt"},
                         {k: v for k, v in r.json.items() if k != "updatedAt"})

        r = self.gw.http("DELETE", f"/v1/labs/{name}")
        self.assertEqual(r.status, 204, r.body)
        self.assertError(self.gw.http("GET", f"/v1/labs/{name}"), 404, "NotFound", name)
        self.assertError(self.gw.http("DELETE", f"/v1/labs/{name}"), 404, "NotFound", name)
        self.assertNotIn(name, [x["name"] for x in self.gw.http("GET", "/v1/labs").json["labs"]])

    def test_authorization(self):
        """manage-labs: root and gatewayd-admin members, not ordinary users (403 before the body
        is looked at); reading is open."""
        for user in ("root", users.ADMIN):
            name = self.name("lab")
            self.assertEqual(self.put(name, lab(), as_user=user).status, 201)
            self.assertEqual(self.put(name, lab(description="x"), as_user=user).status, 200)
            self.assertEqual(self.gw.http("DELETE", f"/v1/labs/{name}", as_user=user).status, 204)
        name = self.name("lab")
        self.assertEqual(self.put(name, lab()).status, 201)
        for user in (users.USER, users.OTHER):
            self.assertError(self.put(self.name("lab"), lab(), as_user=user), 403, "AccessDenied")
            self.assertError(self.put(name, lab(description="mine"), as_user=user), 403, "AccessDenied")
            self.assertError(self.put(name, "not even JSON", as_user=user), 403, "AccessDenied")
            self.assertError(self.gw.http("DELETE", f"/v1/labs/{name}", as_user=user), 403, "AccessDenied")
            self.assertEqual(self.gw.http("GET", f"/v1/labs/{name}", as_user=user).json["description"],
                             lab()["description"])
        self.assertEqual(self.gw.http("DELETE", f"/v1/labs/{name}").status, 204)

    def test_bad_definitions(self):
        name = self.name("lab")
        member = lab()["members"][0]

        def with_member(**kw):
            m = copy.deepcopy(member)
            m.update(kw)
            return lab(members=[m])

        def without(d, key):
            d = copy.deepcopy(d)
            d.pop(key)
            return d

        cases = [
            (["not an object"], "lab spec"),
            (lab(name="other"), "name"),
            (lab(colour="blue"), "colour"),
            (lab(description=1), "description"),
            (lab(description="x" * 1025), "description"),
            (lab(instructions="x" * (64 * 1024 + 1)), "instructions"),
            (lab(lifetime=0), "lifetime"),
            (lab(lifetime=-5), "lifetime"),
            (lab(lifetime=31 * 86400), "lifetime"),
            (lab(lifetime="soon"), "lifetime"),
            (lab(lifetime=1.5), "lifetime"),
            (lab(limits={"memory": 1}), "limits.memory"),
            (lab(limits={"memory": "lots"}), "limits.memory"),
            (lab(limits={"memory": "2T"}), "limits.memory"),
            (lab(limits={"tasks": 0}), "limits.tasks"),
            (lab(limits={"tasks": 65537}), "limits.tasks"),
            (lab(limits={"tasks": "1"}), "limits.tasks"),
            (lab(limits={"cpus": 1}), "limits.cpus"),
            (lab(limits=[]), "limits"),
            (without(lab(), "members"), "members"),
            (lab(members=[]), "members"),
            (lab(members={}), "members"),
            (lab(members=[member] * 17), "members"),
            (lab(members=[member, dict(member, image="alpine")]), "members[1].name"),
            (lab(members=["web"]), "members[0]"),
            (lab(members=[without(member, "name")]), "members[0].name"),
            (lab(members=[without(member, "image")]), "members[0].image"),
            (with_member(name="Web"), "members[0].name"),
            (with_member(name="-web"), "members[0].name"),
            (with_member(name="w" * 64), "members[0].name"),
            (with_member(name="a.b"), "members[0].name"),
            (with_member(image="a b"), "members[0].image"),
            (with_member(image="Upper/Case"), "members[0].image"),
            (with_member(image=""), "members[0].image"),
            (with_member(command=[]), "members[0].command"),
            (with_member(command="httpd"), "members[0].command"),
            (with_member(command=["httpd", 1]), "members[0].command[1]"),
            (with_member(command=["x"] * 257), "members[0].command"),
            (with_member(env={"1BAD": "x"}), "members[0].env.1BAD"),
            (with_member(env={"A": 1}), "members[0].env.A"),
            (with_member(env=[]), "members[0].env"),
            (with_member(ports={}), "members[0].ports"),
            (with_member(ports=[{"port": 0, "kind": "http"}]), "members[0].ports[0].port"),
            (with_member(ports=[{"port": 65536, "kind": "http"}]), "members[0].ports[0].port"),
            (with_member(ports=[{"port": "80", "kind": "http"}]), "members[0].ports[0].port"),
            (with_member(ports=[{"kind": "http"}]), "members[0].ports[0].port"),
            (with_member(ports=[{"port": 80}]), "members[0].ports[0].kind"),
            (with_member(ports=[{"port": 80, "kind": "ssh"}]), "members[0].ports[0].kind"),
            (with_member(ports=[{"port": 80, "kind": "http", "tls": True}]), "members[0].ports[0].tls"),
            (with_member(ports=[{"port": 80, "kind": "http"}, {"port": 80, "kind": "tcp"}]), "members[0].ports[1].port"),
            (with_member(ports=[{"port": p, "kind": "tcp"} for p in range(1, 18)]), "members[0].ports"),
            (with_member(volumes=["/x"]), "members[0].volumes"),
        ]
        for body, field in cases:
            with self.subTest(field=field, body=str(body)[:120]):
                self.assertError(self.put(name, body), 400, "InvalidArgument", field)
        self.assertError(self.gw.http("GET", f"/v1/labs/{name}"), 404, "NotFound")
        # The name in the path is checked like a name in the body.
        self.assertError(self.put("Bad_Name", lab()), 400, "InvalidArgument", "name")
        self.assertError(self.put("a" * 64, lab()), 400, "InvalidArgument", "name")
        # Malformed JSON, wrong media type.
        self.assertError(self.put(name, '{"members": '), 400, "BadRequest")
        r = self.gw.http("PUT", f"/v1/labs/{name}", lab(), content_type="text/plain")
        self.assertError(r, 415, "UnsupportedMediaType")
        # A failed PUT leaves an existing definition alone.
        self.assertEqual(self.put(name, lab()).status, 201)
        self.assertError(self.put(name, lab(lifetime=0)), 400, "InvalidArgument", "lifetime")
        self.assertEqual(self.gw.http("GET", f"/v1/labs/{name}").json["lifetime"], 3600)
        self.assertServing()

    def test_dbus(self):
        """The same on D-Bus: PutLab/GetLab/ListLabs/RemoveLab, the Lab objects, polkit."""
        import json
        name = self.name("lab")
        p, data = self.gw.call("PutLab", "ss", name, json.dumps(lab()))
        self.assertEqual(p.returncode, 0, p.stderr)
        path, created = data
        self.assertTrue(created)
        self.assertTrue(path.startswith("/org/gatewayd/Gateway1/lab/"), path)
        p, data = self.gw.call("PutLab", "ss", name, json.dumps(lab(description="again")))
        self.assertEqual(data, [path, False])
        p, data = self.gw.call("GetLab", "s", name, as_user=users.USER)
        self.assertEqual(json.loads(data[0]), self.gw.http("GET", f"/v1/labs/{name}").json)
        p, data = self.gw.call("ListLabs", as_user=users.USER)
        self.assertIn([name, "again", path], data[0])
        p = self.gw.busctl("--json=short", "get-property", "org.gatewayd.Gateway1", path, "org.gatewayd.Gateway1.Lab",
                           "LifetimeSec", as_user=users.USER)
        self.assertEqual(json.loads(p.stdout)["data"], 3600, p.stderr)
        for user in (users.USER, users.OTHER):
            _, err = self.gw.gdbus_call("PutLab", name, json.dumps(lab()), as_user=user)
            self.assertEqual(err, "org.gatewayd.Gateway1.Error.AccessDenied")
            _, err = self.gw.gdbus_call("RemoveLab", name, as_user=user)
            self.assertEqual(err, "org.gatewayd.Gateway1.Error.AccessDenied")
        _, err = self.gw.gdbus_call("PutLab", name, json.dumps(lab(lifetime=0)))
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.InvalidArgument")
        _, err = self.gw.gdbus_call("PutLab", name, "{not json")
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.BadRequest")
        p, _ = self.gw.gdbus_call("PutLab", name, json.dumps(lab()), as_user=users.ADMIN)
        self.assertEqual(p.returncode, 0, p.stderr)
        p, _ = self.gw.gdbus_call("RemoveLab", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        _, err = self.gw.gdbus_call("GetLab", name)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NotFound")
        _, err = self.gw.gdbus_call("RemoveLab", name)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NotFound")
        self.assertServing()

    def test_gatewayctl(self):
        import json
        name = self.name("lab")
        spec = json.dumps(lab(name))
        p = self.gw.gatewayctl("lab", "put", "-", input=spec)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, f"Created lab {name}."), p.stderr)
        p = self.gw.gatewayctl("lab", "put", "-", input=json.dumps(lab(name, description="v2")))
        self.assertEqual((p.returncode, p.stdout.strip()), (0, f"Replaced lab {name}."), p.stderr)
        p = self.gw.gatewayctl("--no-legend", "lab", "list", as_user=users.USER)
        self.assertIn(f"{name}  2  1h  v2", p.stdout)
        p = self.gw.gatewayctl("lab", "list", "--json=short", as_user=users.USER)
        self.assertIn(self.gw.http("GET", f"/v1/labs/{name}").json, json.loads(p.stdout))
        p = self.gw.gatewayctl("lab", "show", name, "--json", as_user=users.USER)
        self.assertEqual(json.loads(p.stdout), self.gw.http("GET", f"/v1/labs/{name}").json)
        p = self.gw.gatewayctl("lab", "show", name, as_user=users.USER)
        self.assertIn("v2", p.stdout)
        # Refused: no name in the file, bad definitions, an ordinary user.
        p = self.gw.gatewayctl("lab", "put", "-", input=json.dumps(lab()))
        self.assertEqual(p.returncode, 1)
        self.assertIn("no \"name\"", p.stderr)
        p = self.gw.gatewayctl("lab", "put", "-", input=json.dumps(lab(name, lifetime=0)))
        self.assertEqual(p.returncode, 1)
        self.assertIn("lifetime", p.stderr)
        p = self.gw.gatewayctl("--no-ask-password", "lab", "put", "-", input=spec, as_user=users.USER)
        self.assertEqual(p.returncode, 1, p.stdout)
        p = self.gw.gatewayctl("--no-ask-password", "lab", "rm", name, as_user=users.USER)
        self.assertEqual(p.returncode, 1, p.stdout)
        p = self.gw.gatewayctl("lab", "rm", name, "nosuch")
        self.assertEqual(p.returncode, 1)
        self.assertIn("nosuch", p.stderr)
        self.assertEqual(self.gw.http("GET", f"/v1/labs/{name}").status, 404)

    def test_dbus_signals(self):
        """Changes made over HTTP are announced on the bus too, once committed."""
        from harness.bus import BusMonitor
        name = self.name("lab")
        with BusMonitor(self.bus) as mon:
            self.assertEqual(self.put(name, lab()).status, 201)
            m = mon.wait_signal("InterfacesAdded", path="/org/gatewayd/Gateway1",
                                predicate=lambda m: m["payload"]["data"][0].endswith(name.replace("-", "_2d")))
            path = m["payload"]["data"][0]
            self.assertEqual(self.put(name, lab(description="changed")).status, 200)
            mon.wait_signal("PropertiesChanged", path=path)
            self.assertEqual(self.gw.http("DELETE", f"/v1/labs/{name}").status, 204)
            mon.wait_signal("InterfacesRemoved", path="/org/gatewayd/Gateway1",
                            predicate=lambda m: m["payload"]["data"][0] == path)

    def test_survives_kill(self):
        name = self.name("lab")
        rec = self.put(name, lab()).json
        self.gw.kill(signal.SIGKILL)
        self.gw.start()
        r = self.gw.http("GET", f"/v1/labs/{name}")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json, rec)



def worker_path():
    return os.environ.get("GATEWAYD_TEST_WORKER") or os.path.join(procs.build_dir(), "src", "worker", "gateway-worker")


def net_inode(path):
    """The network namespace a process or an nsfs file refers to, as "net:[INODE]"."""
    if path.startswith("/proc/"):
        return os.readlink(path)
    return f"net:[{os.stat(path).st_ino}]"


def processes_in_netns(ns):
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/ns/net") == ns:
                    found.append(int(pid))
            except OSError:
                pass
    return found


# The web member: a page only this instance has, served by busybox httpd on 8080, all in the
# member's writable layer. The client member: fetches the web member's page by name, tries the
# host's service (which lives in another network namespace), then stays up.
# (Files the test reads are written under another name and renamed: it never sees half of one.)
WEB_CMD = ["/bin/sh", "-c", "mkdir -p /var/lab/www && cat /proc/sys/kernel/random/uuid > /var/lab/index.tmp"
           " && id -u > /var/lab/uid.tmp && mv /var/lab/uid.tmp /var/lab/uid"
           " && mv /var/lab/index.tmp /var/lab/www/index.html && exec httpd -f -p 8080 -h /var/lab/www"]
CLIENT_CMD = ["/bin/sh", "-c", "until wget -q -O /var/lab/web.tmp http://web:8080/; do sleep 0.1; done; mv /var/lab/web.tmp /var/lab/web.html;"
              " if wget -q -O /var/lab/host.html http://127.0.0.1:$HOST_PORT/; then echo reached; else echo blocked; fi"
              " > /var/lab/host.tmp; mv /var/lab/host.tmp /var/lab/host; exec sleep 100000"]


class InstancesBase(StackTestCase):
    """Registry with the test images, a service of the host's, labs "duo" and "single"."""

    @classmethod
    def setUpClass(cls):
        cls.rprocs = procs.Processes()
        cls.rtmp = procs.TempDir(prefix="gatewayd-labs-")
        cls.host_server = cls.slow = None
        try:
            cls.registry = Registry(cls.rprocs, cls.rtmp.path).start()
            host = cls.registry.host
            web = images.Layer().busybox(("sh", "mkdir", "cat", "id", "mv", "httpd"))
            images.push_image(cls.registry, "labs/web", "1", images.Image([(web, "gzip")], entrypoint=["/bin/httpd"]))
            client = images.Layer().busybox(("sh", "wget", "sleep", "echo", "mv"))
            images.push_image(cls.registry, "labs/client", "1", images.Image([(client, "gzip")]))
            cls.web_ref, cls.client_ref = f"{host}/labs/web:1", f"{host}/labs/client:1"
            # An image of its own behind a slow path: an instance of it stays STARTING for a while.
            images.push_image(cls.registry, "labs/slow", "1", images.busybox_image(labels={"slow": "yes"}))
            cls.slow = Proxy(cls.registry.port, rate=4096)
            cls.slow_ref = f"{cls.slow.host}/labs/slow:1"
            # A service of the host's, on its loopback: no member may reach it.
            cls.host_server = socket.create_server(("127.0.0.1", 0))
            cls.host_port = cls.host_server.getsockname()[1]
            threading.Thread(target=cls._serve_host, daemon=True).start()
            cls.config = {
                "DefaultImageLocation": host,
                "Locations": {host: {"remotetype": "dockerv2", "authentication": "none", "insecure": True},
                              cls.slow.host: {"remotetype": "dockerv2", "authentication": "none", "insecure": True}},
                "WorkerPath": worker_path(),
                "LabInstancesPerUser": 2,
                **getattr(cls, "extra_config", {}),
            }
            super().setUpClass()
            cls.api = openapi.load(os.path.join(source_dir(), "docs", "openapi.yaml"))
            cls.validator = openapi.Validator(cls.api)
            cls.lab = cls._put_lab(cls, "duo", [
                {"name": "web", "image": cls.web_ref, "command": WEB_CMD, "ports": [{"port": 8080, "kind": "http"}]},
                {"name": "client", "image": cls.client_ref, "command": CLIENT_CMD,
                 "env": {"HOST_PORT": str(cls.host_port)}}])
            cls.single = cls._put_lab(cls, "single", [
                {"name": "idle", "image": cls.client_ref, "command": ["/bin/sleep", "100000"]}])
        except BaseException:
            cls._stop_extras()
            raise

    @classmethod
    def _serve_host(cls):
        while True:
            try:
                c, _ = cls.host_server.accept()
            except OSError:
                return
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nhost")
            c.close()

    @classmethod
    def _stop_extras(cls):
        if cls.host_server is not None:
            cls.host_server.close()
        if cls.slow is not None:
            cls.slow.stop()
        cls.rprocs.stop_all()
        cls.rtmp.cleanup()

    @classmethod
    def tearDownClass(cls):
        try:
            for user in ("root", users.USER, users.OTHER):
                if not cls.gw.alive():
                    break
                for inst in cls.gw.http("GET", "/v1/lab-instances", as_user=user).json["instances"]:
                    cls.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=user)
            super().tearDownClass()
        finally:
            cls._stop_extras()

    def _put_lab(self, prefix, members, **kw):
        name = f"{prefix}-{os.getpid() % 10000}"
        body = {"members": members, **kw}
        r = self.gw.http("PUT", f"/v1/labs/{name}", body)
        assert r.status in (200, 201), r.body
        return name

    # -- helpers --------------------------------------------------------------------------------

    def check(self, r, template, method):
        schema = self.validator.response_schema(template, method, r.status)
        if schema is not None:
            self.assertEqual(self.validator.check(schema, r.json), [], f"{method} {template} {r.status}: {r.body}")
        return r

    def start(self, lab, as_user=users.USER):
        r = self.check(self.gw.http("POST", f"/v1/labs/{lab}/instances", as_user=as_user),
                       "/v1/labs/{name}/instances", "post")
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.headers.get("location"), f"/v1/lab-instances/{r.json['id']}")
        self.assertEqual(r.json["lab"], lab)
        self.assertIn(r.json["state"], ("STARTING", "RUNNING"))
        self.addCleanup(self.delete_quietly, r.json["id"], as_user)
        return r.json

    def delete_quietly(self, id_, as_user):
        if not self.gw.alive():
            return      # left on idle (InstancesIdle): it had no instances then
        self.gw.http("DELETE", f"/v1/lab-instances/{id_}", as_user=as_user)
        procs.wait_for(lambda: self.gw.http("GET", f"/v1/lab-instances/{id_}", as_user=as_user).status == 404,
                       timeout=30, what=f"instance {id_} gone")

    def get(self, id_, as_user=users.USER):
        return self.check(self.gw.http("GET", f"/v1/lab-instances/{id_}", as_user=as_user),
                          "/v1/lab-instances/{id}", "get")

    def await_state(self, id_, states, as_user=users.USER, timeout=60):
        def state():
            r = self.get(id_, as_user)
            return r.json if r.status == 200 and r.json["state"] in states else None
        return procs.wait_for(state, timeout=timeout, what=f"instance {id_} in {states}")

    def member_dir(self, id_, member):
        return os.path.join(self.gw.state_dir, "labs", id_, f"{member}.data")

    def read_member_file(self, id_, member, name, timeout=30):
        """A file of the member's writable layer, as gatewayd sees it: the layer is a mount of the
        member's worker (LabWritableMax) in gatewayd's mount namespace, which is not ours when a
        wrapper gave gatewayd one of its own (as PrivateMounts=yes does under systemd)."""
        path = os.path.join(self.member_dir(id_, member), name)

        def through_gatewayd():
            pid = self.gw.pid()
            return f"/proc/{pid}/root{path}" if pid and os.path.exists(f"/proc/{pid}/root{path}") else None
        seen = procs.wait_for(through_gatewayd, timeout=timeout, what=path)
        with open(seen) as f:
            return f.read()

    def await_fetch(self, netns, url):
        """What url answers inside netns, once it answers."""
        try:
            return procs.wait_for(lambda: self.fetch_in_netns(netns, url), timeout=20, what=url)
        except TimeoutError:
            self.fail(f"{url} in {netns} did not answer: {self.last_fetch_error}")

    def fetch_in_netns(self, netns, url):
        """curl run by root on the host, inside the instance's network namespace."""
        p = subprocess.run(["nsenter", f"--net={netns}", "curl", "-sS", "--max-time", "2", url],
                           capture_output=True, text=True, timeout=20)
        self.last_fetch_error = f"rc {p.returncode} out {p.stdout!r} err {p.stderr!r}"
        return p.stdout if p.returncode == 0 else None



class Instances(InstancesBase):
    # -- tests ----------------------------------------------------------------------------------

    def test_lifecycle_isolation_and_delete(self):
        inst = self.start(self.lab)
        rec = self.await_state(inst["id"], ("RUNNING",))
        self.assertEqual([(m["name"], m["state"]) for m in rec["members"]], [("web", "RUNNING"), ("client", "RUNNING")])
        self.assertIsNotNone(rec["startedAt"])
        netns = rec["networkNamespace"]
        web = rec["members"][0]["address"]

        # The web member answers inside the instance's namespace, with its own page, as the user.
        page = self.read_member_file(inst["id"], "web", "www/index.html")
        self.assertEqual(self.await_fetch(netns, f"http://{web}:8080/"), page)
        self.assertEqual(self.read_member_file(inst["id"], "web", "uid").strip(), str(users.uid_of(users.USER)))
        st = os.stat(self.member_dir(inst["id"], "web"))
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (users.uid_of(users.USER), 0o700))
        # ... and not on the host.
        self.assertIsNone(self.fetch_in_netns("/proc/1/ns/net", f"http://{web}:8080/"))
        # The client reached web by name, and not the host's service.
        self.assertEqual(self.read_member_file(inst["id"], "client", "web.html"), page)
        self.assertEqual(self.read_member_file(inst["id"], "client", "host").strip(), "blocked")

        # A second instance: its own namespace, its own page; neither sees the other.
        other = self.start(self.lab)
        orec = self.await_state(other["id"], ("RUNNING",))
        self.assertNotEqual(net_inode(orec["networkNamespace"]), net_inode(netns))
        opage = self.read_member_file(other["id"], "web", "www/index.html")
        self.assertNotEqual(opage, page)
        self.assertEqual(self.await_fetch(orec["networkNamespace"], f"http://{web}:8080/"), opage)
        self.assertEqual(self.fetch_in_netns(netns, f"http://{web}:8080/"), page)

        # The user's list has both, oldest first.
        r = self.check(self.gw.http("GET", "/v1/lab-instances", as_user=users.USER), "/v1/lab-instances", "get")
        ids = [x["id"] for x in r.json["instances"]]
        self.assertEqual([i for i in ids if i in (inst["id"], other["id"])], [inst["id"], other["id"]])

        # DELETE: nothing of it is left, the other one runs on.
        ns = net_inode(netns)
        self.assertTrue(processes_in_netns(ns), "members run in the namespace")
        d = os.path.join(self.gw.state_dir, "labs", inst["id"])
        r = self.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=users.USER)
        self.assertEqual(r.status, 204, r.body)
        procs.wait_for(lambda: self.get(inst["id"]).status == 404, timeout=30, what="instance gone")
        self.assertEqual(processes_in_netns(ns), [])
        self.assertFalse(os.path.exists(netns))
        self.assertFalse(os.path.exists(d))
        with open("/proc/self/mountinfo") as f:
            self.assertNotIn(inst["id"], f.read())
        self.assertEqual(self.get(other["id"]).json["state"], "RUNNING")
        self.assertServing()

    def test_dbus(self):
        """Instances on D-Bus: the caller's own, as over HTTP."""
        import json
        p, data = self.gw.call("StartLabInstance", "s", self.single, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        inst = json.loads(data[0])
        self.addCleanup(self.delete_quietly, inst["id"], users.USER)
        self.assertEqual(sorted(inst["access"]), ["expiresAt", "members", "token"])
        self.await_state(inst["id"], ("RUNNING",))
        p, data = self.gw.call("GetLabInstance", "s", inst["id"], as_user=users.USER)
        self.assertEqual(json.loads(data[0]), self.get(inst["id"]).json)
        p, data = self.gw.call("ListLabInstances", as_user=users.USER)
        self.assertIn(inst["id"], [x["id"] for x in json.loads(data[0])["instances"]])
        p, data = self.gw.call("ListLabInstances", as_user=users.OTHER)
        self.assertNotIn(inst["id"], [x["id"] for x in json.loads(data[0])["instances"]])
        p, data = self.gw.call("RenewLabInstanceToken", "s", inst["id"], as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(json.loads(data[0])), ["expiresAt", "members", "token"])
        for method in ("GetLabInstance", "RemoveLabInstance", "RenewLabInstanceToken"):
            _, err = self.gw.gdbus_call(method, inst["id"], as_user=users.OTHER)
            self.assertEqual(err, "org.gatewayd.Gateway1.Error.NotFound")
        _, err = self.gw.gdbus_call("StartLabInstance", "nosuch", as_user=users.USER)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NotFound")
        p, _ = self.gw.gdbus_call("RemoveLabInstance", inst["id"], as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        procs.wait_for(lambda: self.get(inst["id"]).status == 404, timeout=30, what="instance gone")

    def test_gatewayctl(self):
        """lab start|instances|instance|token|stop: the caller's own instances, over D-Bus."""
        import json
        p = self.gw.gatewayctl("lab", "start", self.single, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        fields = dict(line.strip().split(": ", 1) for line in p.stdout.splitlines() if ": " in line)
        id_ = fields["Id"]
        self.addCleanup(self.delete_quietly, id_, users.USER)
        self.assertEqual(fields["Lab"], self.single)
        self.assertIn(fields["State"], ("STARTING", "RUNNING"))
        token = fields["Token"]
        self.assertEqual(fields["URL idle"], f"/{token}/idle/")
        self.assertRegex(fields["Token expires"], r"^\d{4}-\d\d-\d\dT")
        self.assertRegex(fields["Member idle"], r"^(STARTING|RUNNING) \(.*labs/client:1, 127\.0\.0\.2\)$")
        # The token is gatewayd's own: the instance's id in its claims, good for the proxy.
        claims = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[1] + "=="))
        self.assertEqual(claims["inst"], id_)
        self.await_state(id_, ("RUNNING",))

        p = self.gw.gatewayctl("--no-legend", "lab", "instances", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, rf"(?m)^{id_}\s+{self.single}\s+RUNNING\s+\d{{4}}-")
        p = self.gw.gatewayctl("lab", "instances", "--json=short", as_user=users.USER)
        self.assertIn(self.get(id_).json, json.loads(p.stdout))
        p = self.gw.gatewayctl("--no-legend", "lab", "instances", as_user=users.OTHER)
        self.assertNotIn(id_, p.stdout)
        p = self.gw.gatewayctl("lab", "instance", id_, "--json", as_user=users.USER)
        self.assertEqual(json.loads(p.stdout), self.get(id_).json)
        p = self.gw.gatewayctl("lab", "instance", id_, as_user=users.USER)
        self.assertIn("State: RUNNING", p.stdout)
        self.assertNotIn("Token", p.stdout)
        p = self.gw.gatewayctl("lab", "token", id_, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        renewed = dict(line.strip().split(": ", 1) for line in p.stdout.splitlines() if ": " in line)
        self.assertNotEqual(renewed["Token"], token)
        self.assertEqual(renewed["URL idle"], f"/{renewed['Token']}/idle/")
        p = self.gw.gatewayctl("lab", "token", id_, "--json", as_user=users.USER)
        self.assertEqual(sorted(json.loads(p.stdout)), ["expiresAt", "members", "token"])

        # Someone else's instance does not exist for them; a lab that does not exist neither.
        for verb in ("instance", "token", "stop"):
            p = self.gw.gatewayctl("lab", verb, id_, as_user=users.OTHER)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertIn(f"No lab instance '{id_}'", p.stderr)
        p = self.gw.gatewayctl("lab", "start", "nosuch", as_user=users.USER)
        self.assertEqual(p.returncode, 1)
        self.assertIn("No lab 'nosuch'", p.stderr)
        # Stop: one failure (an unknown id) is printed, the others are stopped.
        p = self.gw.gatewayctl("lab", "stop", "li-0000000000000000", id_, as_user=users.USER)
        self.assertEqual(p.returncode, 1)
        self.assertIn("li-0000000000000000", p.stderr)
        procs.wait_for(lambda: self.get(id_).status == 404, timeout=30, what="instance gone")
        self.assertServing()

    def test_members_run_on_the_slim_run_binary(self):
        # As jobs do: gateway-worker-run beside gateway-worker, not the worker with the pull
        # verb's ~50 libraries (their loading, twice at once, was most of an instance's start).
        inst = self.start(self.single)
        self.await_state(inst["id"], ("RUNNING",))
        with open(os.path.join(self.gw.state_dir, "labs", inst["id"], "idle.spool", "worker.pid")) as f:
            pid = int(f.read().split()[0])
        self.assertEqual(os.path.basename(os.readlink(f"/proc/{pid}/exe")), "gateway-worker-run")

    def test_member_exit_degrades(self):
        name = self._put_lab("flaky", [
            {"name": "stays", "image": self.client_ref, "command": ["/bin/sleep", "100000"]},
            {"name": "leaves", "image": self.client_ref, "command": ["/bin/sh", "-c", "sleep 0.5; exit 3"]}])
        inst = self.start(name)
        rec = self.await_state(inst["id"], ("DEGRADED",))
        self.assertIn("leaves", rec["error"])
        self.assertIn("status 3", rec["error"])
        self.assertEqual({m["name"]: m["state"] for m in rec["members"]}, {"stays": "RUNNING", "leaves": "EXITED"})

    def test_image_mount_lingers_for_the_next_instance(self):
        """A member's image stays mounted a while after its instance ended, as a job's does: the
        next instance on it uses that mount (neither mounted again nor cold)."""
        images.push_image(self.registry, "labs/lingering", "1",
                          images.Image([(images.Layer().busybox(("sh", "sleep")), "gzip")], labels={"linger": "lab"}))
        name = self._put_lab("lingering", [{"name": "only", "image": f"{self.registry.host}/labs/lingering:1",
                                            "command": ["/bin/sleep", "100000"]}])
        before = rootfs.image_mounts(self.gw.runtime_dir)
        first = self.start(name)
        self.await_state(first["id"], ("RUNNING",))
        (source,) = [s for s in rootfs.image_mounts(self.gw.runtime_dir) if s not in before]
        mount_id = rootfs.image_mounts(self.gw.runtime_dir)[source]
        self.delete_quietly(first["id"], users.USER)
        self.assertEqual(rootfs.image_mounts(self.gw.runtime_dir).get(source), mount_id, "unmounted with its instance")
        second = self.start(name)
        self.await_state(second["id"], ("RUNNING",))
        self.assertEqual(self.get(first["id"]).status, 404)
        self.assertEqual([m["state"] for m in self.get(second["id"]).json["members"]], ["RUNNING"])
        self.assertEqual(rootfs.image_mounts(self.gw.runtime_dir).get(source), mount_id)

    def test_image_missing_fails(self):
        name = self._put_lab("broken", [
            {"name": "ok", "image": self.client_ref, "command": ["/bin/sleep", "100000"]},
            {"name": "gone", "image": f"{self.registry.host}/labs/nosuch:1"}])
        inst = self.start(name)
        rec = self.await_state(inst["id"], ("FAILED",))
        self.assertIn("gone", rec["error"])
        self.assertIsNone(rec["networkNamespace"])
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "labs", inst["id"])))
        # A failed instance holds no slot of LabInstancesPerUser; it stays until deleted.
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=users.USER).status, 204)
        self.assertEqual(self.get(inst["id"]).status, 404)

    def test_others_instances_are_404(self):
        inst = self.start(self.single)
        for user in (users.OTHER, users.ADMIN, "root"):
            self.assertError(self.get(inst["id"], as_user=user), 404, "NotFound")
            r = self.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=user)
            self.assertError(r, 404, "NotFound")
            ids = [x["id"] for x in self.gw.http("GET", "/v1/lab-instances", as_user=user).json["instances"]]
            self.assertNotIn(inst["id"], ids)
        self.assertEqual(self.get(inst["id"]).status, 200)
        self.assertError(self.gw.http("POST", "/v1/labs/nosuch/instances", as_user=users.USER), 404, "NotFound", "nosuch")
        self.assertError(self.get("li-0000000000000000"), 404, "NotFound")

    def test_limits_hold_for_the_instance(self):
        """limits.tasks and limits.memory are the whole instance's: one cgroup of the instance
        that the members' job cgroups sit under. Two members that each start 15 processes do not
        get 30 with "tasks": 20."""
        # (A shell that cannot fork exits: the forks are a child shell's, whose sleeps live on.)
        forks = ["/bin/sh", "-c", "sh -c 'i=0; while [ $i -lt 15 ]; do sleep 100000 & i=$((i+1)); done' 2>/dev/null;"
                 " echo done > /var/lab/forked; exec sleep 99999"]
        name = self._put_lab("limited", [{"name": "a", "image": self.client_ref, "command": forks},
                                         {"name": "b", "image": self.client_ref, "command": forks}],
                             limits={"tasks": 20, "memory": "96M"})
        inst = self.start(name)
        rec = self.await_state(inst["id"], ("RUNNING",))
        for m in ("a", "b"):
            self.read_member_file(inst["id"], m, "forked")
        pids = processes_in_netns(net_inode(rec["networkNamespace"]))
        sleeps = [p for p in pids if open(f"/proc/{p}/cmdline").read() == "sleep\0" "100000\0"]
        self.assertGreater(len(sleeps), 0)
        self.assertLessEqual(len(sleeps), 20, "both members together stay within tasks")
        # Every member process is in a cgroup below the instance's, which has the limits.
        groups = set()
        for p in sleeps:
            with open(f"/proc/{p}/cgroup") as f:
                lines = {c: path for _, c, path in (line.rstrip("\n").split(":", 2) for line in f)}
            # v1 or hybrid: the memory hierarchy; pure v2: the unified one
            ctrls = "memory" if "memory" in lines else ""
            parent = os.path.dirname(lines[ctrls])
            self.assertTrue(os.path.basename(parent).startswith("gatewayd-lab-"), lines[ctrls])
            groups.add(("/sys/fs/cgroup/memory" if ctrls else "/sys/fs/cgroup") + parent)
        self.assertEqual(len(groups), 1, groups)
        group = groups.pop()
        limit = "memory.max" if os.path.exists(f"{group}/memory.max") else "memory.limit_in_bytes"
        with open(f"{group}/{limit}") as f:
            self.assertEqual(int(f.read()), 96 << 20)
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=users.USER).status, 204)
        procs.wait_for(lambda: self.get(inst["id"]).status == 404, timeout=30, what="instance gone")
        self.assertFalse(os.path.exists(group), "the instance's cgroup goes with it")

    def test_root_runs_as_nobody(self):
        """Root's members run as nobody, like root's jobs, and own their writable layer."""
        name = self._put_lab("rootlab", [{"name": "web", "image": self.web_ref, "command": WEB_CMD}])
        inst = self.start(name, as_user="root")
        self.await_state(inst["id"], ("RUNNING",), as_user="root")
        self.assertEqual(self.read_member_file(inst["id"], "web", "uid").strip(), "65534")
        self.assertEqual(os.stat(self.member_dir(inst["id"], "web")).st_uid, 65534)

    def test_instances_per_user(self):
        a = self.start(self.single)
        b = self.start(self.single)
        r = self.gw.http("POST", f"/v1/labs/{self.single}/instances", as_user=users.USER)
        self.check(r, "/v1/labs/{name}/instances", "post")
        self.assertError(r, 429, "LimitExceeded", "LabInstancesPerUser")
        # Another user has a quota of their own; deleting one frees a slot.
        self.start(self.single, as_user=users.OTHER)
        self.delete_quietly(a["id"], users.USER)
        self.start(self.single)
        self.assertEqual(self.get(b["id"]).status, 200)

    def test_lifetime(self):
        name = self._put_lab("short", [{"name": "idle", "image": self.client_ref, "command": ["/bin/sleep", "100000"]}],
                             lifetime=2)
        inst = self.start(name)
        running = self.await_state(inst["id"], ("RUNNING",))
        ns = net_inode(running["networkNamespace"])
        rec = self.await_state(inst["id"], ("STOPPED",), timeout=30)
        self.assertIsNotNone(rec["endedAt"])
        self.assertIsNone(rec["networkNamespace"])
        self.assertEqual(processes_in_netns(ns), [])
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "labs", inst["id"])))
        # A stopped instance no longer counts, and can be deleted.
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=users.USER).status, 204)
        self.assertEqual(self.get(inst["id"]).status, 404)

    def test_survives_kill(self):
        inst = self.start(self.lab)
        rec = self.await_state(inst["id"], ("RUNNING",))
        netns, web = rec["networkNamespace"], rec["members"][0]["address"]
        page = self.read_member_file(inst["id"], "web", "www/index.html")
        self.gw.kill(signal.SIGKILL)
        self.gw.start()
        rec = self.get(inst["id"]).json
        self.assertEqual(rec["state"], "RUNNING", rec)
        self.assertEqual(self.await_fetch(netns, f"http://{web}:8080/"), page)
        # A graceful restart leaves it running too.
        self.gw.restart()
        self.assertEqual(self.get(inst["id"]).json["state"], "RUNNING")
        self.assertEqual(self.await_fetch(netns, f"http://{web}:8080/"), page)
        ns = net_inode(netns)
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=users.USER).status, 204)
        procs.wait_for(lambda: self.get(inst["id"]).status == 404, timeout=30, what="instance gone")
        self.assertEqual(processes_in_netns(ns), [])
        self.assertFalse(os.path.exists(netns))

    def test_restart_while_starting(self):
        """An instance still STARTING when gatewayd dies is FAILED after the restart, and its
        namespace and directory are gone; deleting it during STARTING removes it at once."""
        name = self._put_lab("slow", [{"name": "m", "image": self.slow_ref, "command": ["/bin/sleep", "100000"]}])
        inst = self.start(name)
        netns = self.get(inst["id"]).json["networkNamespace"]
        self.assertTrue(os.path.exists(netns))
        self.gw.kill(signal.SIGKILL)
        self.gw.start()
        rec = self.await_state(inst["id"], ("FAILED",), timeout=20)
        self.assertIn("restarted", rec["error"])
        self.assertFalse(os.path.exists(netns))
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "labs", inst["id"])))
        # And once more, deleted while its image is still being pulled.
        other = self.start(name)
        self.assertEqual(self.get(other["id"]).json["state"], "STARTING")
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{other['id']}", as_user=users.USER).status, 204)
        self.assertEqual(self.get(other["id"]).status, 404)
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "labs", other["id"])))
        self.assertServing()

    def test_restart_while_stopping(self):
        """DELETE, then gatewayd dies before the members are gone: the restart finishes the removal."""
        name = self._put_lab("stubborn", [{"name": "m", "image": self.client_ref,
                                           "command": ["/bin/sh", "-c", "trap '' TERM; exec sleep 100000"]}])
        inst = self.start(name)
        rec = self.await_state(inst["id"], ("RUNNING",))
        ns = net_inode(rec["networkNamespace"])
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=users.USER).status, 204)
        self.assertEqual(self.get(inst["id"]).json["state"], "STOPPING", "the member ignores SIGTERM for a while")
        self.gw.kill(signal.SIGKILL)
        self.gw.start()
        procs.wait_for(lambda: self.get(inst["id"]).status == 404, timeout=30, what="instance gone")
        self.assertEqual(processes_in_netns(ns), [])
        self.assertFalse(os.path.exists(rec["networkNamespace"]))
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "labs", inst["id"])))

    def test_member_exits_while_away(self):
        """A member that ends while gatewayd is not running is found out at the restart."""
        name = self._put_lab("away", [
            {"name": "stays", "image": self.client_ref, "command": ["/bin/sleep", "100000"]},
            {"name": "leaves", "image": self.client_ref,
             "command": ["/bin/sh", "-c", "until [ -e /var/lab/stop ]; do sleep 0.05; done; exit 4"]}])
        inst = self.start(name)
        self.await_state(inst["id"], ("RUNNING",))
        self.gw.kill(signal.SIGKILL)
        with open(os.path.join(self.member_dir(inst["id"], "leaves"), "stop"), "w"):
            pass
        exit_json = os.path.join(self.gw.state_dir, "labs", inst["id"], "leaves.spool", "exit.json")
        procs.wait_for(lambda: os.path.exists(exit_json), timeout=20, what="the member's exit.json")
        self.gw.start()
        rec = self.await_state(inst["id"], ("DEGRADED",), timeout=20)
        self.assertIn("status 4", rec["error"])
        self.assertEqual({m["name"]: m["state"] for m in rec["members"]}, {"stays": "RUNNING", "leaves": "EXITED"})



class InstancesIdle(InstancesBase):
    """Idle exit waits for live lab instances, as for unfinished jobs: nobody else would end
    them at their lifetime or notice a member exit."""
    idle_timeout = 1

    def test_no_idle_exit_while_instance_lives(self):
        inst = self.start(self.single)
        self.await_state(inst["id"], ("RUNNING",))
        # Well past the idle timeout with no client connected: asserting that an event does
        # not happen needs waiting.
        time.sleep(2.5)
        self.assertTrue(self.gw.alive(), "gatewayd exited on idle while a lab instance ran")
        self.assertEqual(self.gw.http("DELETE", f"/v1/lab-instances/{inst['id']}", as_user=users.USER).status, 204)
        # Once it is gone, the daemon leaves on its own.
        self.assertEqual(self.gw.wait_exit(timeout=20), 0)


if __name__ == "__main__":
    unittest.main()
