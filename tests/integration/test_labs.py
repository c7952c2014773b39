"""Labs (issue 12): lab definitions over HTTP — create/replace with PUT, list, get, remove; the
polkit action org.gatewayd.manage-labs (root and gatewayd-admin members yes, ordinary users no,
reading open to all); strict validation of every field (400 InvalidArgument naming the field);
definitions survive a kill -9 of gatewayd. Every answer is checked against docs/openapi.yaml."""
import copy
import os
import signal
import unittest

from harness import openapi, users
from harness.procs import source_dir
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

    def test_survives_kill(self):
        name = self.name("lab")
        rec = self.put(name, lab()).json
        self.gw.kill(signal.SIGKILL)
        self.gw.start()
        r = self.gw.http("GET", f"/v1/labs/{name}")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json, rec)


if __name__ == "__main__":
    unittest.main()
