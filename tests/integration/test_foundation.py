"""gatewayd's foundation: command line, notifications, the service registry over HTTP, D-Bus and
gatewayctl, and durable state. Real dbus-daemon, polkitd and users; no mocks."""
import json
import os
import shutil
import tempfile
import re
import signal
import sqlite3
import subprocess
import threading
import unittest

from harness import procs, users
from harness.bus import BusMonitor, PrivateBus
from harness.gatewayd import BUS_NAME, BUS_PATH, Gatewayd, GatewaydTestCase, gatewayd_binary
from harness.stack import StackTestCase, spec

ISO8601 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")
SERVICE_IFACE = "org.gatewayd.Gateway1.Service"


def service_path(name):
    """sd_bus_path_encode(): every byte outside [A-Za-z0-9] becomes _XX."""
    enc = "".join(c if c.isascii() and c.isalnum() else "_%02x" % ord(c) for c in name)
    return f"{BUS_PATH}/service/{enc}"


class CommandLine(unittest.TestCase):
    def run_gatewayd(self, *args):
        return subprocess.run([gatewayd_binary(), *args], capture_output=True, text=True, timeout=30)

    def test_help(self):
        p = self.run_gatewayd("--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        for flag in ("--config", "--state-dir", "--runtime-dir", "--idle-timeout", "--version"):
            self.assertIn(flag, p.stdout)

    def test_version(self):
        p = self.run_gatewayd("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"\d+\.\d+")

    def test_unknown_option(self):
        p = self.run_gatewayd("--no-such-option")
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(p.stderr.strip(), "says what is wrong")

    def test_bad_idle_timeout(self):
        p = self.run_gatewayd("--idle-timeout", "soon")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("idle", p.stderr.lower())

    def test_bad_config_names_key(self):
        """An invalid config is refused at start with the key's path in the message."""
        with PrivateBus() as bus:
            gw = Gatewayd(bus=bus, config={"MaxRequestBody": "big"})
            try:
                gw.write_config()
                os.makedirs(gw.state_dir, exist_ok=True)
                os.makedirs(gw.runtime_dir, exist_ok=True)
                try:
                    p = subprocess.run(gw.argv(), capture_output=True, text=True, timeout=10,
                                       env=bus.env())
                except subprocess.TimeoutExpired:
                    self.fail("gatewayd started with an invalid configuration")
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("MaxRequestBody", p.stderr)
            finally:
                gw.stop()

    def test_bad_directories_and_durations_refused(self):
        """Directory keys that name a regular file, and durations that would overflow, stop
        the start with the key's path in the message (not the first pull, not silently)."""
        with PrivateBus() as bus:
            gw = Gatewayd(bus=bus)
            try:
                afile = os.path.join(gw.tmp.path, "a-file")
                with open(afile, "w") as f:
                    f.write("x")
                cases = [
                    ({"CacheDirectory": afile}, "CacheDirectory", f"{afile} is not a directory"),
                    ({"ExpandDirectory": afile}, "ExpandDirectory", f"{afile} is not a directory"),
                    ({"ExpandDirectory": afile + "/sub"}, "ExpandDirectory", f"{afile}/sub cannot be created"),
                    ({"Platforms": {"here": {"accesstype": "local", "local": {"imageDir": afile}}}},
                     "Platforms.here.local.imageDir", f"{afile} is not a directory"),
                    ({"ImageExpirationTimeout": "999999999999:00:00:00"}, "ImageExpirationTimeout",
                     "out of range"),
                    ({"PullUpdateTimeout": 18446744073709552}, "PullUpdateTimeout", "out of range"),
                ]
                os.makedirs(gw.runtime_dir, exist_ok=True)
                for config, key, what in cases:
                    with self.subTest(key=key):
                        gw.write_config(config)
                        try:
                            p = subprocess.run(gw.argv(), capture_output=True, text=True, timeout=10,
                                               env=bus.env())
                        except subprocess.TimeoutExpired:
                            self.fail("gatewayd started with an invalid configuration")
                        self.assertNotEqual(p.returncode, 0)
                        self.assertIn(f"{gw.config_path}: {key}: ", p.stderr)
                        self.assertIn(what, p.stderr)
                        self.assertFalse(os.path.exists(os.path.join(gw.runtime_dir, "http.sock")))
            finally:
                gw.stop()


    def test_remote_platform_key_checked(self):
        """A remote platform's ssh.key is checked at start: missing, unreadable, or a kind of key
        Debian's libssh2 cannot log in with (RSA) stops the start with the key's path."""
        with PrivateBus() as bus:
            gw = Gatewayd(bus=bus)
            try:
                rsa = os.path.join(gw.tmp.path, "id_rsa")
                subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsa], check=True)
                missing = os.path.join(gw.tmp.path, "no-such-key")

                def remote(**ssh):
                    return {"Platforms": {"cluster": {"accesstype": "remote", "host": ["node01"],
                                                      "ssh": {"username": "shifter", "imageDir": "/images", **ssh}}}}
                cases = [
                    (remote(), "a remote platform needs the private key"),
                    (remote(key=missing), f"cannot read the key {missing}"),
                    (remote(key=rsa), "RSA keys cannot be used"),
                ]
                os.makedirs(gw.runtime_dir, exist_ok=True)
                for config, what in cases:
                    with self.subTest(what=what):
                        gw.write_config(config)
                        try:
                            p = subprocess.run(gw.argv(), capture_output=True, text=True, timeout=10,
                                               env=bus.env())
                        except subprocess.TimeoutExpired:
                            self.fail("gatewayd started with an unusable ssh.key")
                        self.assertNotEqual(p.returncode, 0)
                        self.assertIn(f"{gw.config_path}: Platforms.cluster.ssh.key: ", p.stderr)
                        self.assertIn(what, p.stderr)
            finally:
                gw.stop()


