"""Authorization of the service registry: anyone may read; create/update/delete need the polkit
action org.gatewayd.manage-services. root always, members of gatewayd-admin through the test
rule, ordinary users never. Checked on every surface (HTTP, D-Bus, gatewayctl), with a real
polkitd, and with no polkitd at all (then only root)."""
import json
import os
import unittest

from harness import procs, users
from harness.gatewayd import BUS_NAME, BUS_PATH, MANAGER_IFACE
from harness.stack import StackTestCase, spec

ACCESS_DENIED = "org.gatewayd.Gateway1.Error.AccessDenied"
ALLOWED = ("root", users.ADMIN)
DENIED = (users.USER, users.OTHER)
# What polkit's own "no" for an ordinary user reads like (auth_admin: a challenge).
POLKIT_REFUSALS = ("Interactive authentication required.", "Not authorized by polkit.")


class Matrix(StackTestCase):
    """(root, admin, user) × (HTTP, D-Bus, gatewayctl) × (create, update, delete)."""

    # -- one operation on one surface as one user; returns True if it was allowed -----------

    def http_op(self, op, user, name):
        if op == "create":
            r = self.gw.http("POST", "/v1/services", spec(name), as_user=user)
            ok_status = 201
        elif op == "update":
            r = self.gw.http("PUT", f"/v1/services/{name}", spec(name, description=f"by {user}"),
                             as_user=user)
            ok_status = 200
        else:
            r = self.gw.http("DELETE", f"/v1/services/{name}", as_user=user)
            ok_status = 204
        if r.status == ok_status:
            return True
        self.assertError(r, 403, "AccessDenied")
        return False

    def dbus_op(self, op, user, name):
        if op == "create":
            p, err = self.gw.gdbus_call("CreateService", json.dumps(spec(name)), as_user=user)
        elif op == "update":
            p, err = self.gw.gdbus_call("UpdateService", name,
                                        json.dumps(spec(name, description=f"by {user}")), as_user=user)
        else:
            p, err = self.gw.gdbus_call("RemoveService", name, as_user=user)
        if p.returncode == 0:
            return True
        self.assertEqual(err, ACCESS_DENIED, p.stderr)
        return False

    def ctl_op(self, op, user, name):
        if op == "create":
            p = self.gw.gatewayctl("--no-ask-password", "service", "create", name,
                                   f"--image={spec(name)['image']}", as_user=user)
        elif op == "update":
            p = self.gw.gatewayctl("--no-ask-password", "service", "update", name,
                                   f"--description=by {user}", as_user=user)
        else:
            p = self.gw.gatewayctl("--no-ask-password", "service", "rm", name, as_user=user)
        if p.returncode == 0:
            return True
        # The D-Bus error's message reaches the user.
        self.assertTrue(p.stderr.strip(), "gatewayctl says why")
        dp, err = self.gw.gdbus_call("RemoveService", name, as_user=user) if op == "delete" else \
            self.gw.gdbus_call("CreateService", json.dumps(spec(name)), as_user=user) if op == "create" else \
            self.gw.gdbus_call("UpdateService", name, json.dumps(spec(name)), as_user=user)
        self.assertEqual(err, ACCESS_DENIED, dp.stderr)
        msg = dp.stderr.split(ACCESS_DENIED + ": ", 1)[-1].strip()
        self.assertIn(msg, p.stderr)
        return False

    def run_matrix(self, surface):
        do = {"http": self.http_op, "dbus": self.dbus_op, "ctl": self.ctl_op}[surface]
        for user in ALLOWED + DENIED:
            allowed = user in ALLOWED
            with self.subTest(surface=surface, user=user):
                name = self.name(f"{surface}")
                # create
                self.assertEqual(do("create", user, name), allowed, f"{user} create")
                self.assertEqual(self.exists(name), allowed)
                if not allowed:
                    self.create(name)  # as root, for update/delete
                before = self.gw.http("GET", f"/v1/services/{name}").json
                # update
                self.assertEqual(do("update", user, name), allowed, f"{user} update")
                after = self.gw.http("GET", f"/v1/services/{name}").json
                if allowed:
                    self.assertEqual(after["description"], f"by {user}")
                else:
                    self.assertEqual(after, before, "a refused update changes nothing")
                # delete
                self.assertEqual(do("delete", user, name), allowed, f"{user} delete")
                self.assertEqual(self.exists(name), not allowed)

    def test_http(self):
        self.run_matrix("http")

    def test_dbus(self):
        self.run_matrix("dbus")

    def test_gatewayctl(self):
        self.run_matrix("ctl")

    def test_everyone_may_read(self):
        name = self.name("read")
        rec = self.create(name)
        for user in ALLOWED + DENIED:
            with self.subTest(user=user):
                r = self.gw.http("GET", "/v1/services", as_user=user)
                self.assertEqual(r.status, 200, r.body)
                self.assertIn(rec, r.json["services"])
                r = self.gw.http("GET", f"/v1/services/{name}", as_user=user)
                self.assertEqual(r.json, rec)
                self.assertEqual(self.gw.http("GET", "/v1/status", as_user=user).status, 200)
                p, data = self.gw.call("GetService", "s", name, as_user=user)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(json.loads(data[0]), rec)
                p, data = self.gw.call("ListServices", as_user=user)
                self.assertEqual(p.returncode, 0, p.stderr)
                p, data = self.gw.call("GetStatus", as_user=user)
                self.assertEqual(p.returncode, 0, p.stderr)
                p = self.gw.gatewayctl("services", "--json", as_user=user)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertIn(name, [s["name"] for s in json.loads(p.stdout)])

    def test_identity_not_from_request(self):
        """Only the socket's peer credentials count: user names in headers change nothing."""
        name = self.name("hdr")
        r = self.gw.http("POST", "/v1/services", spec(name), as_user=users.USER,
                         headers={"X-Remote-User": "root", "X-Forwarded-User": "root",
                                  "Authorization": "Basic cm9vdDpyb290", "X-User": "0"})
        self.assertError(r, 403, "AccessDenied")
        self.assertFalse(self.exists(name))

    def test_denied_before_validation_leaks_nothing(self):
        """An ordinary user's invalid or duplicate create is still just AccessDenied (no
        probing of what exists through error codes)."""
        name = self.name("probe")
        self.create(name)
        r = self.gw.http("POST", "/v1/services", spec(name), as_user=users.USER)
        self.assertError(r, 403, "AccessDenied")
        r = self.gw.http("DELETE", "/v1/services/does-not-exist", as_user=users.USER)
        self.assertIn(r.status, (403, 404), r.body)


