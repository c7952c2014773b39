"""LabOrchestrator-compatible API (issue 12; docs/labs.md, docs/openapi-laborch.yaml,
shared/facts/laborch.md): LabOrchestrator's front-end calls in its order — list images, list
labs, create an instance ({"lab": id} → 201 with jwt_token and lab_vnc_path), reach the console
through a real gateway-proxy with them (noVNC's page, then its WebSocket bridged to the member's
vnc port), renew the token, delete (204; the tokens are refused at once). Integer ids are stable
across a restart; DRF's error bodies for bad input; others' instances are 404, staff
(org.gatewayd.manage-labs) see and delete them. Every answer is checked against
docs/openapi-laborch.yaml, and that file against the route table."""
import http.client
import json
import os
import re
import unittest

from harness import images, openapi, procs, users
from harness.procs import source_dir
from harness.registry import free_port
from test_lab_proxy import raw_request, ws_headers, ws_recv, ws_send
from harness.proxy import WithProxy
from test_labs import WEB_CMD, InstancesBase

DOC = openapi.load(os.path.join(source_dir(), "docs", "openapi-laborch.yaml"))
ROUTES_C = os.path.join(source_dir(), "src", "gatewayd", "http-api.c")
LABORCH = re.compile(r"^/api/(docker_images|lab_docker_images|labs|lab_instances)(/|$)")


def template_of(path):
    """The document's path template for a request path: integers are {id}."""
    return re.sub(r"/\d+(?=/|$)", "/{id}", path.split("?")[0].rstrip("/"))


