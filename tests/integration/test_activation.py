"""Starting on demand: socket activation (systemd-socket-activate hands over the "http" fd),
D-Bus activation from the private bus' service directory, exit on idle and re-activation
without losing a request."""
import json
import os
import threading
import time

from harness import users
from harness.bus import BusMonitor, PrivateBus
from harness.gatewayd import BUS_NAME, Gatewayd, GatewaydTestCase
from harness.polkit import Polkit
from harness.stack import spec


def name_lost(m):
    return m["payload"]["data"][0] == BUS_NAME and m["payload"]["data"][2] == ""


def name_gained(m):
    return m["payload"]["data"][0] == BUS_NAME and m["payload"]["data"][2] != ""


class Activation(GatewaydTestCase):
    def setUp(self):
        super().setUp()
        users.ensure_test_users()
        self.bus = self.track(PrivateBus().start())
        self.addCleanup(self.bus.stop)
        self.polkit = self.track(Polkit(self.bus).start())
        self.addCleanup(self.polkit.stop)

    def gatewayd(self, **kw):
        gw = self.track(Gatewayd(bus=self.bus, **kw))
        gw.start()
        self.addCleanup(gw.stop)
        return gw

    # -- socket activation --------------------------------------------------------------------

    def test_socket_activation(self):
        gw = self.gatewayd(mode="socket")
        self.assertIsNone(self.bus.name_owner_pid(BUS_NAME), "nothing runs before the first connection")
        n = gw.notify.count()
        # The first connection starts gatewayd, which must serve it on the inherited fd.
        r = gw.http("GET", "/v1/status", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        gw.wait_ready(start=n)
        self.assertEqual(self.bus.name_owner_pid(BUS_NAME), gw.proc.pid,
                         "the exec'd daemon owns the bus name too")
        # Writes through the activated socket, as an admin via polkit.
        r = gw.http("POST", "/v1/services", spec("sockact"), as_user=users.ADMIN)
        self.assertEqual(r.status, 201, r.body)
        p, data = gw.call("GetService", "s", "sockact", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_socket_activation_keeps_socket(self):
        """gatewayd uses the passed socket and does not bind its own over it."""
        gw = self.gatewayd(mode="socket")
        ino = os.stat(gw.socket_path).st_ino
        self.assertEqual(gw.http("GET", "/v1/status").status, 200)
        gw.wait_ready()
        self.assertEqual(os.stat(gw.socket_path).st_ino, ino)
        for _ in range(3):
            self.assertEqual(gw.http("GET", "/v1/services").status, 200)

    # -- D-Bus activation -----------------------------------------------------------------------

    def test_dbus_activation(self):
        gw = self.gatewayd(mode="dbus")
        self.assertIsNone(self.bus.name_owner_pid(BUS_NAME))
        p, data = gw.call("GetStatus", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr + self.bus.log_text())
        self.assertIn("version", json.loads(data[0]))
        pid = self.bus.name_owner_pid(BUS_NAME)
        self.assertIsNotNone(pid)
        with open(gw.pidfile) as f:
            self.assertEqual(int(f.read()), pid, "the activated process is ours")
        # The activated daemon also serves HTTP on its runtime directory.
        self.assertEqual(gw.http("GET", "/v1/status", as_user=users.USER).status, 200)

    def test_dbus_activation_create_then_read(self):
        gw = self.gatewayd(mode="dbus")
        p, data = gw.call("CreateService", "s", json.dumps(spec("viabus")), as_user=users.ADMIN)
        self.assertEqual(p.returncode, 0, p.stderr)
        p, data = gw.call("GetService", "s", "viabus", as_user=users.OTHER)
        self.assertEqual(json.loads(data[0])["name"], "viabus")

    # -- idle exit ----------------------------------------------------------------------------

    def test_idle_exit_and_reactivation(self):
        gw = self.gatewayd(mode="dbus", idle_timeout=1)
        with BusMonitor(self.bus) as mon:
            p, _ = gw.call("CreateService", "s", json.dumps(spec("idle")))
            self.assertEqual(p.returncode, 0, p.stderr)
            first = self.bus.name_owner_pid(BUS_NAME)
            t0 = time.monotonic()
            mon.wait_signal("NameOwnerChanged", predicate=name_lost, timeout=15)
            self.assertGreaterEqual(time.monotonic() - t0, 0.5, "not before the idle timeout")
        gw.notify.wait("STOPPING=1")
        # Re-activation on the next call, state intact.
        p, data = gw.call("GetService", "s", "idle", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(data[0])["name"], "idle")
        second = self.bus.name_owner_pid(BUS_NAME)
        self.assertIsNotNone(second)
        self.assertNotEqual(first, second)

    def test_idle_timeout_zero_never_exits(self):
        """--idle-timeout 0: still there after a period that would have ended a 1 s timeout.
        (A deliberate wait: the event under test is the absence of an exit.)"""
        gw = self.gatewayd(mode="dbus", idle_timeout=0)
        p, _ = gw.call("GetStatus")
        self.assertEqual(p.returncode, 0, p.stderr)
        pid = self.bus.name_owner_pid(BUS_NAME)
        with BusMonitor(self.bus) as mon:
            with self.assertRaises(TimeoutError):
                mon.wait_signal("NameOwnerChanged", predicate=name_lost, timeout=2.5)
        self.assertEqual(self.bus.name_owner_pid(BUS_NAME), pid)

    def test_no_request_lost_across_idle_exit(self):
        """A stream of D-Bus calls across several idle exits: calls fired right when the daemon
        announces STOPPING=1, and calls spaced around the idle timeout. Every call gets the
        right reply, from the old instance or from a newly activated one."""
        gw = self.gatewayd(mode="dbus", idle_timeout=1)
        p, _ = gw.call("CreateService", "s", json.dumps(spec("stream", description="s")))
        self.assertEqual(p.returncode, 0, p.stderr)
        failures = []
        replies = []

        def one_call(tag):
            p, data = gw.call("GetService", "s", "stream", as_user=users.USER, timeout=30)
            if p.returncode != 0 or json.loads(data[0]).get("description") != "s":
                failures.append((tag, p.returncode, p.stderr))
            else:
                replies.append(tag)

        pids = set()
        # Bursts exactly at the moment of the idle exit.
        for rnd in range(3):
            n = gw.notify.count()
            gw.notify.wait("STOPPING=1", start=n, timeout=15)
            threads = [threading.Thread(target=one_call, args=(f"burst{rnd}-{i}",)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            pid = self.bus.name_owner_pid(BUS_NAME)
            if pid:
                pids.add(pid)
        # A steady stream whose gaps straddle the idle timeout (timing is what is tested here).
        for i, gap in enumerate((0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 0.5)):
            time.sleep(gap)
            one_call(f"stream{i}")
            pid = self.bus.name_owner_pid(BUS_NAME)
            if pid:
                pids.add(pid)
        self.assertEqual(failures, [])
        self.assertEqual(len(replies), 3 * 8 + 7)
        self.assertGreaterEqual(len(pids), 2, "the daemon really went away and came back")
        self.assertNotIn("Failed to activate", self.bus.log_text())


class SocketAndIdle(GatewaydTestCase):
    """HTTP requests across idle exits of a directly started daemon: it must not exit while a
    request is being served (exit only when idle)."""

    def test_busy_http_prevents_idle_exit(self):
        bus = self.track(PrivateBus().start())
        self.addCleanup(bus.stop)
        gw = self.track(Gatewayd(bus=bus, idle_timeout=1))
        gw.start()
        self.addCleanup(gw.stop)
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            r = gw.http("GET", "/v1/status")
            self.assertEqual(r.status, 200, r.body)
        self.assertIsNone(gw.proc.poll(), "still running while requests keep coming")
        gw.notify.wait("STOPPING=1", timeout=15)
        self.assertEqual(gw.wait_exit(15), 0, "idle exit is a clean exit")


if __name__ == "__main__":
    import unittest
    unittest.main()