class NoPolkit(StackTestCase):
    """polkitd not running (not even activatable): only root may change services; everyone
    else is refused with a message that mentions polkit, and the daemon stays up."""
    with_polkit = False

    def test_root_still_allowed(self):
        name = self.name("root")
        self.create(name)
        r = self.gw.http("PUT", f"/v1/services/{name}", spec(name, description="x"))
        self.assertEqual(r.status, 200, r.body)
        p, _ = self.gw.call("RemoveService", "s", name)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_admin_refused_http(self):
        r = self.gw.http("POST", "/v1/services", spec(self.name("adm")), as_user=users.ADMIN)
        self.assertError(r, 403, "AccessDenied")
        self.assertIn("polkit", r.error_message().lower())

    def test_admin_refused_dbus(self):
        name = self.name("adm")
        p, err = self.gw.gdbus_call("CreateService", json.dumps(spec(name)), as_user=users.ADMIN)
        self.assertEqual(err, ACCESS_DENIED, p.stderr)
        self.assertIn("polkit", p.stderr.lower())
        self.assertFalse(self.exists(name))

    def test_user_refused(self):
        name = self.name("usr")
        self.create(name)
        r = self.gw.http("DELETE", f"/v1/services/{name}", as_user=users.USER)
        self.assertError(r, 403, "AccessDenied")
        self.assertTrue(self.exists(name))

    def test_reads_need_no_polkit(self):
        r = self.gw.http("GET", "/v1/services", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)