class Lifecycle(GatewaydTestCase):
    """Start-up notifications, shutdown, and state that survives restarts and SIGKILL."""

    def setUp(self):
        super().setUp()
        users.ensure_test_users()
        self.bus = self.track(PrivateBus().start())
        self.addCleanup(self.bus.stop)

    def start(self, **kw):
        gw = self.track(Gatewayd(bus=self.bus, **kw))
        gw.start()
        self.addCleanup(gw.stop)
        return gw

    def test_missing_directories_created_at_start(self):
        """CacheDirectory, ExpandDirectory and a platform's imageDir that do not exist yet are
        there once gatewayd is ready (not only after the first pull)."""
        tmp = procs.TempDir(prefix="gatewayd-dirs-")
        self.addCleanup(tmp.cleanup)
        dirs = {k: os.path.join(tmp.path, "new", k) for k in ("cache", "expand", "images")}
        gw = self.start(config={"CacheDirectory": dirs["cache"], "ExpandDirectory": dirs["expand"],
                                "Platforms": {"here": {"accesstype": "local",
                                                       "local": {"imageDir": dirs["images"]}}}})
        for k, d in dirs.items():
            self.assertTrue(os.path.isdir(d), k)
        # Defaults only where nothing is configured: the cache and expand keys are set.
        self.assertFalse(os.path.exists(os.path.join(gw.state_dir, "cache")))
        self.assertFalse(os.path.exists(os.path.join(gw.state_dir, "expand")))

    def test_notify_ready_status_stopping(self):
        gw = self.start()
        msgs = gw.notify.messages
        self.assertIn("READY=1", msgs)
        self.assertTrue(any(m.startswith("STATUS=") for m in msgs), msgs)
        n = gw.notify.count()
        gw.proc.send_signal(signal.SIGTERM)
        gw.notify.wait("STOPPING=1", start=n, timeout=15)
        self.assertEqual(gw.wait_exit(15), 0, "clean exit on SIGTERM")

    def test_ready_means_serving(self):
        """After READY=1 both surfaces answer at once (no retry)."""
        gw = self.start()
        r = gw.http("GET", "/v1/status")
        self.assertEqual(r.status, 200)
        p, data = gw.call("GetStatus")
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_socket_mode_for_other_users(self):
        """The directly bound socket must be usable by every local user (like SocketMode=0666)."""
        gw = self.start()
        r = gw.http("GET", "/v1/status", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)

    def test_restart_keeps_services(self):
        gw = self.start()
        r = gw.http("POST", "/v1/services", spec("persist", description="kept",
                                                    resources={"memory": 1 << 20, "cpus": 0.5, "timeout": 30}))
        self.assertEqual(r.status, 201, r.body)
        before = r.json
        gw.restart()
        r = gw.http("GET", "/v1/services/persist")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json, before)
        p, data = gw.call("GetService", "s", "persist")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(data[0]), before)

    def test_state_directory_from_config(self):
        """"StateDirectory" in the configuration, without --state-dir, is where gatewayd keeps
        state.db and creates its directories; it is what the Manager reports."""
        tmp = procs.TempDir(prefix="gatewayd-statedir-")
        self.addCleanup(tmp.cleanup)
        state = os.path.join(tmp.path, "configured", "state")
        gw = self.start(config={"StateDirectory": state}, state_dir=state, state_dir_arg=False)
        self.assertNotIn("--state-dir", gw.argv())
        r = gw.http("POST", "/v1/services", spec("instatedir"))
        self.assertEqual(r.status, 201, r.body)
        db = os.path.join(state, "state.db")
        self.assertTrue(os.path.exists(db), os.listdir(state) if os.path.isdir(state) else "no " + state)
        for d in ("cache", "expand", "images"):
            self.assertTrue(os.path.isdir(os.path.join(state, d)), d)
        self.assertEqual(gw.http("GET", "/v1/status").json["stateDirectory"], state)
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            names = [row[0] for row in con.execute("SELECT name FROM services")]
        finally:
            con.close()
        self.assertEqual(names, ["instatedir"])

    def test_state_dir_option_overrides_config(self):
        """--state-dir wins over "StateDirectory" (the unit passes it), with a warning that
        names both."""
        tmp = procs.TempDir(prefix="gatewayd-statedir-")
        self.addCleanup(tmp.cleanup)
        configured = os.path.join(tmp.path, "configured")
        gw = self.start(config={"StateDirectory": configured})
        self.assertTrue(os.path.exists(os.path.join(gw.state_dir, "state.db")))
        self.assertFalse(os.path.exists(configured))
        self.assertIn(f"StateDirectory {configured} in {gw.config_path} is overridden by "
                      f"--state-dir={gw.state_dir}", gw.stderr_text())

    def test_log_level_from_config(self):
        """"LogLevel" sets the log level (over $GATEWAYD_LOG_LEVEL, which the harness sets to
        debug); --log-level overrides it."""
        gw = self.start(config={"LogLevel": "error"})
        self.assertEqual(gw.http("GET", "/v1/status").status, 200)
        gw.stop_daemon()
        self.assertNotIn("Serving HTTP on", gw.stderr_text())
        gw.extra_args = ["--log-level", "info"]
        gw.start()
        self.assertIn("Serving HTTP on", gw.stderr_text())

    def test_state_db_in_state_dir(self):
        gw = self.start()
        gw.http("POST", "/v1/services", spec("indb"))
        db = os.path.join(gw.state_dir, "state.db")
        self.assertTrue(os.path.exists(db), os.listdir(gw.state_dir))
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            self.assertEqual(con.execute("PRAGMA journal_mode").fetchone()[0], "wal")
            self.assertGreater(con.execute("PRAGMA user_version").fetchone()[0], 0)
        finally:
            con.close()

    def test_sigkill_mid_write(self):
        """SIGKILL while clients create and update services leaves a database that opens, passes
        integrity_check, and holds every service whose creation was acknowledged."""
        gw = self.start()
        acked = []
        stop = threading.Event()

        def writer(k):
            i = 0
            while not stop.is_set():
                name = f"kill-{k}-{i}"
                try:
                    r = gw.http("POST", "/v1/services", spec(name, description="x" * 2000), timeout=5)
                except ConnectionError:
                    return
                if r.status == 201:
                    acked.append(name)
                i += 1

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        try:
            # Kill once a good number of writes have gone through, i.e. while writing.
            from harness.procs import wait_for
            wait_for(lambda: len(acked) >= 20, timeout=30, what="20 acknowledged creates")
            gw.kill(signal.SIGKILL)
        finally:
            stop.set()
            for t in threads:
                t.join()
        db = os.path.join(gw.state_dir, "state.db")
        con = sqlite3.connect(db)
        try:
            self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        finally:
            con.close()
        gw.start()
        r = gw.http("GET", "/v1/services")
        self.assertEqual(r.status, 200, r.body)
        names = {s["name"] for s in r.json["services"]}
        missing = [n for n in acked if n not in names]
        self.assertEqual(missing, [], "acknowledged creates survive SIGKILL")