class LabOrchestratorApi(WithProxy, InstancesBase):
    @classmethod
    def setUpClass(cls):
        cls.extra_config = {"LabInstancesPerUser": 4}
        super().setUpClass()
        cls.validator = openapi.Validator(DOC)
        try:
            echo = images.Layer().busybox(("sh", "nc", "cat"))
            images.push_image(cls.registry, "labs/echo", "1", images.Image([(echo, "gzip")]))
            cls.echo_ref = f"{cls.registry.host}/labs/echo:1"
            # The console is the second member: lab_vnc_path must name it, not the first.
            cls.console = cls._put_lab(cls, "console", [
                {"name": "web", "image": cls.web_ref, "command": WEB_CMD, "ports": [{"port": 8080, "kind": "http"}]},
                {"name": "desk", "image": cls.echo_ref, "command": ["/bin/nc", "-ll", "-p", "5900", "-e", "/bin/cat"],
                 "ports": [{"port": 5900, "kind": "vnc"}]}], description="A desktop and a web server")
            cls.start_proxy()
        except BaseException:
            cls.tearDownClass()
            raise

    # -- helpers --------------------------------------------------------------------------------

    def call(self, method, path, body=None, as_user=users.USER, **kw):
        """One request; the answer must be the one docs/openapi-laborch.yaml gives."""
        r = self.gw.http(method, path, body, as_user=as_user, **kw)
        schema = self.validator.response_schema(template_of(path), method, r.status)
        if schema is not None:
            self.assertEqual(self.validator.check(schema, r.json), [], f"{method} {path} {r.status}: {r.body}")
        return r

    def lab_by_name(self, name):
        r = self.call("GET", "/api/labs/")
        self.assertEqual(r.status, 200, r.body)
        found = [lab for lab in r.json if lab["name"] == name]
        self.assertEqual(len(found), 1, r.json)
        return found[0]

    def create(self, lab_id, as_user=users.USER):
        r = self.call("POST", "/api/lab_instances/", {"lab": lab_id}, as_user=as_user)
        self.assertEqual(r.status, 201, r.body)
        self.addCleanup(self.gw.http, "DELETE", f"/api/lab_instances/{r.json['id']}/", as_user=as_user)
        return r.json

    def proxy(self, target, **kw):
        return raw_request(self.proxy_port, target, **kw)

    def open_console(self, vnc_path):
        """What the browser does with lab_vnc_path: noVNC's page, then its WebSocket."""
        status, fields, _, _ = self.proxy(vnc_path)
        self.assertEqual(status, 302)
        base = vnc_path.strip("/")
        self.assertEqual(fields["location"], f"/{base}/vnc.html?autoconnect=true&resize=scale&path={base}/websockify")

        def opened():
            status, _, rest, s = self.proxy(f"/{base}/websockify", headers=ws_headers())
            return (s, rest) if status == 101 else None
        return procs.wait_for(opened, timeout=20, what="the console's WebSocket")

    def echo(self, s, pending, payload):
        ws_send(s, payload)
        got = b""
        while len(got) < len(payload):
            op, data, pending = ws_recv(s, pending)
            self.assertIsNotNone(op, "the bridge closed")
            got += data
        self.assertEqual(got, payload)
        return pending

    # -- tests ----------------------------------------------------------------------------------

    def test_front_end_flow(self):
        uid = users.uid_of(users.USER)
        # 1. images: every reference a lab member uses, once
        r = self.call("GET", "/api/docker_images/")
        self.assertEqual(r.status, 200, r.body)
        by_url = {i["url"]: i for i in r.json}
        self.assertTrue({self.web_ref, self.client_ref, self.echo_ref} <= set(by_url), r.json)
        self.assertEqual(len(by_url), len(r.json))
        self.assertEqual([i["id"] for i in r.json], sorted(i["id"] for i in r.json))
        for i in r.json:
            self.assertEqual(self.call("GET", f"/api/docker_images/{i['id']}/").json, i)
        # 2. labs, with their members as lab_docker_images
        lab = self.lab_by_name(self.console)
        self.assertEqual(lab["namespace_prefix"], self.console)
        self.assertEqual(lab["description"], "A desktop and a web server")
        self.assertEqual([(d["docker_image_name"], d["lab"], d["docker_image"]) for d in lab["lab_docker_images"]],
                         [("web", lab["id"], by_url[self.web_ref]["id"]), ("desk", lab["id"], by_url[self.echo_ref]["id"])])
        self.assertEqual(self.call("GET", f"/api/labs/{lab['id']}/").json, lab)
        for d in lab["lab_docker_images"]:
            self.assertEqual(self.call("GET", f"/api/lab_docker_images/{d['id']}/").json, d)
        self.assertIn(lab["lab_docker_images"][0], self.call("GET", "/api/lab_docker_images/").json)
        # 3. an instance: its token opens the console at lab_vnc_path
        inst = self.create(lab["id"])
        self.assertEqual(inst["lab_id"], lab["id"])
        self.assertEqual(inst["lab"], {"id": lab["id"], "name": self.console, "docker_images": [
            {"id": d["id"], "docker_image_id": d["docker_image"], "docker_image_name": d["docker_image_name"]}
            for d in lab["lab_docker_images"]]})
        self.assertEqual((inst["user_id"], inst["user"]), (uid, {"id": uid, "email": users.USER}))
        self.assertEqual(len(inst["jwt_token"].split(".")), 3)
        self.assertEqual(inst["lab_vnc_path"], f"/{inst['jwt_token']}/desk/")
        s, pending = self.open_console(inst["lab_vnc_path"])
        try:
            s.settimeout(10)
            pending = self.echo(s, pending, b"RFB 003.008\n")
            # listed and retrieved as LabOrchestrator shows instances
            listed = self.call("GET", "/api/lab_instances/").json
            self.assertIn({"id": inst["id"], "lab": lab, "user": {"id": uid, "email": users.USER}}, listed)
            self.assertEqual(self.call("GET", f"/api/lab_instances/{inst['id']}/").json,
                             {"id": inst["id"], "lab": lab, "user": {"id": uid, "email": users.USER}})
            # 4. renewal: same shape, a new token that works too; the open console goes on
            r = self.call("GET", f"/api/lab_instances/{inst['id']}/token/")
            self.assertEqual(r.status, 200, r.body)
            renewed = r.json
            self.assertNotEqual(renewed["jwt_token"], inst["jwt_token"])
            self.assertEqual({k: v for k, v in renewed.items() if k not in ("jwt_token", "lab_vnc_path")},
                             {k: v for k, v in inst.items() if k not in ("jwt_token", "lab_vnc_path")})
            self.assertEqual(renewed["lab_vnc_path"], f"/{renewed['jwt_token']}/desk/")
            self.assertEqual(self.proxy(renewed["lab_vnc_path"])[0], 302)
            pending = self.echo(s, pending, b"still open")
            # 5. delete: 204 without a body, the console is closed, both tokens refused
            r = self.call("DELETE", f"/api/lab_instances/{inst['id']}/")
            self.assertEqual(r.status, 204, r.body)
            self.assertEqual(r.body, "")
            while True:
                op, _, pending = ws_recv(s, pending)
                if op is None or op == 8:
                    break
        finally:
            s.close()
        for token in (inst["jwt_token"], renewed["jwt_token"]):
            self.assertEqual(self.proxy(f"/{token}/desk/")[0], 401)
            self.assertEqual(self.proxy(f"/{token}/desk/websockify", headers=ws_headers())[0], 401)
        self.assertEqual(self.call("GET", f"/api/lab_instances/{inst['id']}/").status, 404)
        self.assertNotIn(inst["id"], [i["id"] for i in self.call("GET", "/api/lab_instances/").json])
        self.assertEqual(self.call("GET", f"/api/lab_instances/{inst['id']}/token/").status, 404)

    def test_bad_input(self):
        lab = self.lab_by_name(self.single)
        missing = max(lab["id"] for lab in self.call("GET", "/api/labs/").json) + 1000
        cases = [
            ({"lab": missing}, {"lab": [f'Invalid pk "{missing}" - object does not exist.']}),
            ({"lab": 0}, {"lab": ['Invalid pk "0" - object does not exist.']}),
            ({}, {"lab": ["This field is required."]}),
            ({"lab": None}, {"lab": ["This field may not be null."]}),
            ({"lab": "single"}, {"lab": ["Incorrect type. Expected pk value, received str."]}),
            ({"lab": True}, {"lab": ["Incorrect type. Expected pk value, received bool."]}),
            ([lab["id"]], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ]
        for body, answer in cases:
            with self.subTest(body=body):
                r = self.call("POST", "/api/lab_instances/", body)
                self.assertEqual((r.status, r.json), (400, answer), r.body)
        r = self.call("POST", "/api/lab_instances/", "")
        self.assertEqual((r.status, r.json), (400, {"lab": ["This field is required."]}), r.body)
        r = self.call("POST", "/api/lab_instances/", '{"lab": ')
        self.assertEqual(r.status, 400, r.body)
        self.assertTrue(r.json["detail"].startswith("JSON parse error - "), r.body)
        r = self.call("POST", "/api/lab_instances/", '{"lab": 1}', content_type="text/plain")
        self.assertEqual((r.status, r.json), (415, {"detail": 'Unsupported media type "text/plain" in request.'}))
        for path in (f"/api/labs/{missing}/", "/api/labs/abc/", "/api/labs/0/", "/api/docker_images/999999/",
                     "/api/lab_docker_images/999999/", "/api/lab_instances/999999/", "/api/lab_instances/-1/",
                     "/api/lab_instances/999999/token/"):
            with self.subTest(path=path):
                r = self.gw.http("GET", path, as_user=users.USER)
                self.assertEqual((r.status, r.json), (404, {"detail": "Not found."}), r.body)
        self.assertEqual(self.call("DELETE", "/api/lab_instances/999999/").status, 404)
        # a string digits id is a pk, as DRF takes it; the daemon keeps serving
        inst = self.create(str(lab["id"]))
        self.assertEqual(inst["lab_id"], lab["id"])
        self.assertEqual(self.call("GET", "/api/labs/").status, 200)

    def test_instances_per_user(self):
        """LabInstancesPerUser (4 here) holds for /api/ too: 429 with DRF's detail."""
        lab = self.lab_by_name(self.single)
        for _ in range(4):
            self.create(lab["id"])
        r = self.call("POST", "/api/lab_instances/", {"lab": lab["id"]})
        self.assertEqual(r.status, 429, r.body)
        self.assertEqual(list(r.json), ["detail"])
        self.assertIn("LabInstancesPerUser", r.json["detail"])

    def test_others_instances(self):
        lab = self.lab_by_name(self.single)
        theirs = self.create(lab["id"], as_user=users.OTHER)
        mine = self.create(lab["id"])
        self.assertNotEqual(theirs["id"], mine["id"])
        # another user: not found, whatever they try; their own list leaves it out
        for method, path in (("GET", f"/api/lab_instances/{theirs['id']}/"),
                             ("GET", f"/api/lab_instances/{theirs['id']}/token/"),
                             ("DELETE", f"/api/lab_instances/{theirs['id']}/")):
            with self.subTest(method=method, path=path):
                r = self.call(method, path)
                self.assertEqual((r.status, r.json), (404, {"detail": "Not found."}), r.body)
        self.assertEqual([i["id"] for i in self.call("GET", "/api/lab_instances/").json], [mine["id"]])
        # staff (root; gatewayd-admin through polkit) see everyone's and may delete them, but a
        # token is only for the owner
        for admin in ("root", users.ADMIN):
            with self.subTest(admin=admin):
                ids = [i["id"] for i in self.call("GET", "/api/lab_instances/", as_user=admin).json]
                self.assertTrue({theirs["id"], mine["id"]} <= set(ids), ids)
                r = self.call("GET", f"/api/lab_instances/{theirs['id']}/", as_user=admin)
                self.assertEqual(r.json["user"], {"id": users.uid_of(users.OTHER), "email": users.OTHER})
                self.assertEqual(self.call("GET", f"/api/lab_instances/{theirs['id']}/token/", as_user=admin).status, 404)
        self.assertEqual(self.call("DELETE", f"/api/lab_instances/{theirs['id']}/", as_user=users.ADMIN).status, 204)
        self.assertEqual(self.call("GET", f"/api/lab_instances/{theirs['id']}/", as_user=users.OTHER).status, 404)
        self.assertEqual(self.call("GET", f"/api/lab_instances/{mine['id']}/").status, 200)

    def test_ids_are_stable(self):
        before = {p: self.call("GET", p).json for p in ("/api/docker_images/", "/api/labs/")}
        self.gw.restart()
        for path, old in before.items():
            with self.subTest(path=path):
                self.assertEqual(self.call("GET", path).json, old)
        # a new lab gets a new id; removed, its id is not found (and not reused)
        name = self._put_lab("fresh", [{"name": "idle", "image": self.client_ref, "command": ["/bin/sleep", "1"]}])
        fresh = self.lab_by_name(name)
        self.assertGreater(fresh["id"], max(lab["id"] for lab in before["/api/labs/"]))
        self.assertEqual(self.gw.http("DELETE", f"/v1/labs/{name}").status, 204)
        self.assertEqual(self.call("GET", f"/api/labs/{fresh['id']}/").status, 404)
        name2 = self._put_lab("fresher", [{"name": "idle", "image": self.client_ref, "command": ["/bin/sleep", "1"]}])
        self.addCleanup(self.gw.http, "DELETE", f"/v1/labs/{name2}")
        self.assertGreater(self.lab_by_name(name2)["id"], fresh["id"])

    def test_lab_proxy_url(self):
        """With LabProxyURL, lab_vnc_path is absolute, as LabOrchestrator's front-end expects."""
        plain = dict(self.gw.config)

        def restore():
            self.gw.write_config(plain)
            self.gw.restart()
        self.gw.write_config(dict(plain, LabProxyURL="https://labs.example.org:8443/gw/"))
        self.gw.restart()
        self.addCleanup(restore)
        console = self.create(self.lab_by_name(self.console)["id"])
        self.assertEqual(console["lab_vnc_path"], f"https://labs.example.org:8443/gw/{console['jwt_token']}/desk/")
        # a lab without a vnc port: its first member, as LabOrchestrator takes the first image
        single = self.create(self.lab_by_name(self.single)["id"])
        self.assertEqual(single["lab_vnc_path"], f"https://labs.example.org:8443/gw/{single['jwt_token']}/idle/")
        renewed = self.call("GET", f"/api/lab_instances/{single['id']}/token/").json
        self.assertEqual(renewed["lab_vnc_path"], f"https://labs.example.org:8443/gw/{renewed['jwt_token']}/idle/")

    def test_network_callers(self):
        """On TCP, gatewayd's bearer tokens and their scopes: reading needs "read", creating an
        instance and renewing its token "submit"; no credential is 401."""
        plain, port = dict(self.gw.config), free_port()

        def restore():
            self.gw.write_config(plain)
            self.gw.restart()
        self.gw.write_config(dict(plain, Listen={"tcp": f"127.0.0.1:{port}"}))
        self.gw.restart()
        self.addCleanup(restore)

        def token(scope):
            r = self.gw.http("POST", "/v1/tokens", {"expiresIn": 600, "scope": scope}, as_user=users.USER)
            self.assertEqual(r.status, 201, r.body)
            return r.json["token"]

        def net(method, path, tok=None, body=None):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                h = {"Authorization": f"Bearer {tok}"} if tok else {}
                if body is not None:
                    h["Content-Type"] = "application/json"
                conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=h)
                r = conn.getresponse()
                text = r.read().decode()
                return r.status, json.loads(text) if text else None
            finally:
                conn.close()
        read, submit = token(["read"]), token(["submit"])
        lab = self.lab_by_name(self.single)
        self.assertEqual(net("GET", "/api/labs/")[0], 401)
        status, labs = net("GET", "/api/labs/", read)
        self.assertEqual(status, 200)
        self.assertIn(lab, labs)
        status, body = net("POST", "/api/lab_instances/", read, {"lab": lab["id"]})
        self.assertEqual((status, body["error"]["code"]), (403, "AccessDenied"))
        status, inst = net("POST", "/api/lab_instances/", submit, {"lab": lab["id"]})
        self.assertEqual(status, 201, inst)
        self.addCleanup(self.gw.http, "DELETE", f"/api/lab_instances/{inst['id']}/", as_user=users.USER)
        self.assertEqual(inst["user"], {"id": users.uid_of(users.USER), "email": users.USER})
        self.assertEqual(net("GET", f"/api/lab_instances/{inst['id']}/token/", read)[0], 403)
        status, renewed = net("GET", f"/api/lab_instances/{inst['id']}/token/", submit)
        self.assertEqual(status, 200, renewed)
        self.assertNotEqual(renewed["jwt_token"], inst["jwt_token"])
        self.assertEqual(net("GET", f"/api/lab_instances/{inst['id']}/", read)[1]["user"]["email"], users.USER)
        self.assertEqual(net("DELETE", f"/api/lab_instances/{inst['id']}/", read)[0], 403)
        self.assertEqual(net("DELETE", f"/api/lab_instances/{inst['id']}/", submit), (204, None))


class DocumentMatchesRouteTable(unittest.TestCase):
    """LabOrchestrator's routes in http-api.c and docs/openapi-laborch.yaml are the same API."""

    def test_routes_and_document_agree(self):
        with open(ROUTES_C) as f:
            table = re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"(/api/[^"]*)"', f.read())
        routes = {(m.lower(), p) for m, p in table if LABORCH.search(p)}
        self.assertGreaterEqual(len(routes), 11, "parsed the route table")
        documented = {(m, t.replace("{id}", "*")) for t, item in DOC["paths"].items() for m in item if m != "parameters"}
        self.assertEqual(routes, documented)

    def test_document_is_consistent(self):
        v = openapi.Validator(DOC)
        for path, item in DOC["paths"].items():
            for method, op in item.items():
                if method == "parameters":
                    continue
                for status in op["responses"]:
                    v.response_schema(path, method, status)


if __name__ == "__main__":
    unittest.main()