class BusPolicyWithDaemon(StackTestCase):
    """The bus policy in front of a running gatewayd: any user reaches the gatewayd interfaces
    and the standard ones; anything else is stopped by the bus, before gatewayd sees it."""
    with_polkit = False

    def test_user_reaches_gatewayd_interfaces(self):
        p = self.gw.busctl("get-property", "org.gatewayd.Gateway1", "/org/gatewayd/Gateway1",
                           "org.gatewayd.Gateway1.Manager", "Version", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.gw.busctl("introspect", "org.gatewayd.Gateway1", "/org/gatewayd/Gateway1",
                           as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.gw.busctl("call", "org.gatewayd.Gateway1", "/org/gatewayd/Gateway1",
                           "org.freedesktop.DBus.Peer", "Ping", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_other_interfaces_blocked_by_bus(self):
        p, err = self.gw.gdbus_call("Anything", iface="org.gatewayd.Gateway1.Secret", as_user=users.USER)
        self.assertEqual(err, "org.freedesktop.DBus.Error.AccessDenied", p.stderr)
        self.assertIn("Rejected send message", p.stderr)
        # root passes the bus; gatewayd itself answers that there is no such method.
        p, err = self.gw.gdbus_call("Anything", iface="org.gatewayd.Gateway1.Secret")
        self.assertIn(err, ("org.freedesktop.DBus.Error.UnknownMethod",
                            "org.freedesktop.DBus.Error.UnknownInterface",
                            "org.freedesktop.DBus.Error.UnknownObject"), p.stderr)


class PolkitUnderLoad(StackTestCase):
    """Many unauthorized calls at the same moment are each refused by polkit itself: none of
    them is told that polkit is unavailable (the bus allows a connection only so many pending
    replies; gatewayd must not run into that limit or report it as an absent polkit)."""
    N = 200
    # 200 connections of one user at once (a per-user connection cap must not refuse them).
    config = {"ConnectionsPerUser": 256}

    def flood(self, mode, spec):
        p = users.run_as(users.USER, ["python3", os.path.join(os.path.dirname(__file__), "harness", "flood.py"),
                                      mode, json.dumps(spec)], timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_dbus(self):
        names = [self.name("flood") for _ in range(self.N)]
        results = self.flood("dbus", {"address": self.bus.address, "dest": BUS_NAME, "path": BUS_PATH,
                                      "iface": MANAGER_IFACE, "method": "CreateService",
                                      "calls": [[json.dumps(spec(n))] for n in names]})
        self.assertEqual(len(results), self.N)
        unavailable = [m for _, m in results if m and "not available" in m]
        self.assertEqual(unavailable, [], f"{len(unavailable)} of {self.N} told polkit is not available")
        for error, message in results:
            self.assertEqual(error, ACCESS_DENIED, message)
            self.assertIn(message, POLKIT_REFUSALS)
        self.assertFalse(any(self.exists(n) for n in names[:5]))
        self.assertServing()

    def test_http(self):
        names = [self.name("flood") for _ in range(self.N)]
        results = self.flood("http", {"socket": self.gw.socket_path,
                                      "requests": [["POST", "/v1/services", json.dumps(spec(n))] for n in names]})
        self.assertEqual(len(results), self.N)
        for status, body in results:
            self.assertEqual(status, 403, body)
            error = json.loads(body)["error"]
            self.assertEqual(error["code"], "AccessDenied", body)
            self.assertIn(error["message"], POLKIT_REFUSALS)
        self.assertServing()


# As a client submitting job after job does it: one process, one kept connection; prints the
# statuses as JSON.
SUBMITTER = r"""
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sys.argv[1])
c, out = C("localhost"), []
for body in json.loads(sys.argv[3]):
    c.request("POST", sys.argv[2], body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    out.append(r.status)
print(json.dumps(out))
"""

class PolkitGrants(StackTestCase):
    """polkit's "yes" for an action every user has by policy (submit-job) is kept for a few
    seconds per process: a client submitting over one connection is checked once, not per job.
    Never a refusal, never an admin action. Counted by gatewayd's own record of each answer
    polkitd gave (debug log): rules files are shared by every polkitd on the host, so a rule
    that counted would count other test runs' checks too."""
    gatewayd_env = {"GATEWAYD_LOG_LEVEL": "debug"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.service = f"grants-{os.getpid() % 10000}"
        r = cls.gw.http("POST", "/v1/services", {"name": cls.service, "image": "registry.example.org/none:1"})
        assert r.status == 201, r.body

    def answers(self, user, verdict, action):
        return self.gw.stderr_text().count(f"polkit: uid {users.uid_of(user)} {verdict} for {action}")

    def post_many(self, user, path, bodies):
        p = users.run_as(user, ["python3", "-c", SUBMITTER, self.gw.socket_path, path, json.dumps(bodies)])
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def test_granted_once_per_process(self):
        before = self.answers(users.USER, "authorized", "org.gatewayd.submit-job")
        self.assertEqual(self.post_many(users.USER, f"/v1/services/{self.service}/jobs", [{}] * 5), [201] * 5)
        self.assertEqual(self.answers(users.USER, "authorized", "org.gatewayd.submit-job") - before, 1)
        # Another process of the same user is another subject: asked again.
        self.assertEqual(self.post_many(users.USER, f"/v1/services/{self.service}/jobs", [{}]), [201])
        self.assertEqual(self.answers(users.USER, "authorized", "org.gatewayd.submit-job") - before, 2)

    def test_refusals_and_admin_actions_asked_each_time(self):
        names = [f"grants-admin-{os.getpid() % 10000}-{k}" for k in range(3)]
        before = self.answers(users.USER, "denied", "org.gatewayd.manage-services")
        self.assertEqual(self.post_many(users.USER, "/v1/services", [spec(n) for n in names]), [403] * 3)
        self.assertEqual(self.answers(users.USER, "denied", "org.gatewayd.manage-services") - before, 3)
        before = self.answers(users.ADMIN, "authorized", "org.gatewayd.manage-services")
        self.assertEqual(self.post_many(users.ADMIN, "/v1/services", [spec(n) for n in names]), [201] * 3)
        self.assertEqual(self.answers(users.ADMIN, "authorized", "org.gatewayd.manage-services") - before, 3)
        self.assertServing()


if __name__ == "__main__":
    unittest.main()