class HttpServices(StackTestCase):
    """The service registry over HTTP, as root (authorization is tested in test_authz)."""

    def test_status(self):
        r = self.gw.http("GET", "/v1/status")
        self.assertEqual(r.status, 200, r.body)
        self.assertIsInstance(r.json.get("version"), str)
        self.assertIn("application/json", r.headers.get("content-type", ""))

    def test_create_get_list_delete(self):
        name = self.name()
        r = self.gw.http("POST", "/v1/services", spec(name))
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.headers.get("location"), f"/v1/services/{name}")
        created = r.json
        self.assertEqual(created["name"], name)

        r = self.gw.http("GET", f"/v1/services/{name}")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json, created)

        r = self.gw.http("GET", "/v1/services")
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(created, r.json["services"])

        r = self.gw.http("DELETE", f"/v1/services/{name}")
        self.assertEqual(r.status, 204, r.body)
        self.assertEqual(r.body, "")
        self.assertEqual(self.gw.http("GET", f"/v1/services/{name}").status, 404)
        self.assertNotIn(name, [s["name"] for s in self.gw.http("GET", "/v1/services").json["services"]])

    def test_service_object_defaults(self):
        name = self.name()
        s = self.create(name)
        self.assertEqual(s["name"], name)
        self.assertEqual(s["image"], spec(name)["image"])
        self.assertIsNone(s["command"])
        self.assertEqual(s["env"], {})
        self.assertEqual(s["description"], "")
        self.assertEqual(s["resources"], {"memory": None, "cpus": None, "timeout": None})
        self.assertIs(s["network"], False)
        self.assertRegex(s["createdAt"], ISO8601)
        self.assertRegex(s["updatedAt"], ISO8601)

    def test_service_object_full(self):
        name = self.name()
        full = spec(name, command=["python3", "-c", "print('hi')"], env={"A": "1", "B_2": "x y"},
                    description="Says hi", resources={"memory": 268435456, "cpus": 1.5, "timeout": 600},
                    network=True)
        s = self.create(**full)
        for k in ("name", "image", "command", "env", "description", "resources", "network"):
            self.assertEqual(s[k], full[k], k)

    def test_put_replaces(self):
        name = self.name()
        created = self.create(name, description="old", env={"A": "1"})
        new = {"image": "registry.example.org/demo/hello:2.0", "command": ["true"],
               "resources": {"memory": 1024}}
        r = self.gw.http("PUT", f"/v1/services/{name}", new)
        self.assertEqual(r.status, 200, r.body)
        s = r.json
        self.assertEqual(s["name"], name)
        self.assertEqual(s["image"], new["image"])
        self.assertEqual(s["command"], ["true"])
        # A full spec: what it leaves out is back to its default.
        self.assertEqual(s["description"], "")
        self.assertEqual(s["env"], {})
        self.assertEqual(s["resources"], {"memory": 1024, "cpus": None, "timeout": None})
        self.assertEqual(s["createdAt"], created["createdAt"])
        self.assertRegex(s["updatedAt"], ISO8601)
        self.assertGreaterEqual(s["updatedAt"], created["updatedAt"])
        self.assertEqual(self.gw.http("GET", f"/v1/services/{name}").json, s)

    def test_put_with_matching_name(self):
        name = self.name()
        self.create(name)
        r = self.gw.http("PUT", f"/v1/services/{name}", spec(name, description="same name"))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["description"], "same name")

    def test_names_at_the_limits(self):
        for name in ("a", "0", "a" * 63, "a-b-c", "9lives"):
            r = self.gw.http("POST", "/v1/services", spec(name))
            self.assertEqual(r.status, 201, f"{name}: {r.body}")
            self.assertEqual(self.gw.http("DELETE", f"/v1/services/{name}").status, 204)

    def test_unicode_description_round_trips(self):
        s = self.create(description="Grüße — 量子 \"quoted\" \\ back\nline")
        self.assertEqual(self.gw.http("GET", f"/v1/services/{s['name']}").json["description"],
                         "Grüße — 量子 \"quoted\" \\ back\nline")
        p, data = self.gw.call("GetService", "s", s["name"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(data[0]), s, "the same record on D-Bus")
        p = self.gw.busctl("--json=short", "get-property", BUS_NAME, service_path(s["name"]),
                           SERVICE_IFACE, "Description")
        self.assertEqual(json.loads(p.stdout)["data"], s["description"])

    def test_charset_parameter_accepted(self):
        r = self.gw.http("POST", "/v1/services", spec(self.name()),
                         content_type="application/json; charset=utf-8")
        self.assertEqual(r.status, 201, r.body)

    def test_keep_alive_many_requests(self):
        """Several requests on one connection (curl reuses it for multiple URLs)."""
        url = "http://localhost/v1/status"
        p = subprocess.run(["curl", "-sS", "--unix-socket", self.gw.socket_path,
                            "-w", "%{http_code} %{num_connects}\n"] + ["-o", "/dev/null", url] * 5,
                           capture_output=True, text=True, timeout=30)
        lines = p.stdout.split("\n")
        self.assertEqual([l.split()[0] for l in lines if l], ["200"] * 5)
        self.assertEqual(sum(int(l.split()[1]) for l in lines if l), 1, "one connection for all")


class DBusServices(StackTestCase):
    """The D-Bus API (docs/dbus-api.md) with busctl/gdbus, as root."""

    def test_introspect(self):
        p = self.gw.busctl("introspect", BUS_NAME, BUS_PATH)
        self.assertEqual(p.returncode, 0, p.stderr)
        for m in ("ListServices", "GetService", "CreateService", "UpdateService", "RemoveService",
                  "GetStatus", "org.freedesktop.DBus.ObjectManager", "ServiceNew", "ServiceRemoved"):
            self.assertIn(m, p.stdout)

    def test_manager_properties(self):
        p = self.gw.busctl("--json=short", "get-property", BUS_NAME, BUS_PATH,
                           "org.gatewayd.Gateway1.Manager", "Version", "StateDirectory", "NServices")
        self.assertEqual(p.returncode, 0, p.stderr)
        vals = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        self.assertEqual(vals[0]["type"], "s")
        self.assertEqual(vals[1]["data"], self.gw.state_dir)
        self.assertEqual(vals[2]["type"], "u")

    def test_get_status(self):
        p, data = self.gw.call("GetStatus")
        self.assertEqual(p.returncode, 0, p.stderr)
        st = json.loads(data[0])
        self.assertEqual(st["version"], self.gw.http("GET", "/v1/status").json["version"])

    def test_create_get_list_remove(self):
        name = self.name("bus")
        p, data = self.gw.call("CreateService", "s", json.dumps(spec(name, description="via bus")))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(data, [service_path(name)])

        p, data = self.gw.call("GetService", "s", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        rec = json.loads(data[0])
        self.assertEqual(rec, self.gw.http("GET", f"/v1/services/{name}").json,
                         "D-Bus and HTTP give the same record")

        p, data = self.gw.call("ListServices")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn([name, spec(name)["image"], "via bus", service_path(name)], data[0])

        p, data = self.gw.call("RemoveService", "s", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.gw.http("GET", f"/v1/services/{name}").status, 404)
        p, err = self.gw.gdbus_call("GetService", name)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NoSuchService", p.stderr)

    def test_service_object_properties(self):
        name = self.name("prop")
        self.create(name, command=["echo", "hi"], env={"K": "v"}, description="d",
                    resources={"memory": 4096, "cpus": 2, "timeout": 7}, network=True)
        path = service_path(name)
        props = ["Name", "Image", "Description", "Command", "Environment", "Network", "MemoryMax",
                 "CPUs", "TimeoutSec", "CreatedTimestamp", "UpdatedTimestamp", "Spec"]
        p = self.gw.busctl("--json=short", "get-property", BUS_NAME, path, SERVICE_IFACE, *props)
        self.assertEqual(p.returncode, 0, p.stderr)
        v = dict(zip(props, [json.loads(l) for l in p.stdout.splitlines() if l.strip()]))
        self.assertEqual(v["Name"]["data"], name)
        self.assertEqual(v["Image"]["data"], spec(name)["image"])
        self.assertEqual(v["Description"]["data"], "d")
        self.assertEqual(v["Command"]["data"], ["echo", "hi"])
        self.assertEqual(v["Environment"]["data"], ["K=v"])
        self.assertIs(v["Network"]["data"], True)
        self.assertEqual(v["MemoryMax"]["data"], 4096)
        self.assertEqual(v["CPUs"]["data"], 2.0)
        self.assertEqual(v["TimeoutSec"]["data"], 7)
        self.assertGreater(v["CreatedTimestamp"]["data"], 1_600_000_000_000_000)
        self.assertEqual(v["CreatedTimestamp"]["type"], "t")
        self.assertEqual(json.loads(v["Spec"]["data"])["name"], name)

    def test_unset_limits_are_zero(self):
        name = self.name("zero")
        self.create(name)
        p = self.gw.busctl("--json=short", "get-property", BUS_NAME, service_path(name), SERVICE_IFACE,
                           "MemoryMax", "CPUs", "TimeoutSec", "Command")
        self.assertEqual(p.returncode, 0, p.stderr)
        v = [json.loads(l)["data"] for l in p.stdout.splitlines() if l.strip()]
        self.assertEqual(v, [0, 0.0, 0, []])

    def test_properties_changed_on_update(self):
        name = self.name("chg")
        self.create(name, description="before")
        path = service_path(name)
        with BusMonitor(self.bus) as mon:
            p, data = self.gw.call("UpdateService", "ss", name,
                                   json.dumps({"image": spec(name)["image"], "description": "after"}))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(data, [path])
            m = mon.wait_signal("PropertiesChanged", path=path,
                                predicate=lambda m: m["payload"]["data"][0] == SERVICE_IFACE)
        iface, changed, invalidated = m["payload"]["data"]
        if "Description" in changed:
            self.assertEqual(changed["Description"]["data"], "after")
        else:
            self.assertIn("Description", invalidated)
        # And the object shows the new value.
        p = self.gw.busctl("--json=short", "get-property", BUS_NAME, path, SERVICE_IFACE, "Description")
        self.assertEqual(json.loads(p.stdout)["data"], "after")

    def test_properties_changed_on_http_update(self):
        """Changes through HTTP are announced on the bus too."""
        name = self.name("hchg")
        self.create(name)
        path = service_path(name)
        with BusMonitor(self.bus) as mon:
            r = self.gw.http("PUT", f"/v1/services/{name}", spec(name, network=True))
            self.assertEqual(r.status, 200, r.body)
            mon.wait_signal("PropertiesChanged", path=path)

    def test_new_and_removed_signals(self):
        name = self.name("sig")
        path = service_path(name)
        with BusMonitor(self.bus) as mon:
            self.create(name)
            m = mon.wait_signal("ServiceNew", path=BUS_PATH)
            self.assertEqual(m["payload"]["data"], [name, path])
            m = mon.wait_signal("InterfacesAdded", path=BUS_PATH,
                                predicate=lambda m: m["payload"]["data"][0] == path)
            self.assertIn(SERVICE_IFACE, m["payload"]["data"][1])
            self.assertEqual(self.gw.http("DELETE", f"/v1/services/{name}").status, 204)
            m = mon.wait_signal("ServiceRemoved", path=BUS_PATH)
            self.assertEqual(m["payload"]["data"], [name, path])
            mon.wait_signal("InterfacesRemoved", path=BUS_PATH,
                            predicate=lambda m: m["payload"]["data"][0] == path)
        p = self.gw.busctl("introspect", BUS_NAME, path)
        self.assertNotIn(SERVICE_IFACE, p.stdout, "object gone after removal")

    def test_object_manager(self):
        name = self.name("om")
        self.create(name)
        p = self.gw.busctl("--json=short", "call", BUS_NAME, BUS_PATH,
                           "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        self.assertEqual(p.returncode, 0, p.stderr)
        objs = json.loads(p.stdout)["data"][0]
        self.assertIn(service_path(name), objs)
        self.assertEqual(objs[service_path(name)][SERVICE_IFACE]["Name"]["data"], name)

    def test_object_path_encoding(self):
        name = self.name("x-y")
        self.create(name)
        p = self.gw.busctl("--json=short", "get-property", BUS_NAME, service_path(name), SERVICE_IFACE, "Name")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("_2d", service_path(name))

    def test_errors_are_named(self):
        name = self.name("err")
        p, err = self.gw.gdbus_call("GetService", "no-such-service")
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NoSuchService", p.stderr)
        p, err = self.gw.gdbus_call("RemoveService", "no-such-service")
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NoSuchService", p.stderr)
        p, err = self.gw.gdbus_call("UpdateService", "no-such-service", json.dumps({"image": "a/b:c"}))
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NoSuchService", p.stderr)
        p, err = self.gw.gdbus_call("CreateService", "{not json")
        # docs/dbus-api.md lists InvalidArgument; BadRequest mirrors the HTTP code.
        self.assertIn(err, ("org.gatewayd.Gateway1.Error.InvalidArgument",
                            "org.gatewayd.Gateway1.Error.BadRequest"), p.stderr)
        p, err = self.gw.gdbus_call("CreateService", json.dumps({"image": "a/b:c"}))
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.InvalidArgument", p.stderr)
        self.assertIn("name", p.stderr)
        p, err = self.gw.gdbus_call("CreateService", json.dumps(spec(name, resources={"memory": -5})))
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.InvalidArgument", p.stderr)
        self.assertIn("resources.memory", p.stderr)
        self.create(name)
        p, err = self.gw.gdbus_call("CreateService", json.dumps(spec(name)))
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.AlreadyExists", p.stderr)
        p, err = self.gw.gdbus_call("UpdateService", name, json.dumps(spec("other-name")))
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.InvalidArgument", p.stderr)
        p, _ = self.gw.call("GetStatus")
        self.assertEqual(p.returncode, 0, "still serving")


class Gatewayctl(StackTestCase):
    """gatewayctl against the real daemon, as root (authorization in test_authz)."""

    def ctl(self, *args, **kw):
        return self.gw.gatewayctl(*args, **kw)

    def test_status(self):
        p = self.ctl("status")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(self.gw.http("GET", "/v1/status").json["version"], p.stdout)

    def test_create_show_list_rm(self):
        name = self.name("ctl")
        p = self.ctl("service", "create", name, "--image=registry.example.org/a/b:1",
                     "--description=made by ctl", "--env=A=1", "--memory=1048576", "--cpus=2",
                     "--timeout=30", "--network", "--", "echo", "hello")
        self.assertEqual(p.returncode, 0, p.stderr)
        rec = self.gw.http("GET", f"/v1/services/{name}").json
        self.assertEqual(rec["image"], "registry.example.org/a/b:1")
        self.assertEqual(rec["description"], "made by ctl")
        self.assertEqual(rec["env"], {"A": "1"})
        self.assertEqual(rec["command"], ["echo", "hello"])
        self.assertEqual(rec["resources"], {"memory": 1048576, "cpus": 2, "timeout": 30})
        self.assertIs(rec["network"], True)

        p = self.ctl("service", "show", name, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), rec)
        p = self.ctl("service", "show", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("made by ctl", p.stdout)

        p = self.ctl("services")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(name, p.stdout)
        p = self.ctl("services", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(name, [s["name"] for s in json.loads(p.stdout)])

        p = self.ctl("service", "update", name, "--description=changed")
        self.assertEqual(p.returncode, 0, p.stderr)
        rec2 = self.gw.http("GET", f"/v1/services/{name}").json
        self.assertEqual(rec2["description"], "changed")
        self.assertEqual(rec2["command"], ["echo", "hello"], "update keeps what it does not name")

        p = self.ctl("service", "rm", name)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.gw.http("GET", f"/v1/services/{name}").status, 404)

    def test_create_from_file(self):
        name = self.name("file")
        path = os.path.join(self.gw.tmp.path, "spec.json")
        with open(path, "w") as f:
            json.dump(spec(name, description="from file"), f)
        p = self.ctl("service", "create", f"--file={path}")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.gw.http("GET", f"/v1/services/{name}").json["description"], "from file")
        name2 = self.name("stdin")
        p = self.ctl("service", "create", "--file=-", input=json.dumps(spec(name2)))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(self.exists(name2))

    def test_failures_exit_nonzero_with_message(self):
        p = self.ctl("service", "show", "no-such-service")
        self.assertNotEqual(p.returncode, 0)
        dbus_p, _ = self.gw.gdbus_call("GetService", "no-such-service")
        msg = dbus_p.stderr.split("Error.NoSuchService: ", 1)[-1].strip()
        self.assertIn(msg, p.stderr)

        p = self.ctl("service", "rm", "no-such-service")
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(p.stderr.strip())

        name = self.name("dup")
        self.create(name)
        p = self.ctl("service", "create", name, "--image=registry.example.org/a/b:1")
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(p.stderr.strip())

        p = self.ctl("service", "create", self.name(), "--image=registry.example.org/a/b:1",
                     "--env=1BAD=x")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("env", p.stderr)


if __name__ == "__main__":
    unittest.main()


class UnimplementedPlatforms(StackTestCase):
    """Shifter's platform kinds beyond the local one, all implemented now: SSH platforms
    (accesstype "remote", test_platform_ssh) and Slurm (test_platform_slurm). Neither is warned
    about nor refused; a node that cannot be reached does not keep gatewayd from serving, and with
    slurmrestd unreachable a Slurm platform's jobs wait (and can be cancelled)."""

    @classmethod
    def setUpClass(cls):
        cls.keydir = procs.TempDir(prefix="gatewayd-foundation-key-")
        keydir = cls.keydir.path
        # ssh.key must be a key gatewayd can use (checked at start); so must slurm.jwtKey.
        key = os.path.join(keydir, "id_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        fd = os.open(f"{keydir}/jwt.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
        cls.config = {
            "Platforms": {
                "here": {"accesstype": "local"},
                "cluster": {"accesstype": "remote", "host": ["node01.invalid"],
                            "ssh": {"username": "shifter", "imageDir": "/images", "key": key}},
                "batch": {"accesstype": "local",
                          "slurm": {"url": f"unix:{keydir}/no-slurmrestd.sock", "jwtKey": f"{keydir}/jwt.key",
                                    "spoolDir": f"{keydir}/spool"}},
            },
            "DefaultPlatform": "batch",
        }
        try:
            super().setUpClass()
        except BaseException:
            cls.keydir.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.keydir.cleanup()

    def test_warned_at_start(self):
        err = self.gw.stderr_text()
        self.assertNotIn("is not implemented by this gatewayd", err)
        self.assertNotIn('Platforms.cluster: accesstype "remote"', err)
        self.assertIn("Platforms.batch: Slurm through slurmrestd at unix:", err)
        self.assertNotIn("Platforms.here:", err)

    def test_unreachable_remote_platform_serves(self):
        # node01.invalid never resolves: the node is unreachable, gatewayd serves all the same.
        procs.wait_for(lambda: "node01.invalid" in self.gw.stderr_text(), timeout=15,
                       what="the failed connection to node01.invalid to be logged")
        self.assertServing()

    def test_job_on_slurm_platform_accepted(self):
        r = self.gw.http("POST", "/v1/services", spec("on-slurm"))
        self.assertEqual(r.status, 201, r.body)
        r = self.gw.http("POST", "/v1/services/on-slurm/jobs", {"data": {}}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        job = r.json["id"]
        self.assertIn(self.gw.http("GET", f"/v1/jobs/{job}", as_user=users.USER).json["status"],
                      ("QUEUED", "PENDING", "FAILED"))
        r = self.gw.http("PUT", f"/v1/jobs/{job}/cancel", as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
