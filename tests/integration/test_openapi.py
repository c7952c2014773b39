"""docs/openapi.yaml against the daemon, both ways.

Document → daemon: every documented operation is exercised against a real gatewayd (private bus,
polkitd, test users, a docker-registry with busybox images, one behind htpasswd); every answer's
status must be documented for that operation and its body must validate against the documented
schema (a JSON-Schema-subset validator below); every request body the daemon accepted must
validate against the documented request schema and every body it refused as InvalidArgument must
not (unless the reason is semantic, e.g. an unknown user). Every documented status must also be
observed, except the few listed in NOT_TRIGGERED with the reason.

Daemon → document: every route in src/gatewayd/http-api.c's table is documented (except the job
and PlanQK routes, which docs/openapi-planqk.yaml and the jobs work cover, and Shifter's /api/
routes, which docs/openapi-shifter.yaml and test_shifter_api cover), and every other
method on a documented path is 405 with the documented Allow header."""
import json
import os
import re
import socket
import threading
import unittest

import yaml

from harness import images, users
from harness.procs import Processes, TempDir, source_dir
from harness.registry import Proxy, Registry
from harness.stack import StackTestCase

DOC = os.path.join(source_dir(), "docs", "openapi.yaml")
ROUTES_C = os.path.join(source_dir(), "src", "gatewayd", "http-api.c")
# Routes documented in another file (docs/openapi-planqk.yaml, docs/openapi-shifter.yaml,
# docs/openapi-programs.yaml, checked by test_programs, docs/openapi-serverless.yaml for /api/v1/,
# checked by test_serverless_api) or added by the jobs work.
ELSEWHERE = re.compile(r"^/planqk(/|$)|^/v1/jobs(/|$)|^/v1/services/\*/jobs(/|$)|^/api/|^/v1/programs(/|$)")
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
MAX_BODY = 64 * 1024

# Documented statuses this test cannot provoke on purpose, and why.
NOT_TRIGGERED = {
    "500": "needs out-of-memory or a failing database/file system",
    "401": "only on the TCP/TLS listeners (test_remote)",
    "429": "only on the TCP/TLS listeners, and for 100 live tokens of one user (test_remote)",
    ("get", "/v1/tokens", "403"): "only on the TCP/TLS listeners (test_remote)",
    ("post", "/v1/tokens", "403"): "only on the TCP/TLS listeners (test_remote)",
    ("delete", "/v1/tokens/{id}", "403"): "only on the TCP/TLS listeners (test_remote)",
    ("delete", "/v1/tokens/{id}", "503"): "needs shutdown while polkit is still answering",
    ("get", "/v1/clients", "403"): "only on the TCP/TLS listeners (test_planqk_clients)",
    ("post", "/v1/clients", "403"): "only on the TCP/TLS listeners (test_planqk_clients)",
    ("delete", "/v1/clients/{id}", "403"): "only on the TCP/TLS listeners (test_planqk_clients)",
    ("delete", "/v1/clients/{id}", "503"): "needs shutdown while polkit is still answering",
    ("post", "/token", "503"): "needs a database that cannot be read",
    ("post", "/v1/services", "503"): "needs shutdown while polkit is still answering",
    ("put", "/v1/services/{name}", "503"): "needs shutdown while polkit is still answering",
    ("delete", "/v1/services/{name}", "503"): "needs shutdown while polkit is still answering",
    ("delete", "/v1/images/{idOrReference}", "503"): "needs shutdown while polkit is still answering",
    ("post", "/v1/images/{id}/expire", "503"): "needs shutdown while polkit is still answering",
    ("post", "/v1/platforms/{name}/nodes/{node}/drain", "200"): "needs a platform with nodes of its own (SSH; "
                                                              "test_platforms, test_nodes)",
    ("post", "/v1/platforms/{name}/nodes/{node}/resume", "200"): "needs a platform with nodes of its own (SSH; "
                                                               "test_platforms, test_nodes)",
    ("post", "/v1/platforms/{name}/nodes/{node}/drain", "503"): "needs shutdown while polkit is still answering",
    ("post", "/v1/platforms/{name}/nodes/{node}/resume", "503"): "needs shutdown while polkit is still answering",
    ("put", "/v1/labs/{name}", "503"): "needs shutdown while polkit is still answering",
    ("delete", "/v1/labs/{name}", "503"): "needs shutdown while polkit is still answering",
    ("post", "/v1/labs/{name}/instances", "429"): "needs LabInstancesPerUser running instances (test_labs)",
    ("post", "/v1/labs/{name}/instances", "503"): "needs IPv4 forwarding off and /proc/sys read-only (test_lab_network)",
    ("post", "/v1/lab-instances/{id}/token", "409"): "needs an instance that is STOPPING or FAILED (test_lab_proxy)",
}


def load_doc():
    with open(DOC) as f:
        return yaml.safe_load(f)


class SchemaChecker:
    """The JSON Schema subset OpenAPI 3.0 documents use: $ref, allOf, oneOf, anyOf, nullable,
    type, enum, properties, required, additionalProperties (bool or schema), items, minItems,
    minLength, maxLength, pattern, minimum, maximum, exclusiveMinimum (3.0 boolean), format
    date-time. errors() returns a list of problems, empty when the value is valid."""

    TYPES = {"object": dict, "array": list, "string": str, "boolean": bool,
             "integer": int, "number": (int, float)}
    DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")

    def __init__(self, doc):
        self.doc = doc

    def resolve(self, node):
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"only local $refs are supported: {ref}")
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
            if seen > 50:
                raise ValueError(f"$ref loop at {ref}")
        return node

    def errors(self, schema, value, where="$"):
        s = self.resolve(schema)
        problems = []
        for sub in s.get("allOf", []):
            problems += self.errors(sub, value, where)
        if "oneOf" in s:
            n = sum(1 for sub in s["oneOf"] if not self.errors(sub, value, where))
            if n != 1:
                problems.append(f"{where}: matches {n} of oneOf, not exactly one")
        if "anyOf" in s and not any(not self.errors(sub, value, where) for sub in s["anyOf"]):
            problems.append(f"{where}: matches none of anyOf")
        if value is None:
            if "type" in s and not s.get("nullable"):
                problems.append(f"{where}: null is not allowed")
            elif "enum" in s and None not in s["enum"] and not s.get("nullable"):
                problems.append(f"{where}: null is not in the enum")
            return problems
        t = s.get("type")
        if t is not None:
            ok = isinstance(value, self.TYPES[t])
            if t in ("integer", "number") and isinstance(value, bool):
                ok = False
            if not ok:
                return problems + [f"{where}: expected {t}, got {type(value).__name__} {value!r:.60}"]
        if "enum" in s and value not in s["enum"]:
            problems.append(f"{where}: {value!r} is not one of {s['enum']}")
        if isinstance(value, str):
            if len(value) < s.get("minLength", 0):
                problems.append(f"{where}: shorter than {s['minLength']}")
            if "maxLength" in s and len(value) > s["maxLength"]:
                problems.append(f"{where}: longer than {s['maxLength']}")
            if "pattern" in s and not re.search(s["pattern"], value):
                problems.append(f"{where}: {value!r:.60} does not match {s['pattern']}")
            if s.get("format") == "date-time" and not self.DATE_TIME.fullmatch(value):
                problems.append(f"{where}: {value!r} is not a date-time")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in s:
                if value < s["minimum"] or (s.get("exclusiveMinimum") and value == s["minimum"]):
                    problems.append(f"{where}: {value} is below the minimum {s['minimum']}")
            if "maximum" in s:
                if value > s["maximum"] or (s.get("exclusiveMaximum") and value == s["maximum"]):
                    problems.append(f"{where}: {value} is above the maximum {s['maximum']}")
        if isinstance(value, dict):
            props = s.get("properties", {})
            for k in s.get("required", []):
                if k not in value:
                    problems.append(f"{where}: missing required {k}")
            extra = s.get("additionalProperties", True)
            for k, v in value.items():
                if k in props:
                    problems += self.errors(props[k], v, f"{where}.{k}")
                elif extra is False:
                    problems.append(f"{where}: undocumented member {k}")
                elif isinstance(extra, dict):
                    problems += self.errors(extra, v, f"{where}.{k}")
        if isinstance(value, list):
            if len(value) < s.get("minItems", 0):
                problems.append(f"{where}: fewer than {s['minItems']} items")
            if "items" in s:
                for i, v in enumerate(value):
                    problems += self.errors(s["items"], v, f"{where}[{i}]")
        return problems


class Api:
    """The document's operations, path templates as regular expressions, and the route table."""

    def __init__(self, doc):
        self.doc = doc
        self.schemas = SchemaChecker(doc)

    def operations(self):
        for template, item in self.doc["paths"].items():
            for method in METHODS:
                if method in item:
                    yield method, template, item[method]

    def parameters(self, template):
        item = self.doc["paths"][template]
        params = list(item.get("parameters", []))
        for m in METHODS:
            params += item.get(m, {}).get("parameters", [])
        return {p["name"]: p for p in map(self.schemas.resolve, params) if p.get("in") == "path"}

    def rest_of_path(self, template, name):
        return bool(self.parameters(template)[name].get("x-rest-of-path"))

    def route_pattern(self, template):
        """The template in http-api.c's notation: '*' for a segment, '**' for the rest."""
        return re.sub(r"\{(\w+)\}", lambda m: "**" if self.rest_of_path(template, m.group(1)) else "*",
                      template)

    def regex(self, template):
        out = ""
        for part in re.split(r"(\{\w+\})", template):
            if part.startswith("{"):
                out += "(.+)" if self.rest_of_path(template, part[1:-1]) else "([^/]+)"
            else:
                out += re.escape(part)
        return re.compile(out + "/?")

    def templates_matching(self, path):
        return [t for t in self.doc["paths"] if self.regex(t).fullmatch(path)]

    def response(self, method, template, status):
        op = self.doc["paths"][template][method]
        r = op["responses"].get(str(status))
        return self.schemas.resolve(r) if r is not None else None

    def request_schema(self, method, template):
        body = self.schemas.resolve(self.doc["paths"][template][method].get("requestBody") or {})
        media = (body.get("content") or {}).get("application/json")
        return media["schema"] if media else None


def parse_route_table(path=ROUTES_C):
    with open(path) as f:
        text = f.read()
    # { "GET", "/v1/x", handler } or with a scope: { "POST", "/v1/x", handler, AUTH_SCOPE_SUBMIT }
    return re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"(/[^"]*)"\s*,\s*\w+\s*(?:,\s*[\w| ]+)?\}', text)


class DocumentMatchesRouteTable(unittest.TestCase):
    """No daemon needed: the document and the C route table describe the same API."""

    def setUp(self):
        self.api = Api(load_doc())

    def test_document_is_openapi_3(self):
        self.assertTrue(str(self.api.doc["openapi"]).startswith("3.0"))

        def refs(node):
            if isinstance(node, dict):
                if "$ref" in node:
                    yield node["$ref"]
                for v in node.values():
                    yield from refs(v)
            elif isinstance(node, list):
                for v in node:
                    yield from refs(v)
        for ref in set(refs(self.api.doc)):
            with self.subTest(ref=ref):
                self.assertIsInstance(self.api.schemas.resolve({"$ref": ref}), dict)
        for method, template, op in self.api.operations():
            self.assertIn("responses", op, f"{method} {template}")
            for status in op["responses"]:
                self.assertRegex(str(status), r"^[1-5]\d\d$", f"{method} {template}")
            for name in re.findall(r"\{(\w+)\}", template):
                self.assertIn(name, self.api.parameters(template), f"{template}: parameter {name} undeclared")

    def test_every_route_is_documented(self):
        routes = parse_route_table()
        self.assertGreater(len(routes), 5, "parsed the route table")
        documented = {(m, self.api.route_pattern(t)) for m, t, _ in self.api.operations()}
        for method, pattern in routes:
            if ELSEWHERE.search(pattern):
                continue
            with self.subTest(route=f"{method} {pattern}"):
                self.assertIn((method.lower(), pattern), documented,
                              f"{method} {pattern} is in http-api.c but not in docs/openapi.yaml")

    def test_every_documented_operation_is_a_route(self):
        routes = {(m.lower(), p) for m, p in parse_route_table()}
        for method, template, _ in self.api.operations():
            with self.subTest(operation=f"{method} {template}"):
                self.assertIn((method, self.api.route_pattern(template)), routes,
                              f"{method.upper()} {template} is documented but has no route")

    def test_error_codes_match_gw_error_table(self):
        with open(os.path.join(source_dir(), "src", "gatewayd", "gw-error.c")) as f:
            table = re.findall(r'\[GW_ERROR_(\w+)\]\s*=\s*\{\s*(\d+),\s*"(\w+)"', f.read())
        codes = {code for name, status, code in table if name != "NONE"}
        self.assertEqual(set(self.api.doc["components"]["schemas"]["ErrorCode"]["enum"]), codes)
        # Each error response's code restriction agrees with the status the table gives it.
        status_of = {}
        for name, status, code in table:
            status_of.setdefault(code, set()).add(status)
        for method, template, op in self.api.operations():
            for status, resp in op["responses"].items():
                resp = self.api.schemas.resolve(resp)
                schema = ((resp.get("content") or {}).get("application/json") or {}).get("schema")
                if not schema or int(status) < 400:
                    continue
                for code in codes:
                    body = {"error": {"code": code, "message": "x"}}
                    valid = not self.api.schemas.errors(schema, body)
                    with self.subTest(op=f"{method} {template} {status}", code=code):
                        if valid:
                            self.assertIn(str(status), status_of[code], "documented code has another status")


class HangingServer:
    """A TCP server that accepts connections and answers nothing until released; afterwards it
    closes every connection at once. Holds a pull in its resolution phase for as long as a test
    needs, with an event for 'the worker has connected'."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.connected = threading.Event()
        self.released = threading.Event()
        self.held = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.released.is_set():
                c.close()
                continue
            self.held.append(c)
            self.connected.set()

    def release(self):
        self.released.set()
        for c in self.held:
            c.close()
        self.held = []

    def stop(self):
        self.release()
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=10)


def location():
    return {"remotetype": "dockerv2", "authentication": "http", "insecure": True}


class Conformance(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.api = Api(load_doc())
        cls.seen = set()          # (method, template, status)
        cls.reg_procs = Processes()
        cls.reg_tmp = TempDir()
        cls.extras = []
        try:
            cls.registry = Registry(cls.reg_procs, os.path.join(cls.reg_tmp.path, "public")).start()
            ptmp = os.path.join(cls.reg_tmp.path, "private")
            os.makedirs(ptmp)
            cls.private = Registry(cls.reg_procs, ptmp, auth=("htpasswd", {"alice": "s3cret"})).start()
            images.push_image(cls.private, "team/secret", "1",
                              images.Image([(images.Layer().busybox().file("etc/secret", "42\n"), "gzip")]))
            cls.slow = Proxy(cls.registry.port, rate=256 * 1024)
            cls.extras.append(cls.slow)
            cls.hang = HangingServer()
            cls.extras.append(cls.hang)
            cls.config = {
                "DefaultImageLocation": cls.registry.host,
                "MaxRequestBody": MAX_BODY,
                # 127.0.0.1:1: a configured registry nobody listens on (503).
                "Locations": {h: location() for h in (cls.registry.host, cls.private.host, cls.slow.host,
                                                      cls.hang.host, "127.0.0.1:1")},
            }
            super().setUpClass()
        except BaseException:
            cls._stop_extras()
            raise

    @classmethod
    def _stop_extras(cls):
        for x in cls.extras:
            x.stop()
        cls.reg_procs.stop_all()
        cls.reg_tmp.cleanup()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._stop_extras()

    # -- checking one exchange -----------------------------------------------------------------

    def call(self, method, template, path, body=None, as_user=None, content_type="application/json",
             semantic=False, timeout=60, **kw):
        """One request to PATH, an instance of the documented TEMPLATE, checked against the
        document. SEMANTIC: a 400 InvalidArgument whose cause no schema can express."""
        method = method.lower()
        r = self.gw.http(method.upper(), path, body, as_user=as_user, content_type=content_type,
                         timeout=timeout, **kw)
        where = f"{method.upper()} {path} → {r.status}"
        resp = self.api.response(method, template, r.status)
        self.assertIsNotNone(resp, f"{where}: status not documented for {method.upper()} {template}: {r.body[:300]}")
        self.seen.add((method, template, str(r.status)))
        content = resp.get("content") or {}
        if not content:
            self.assertEqual(r.body, "", f"{where}: documented without a body")
        else:
            ctype = r.headers.get("content-type", "").split(";")[0].strip()
            self.assertIn(ctype, content, f"{where}: content type {ctype!r} not documented")
            schema = content[ctype]["schema"]
            if ctype == "application/jsonl":
                docs = [json.loads(line) for line in r.body.splitlines() if line.strip()]
                self.assertTrue(docs, f"{where}: empty stream")
            else:
                docs = [json.loads(r.body)]
            for d in docs:
                problems = self.api.schemas.errors(schema, d)
                self.assertEqual(problems, [], f"{where}: body does not match the document: {d}")
        for name in resp.get("headers") or {}:
            self.assertIn(name.lower(), r.headers, f"{where}: documented header {name} missing")

        req_schema = self.api.request_schema(method, template)
        if req_schema is not None and isinstance(body, (dict, list)):
            problems = self.api.schemas.errors(req_schema, body)
            if 200 <= r.status < 300:
                self.assertEqual(problems, [], f"{where}: the daemon accepted a body the document rejects: {body}")
            elif r.error_code() == "InvalidArgument" and not semantic:
                self.assertNotEqual(problems, [], f"{where}: the daemon refused a body the document allows: "
                                                  f"{body} ({r.error_message()})")
        return r

    def uniq(self, prefix):
        return self.name(prefix)

    def push_busybox(self, registry=None, marker=None):
        """A fresh image (own repository, so no other test has pulled it); returns the reference."""
        repo = self.uniq("test/bb")
        layer = images.Layer().busybox().file("etc/marker", (marker or repo) + "\n")
        images.push_image(registry or self.registry, repo, "1", images.Image([(layer, "gzip")]))
        return f"{(registry or self.registry).host}/{repo}:1"

    def pull_ready(self, ref):
        r = self.call("post", "/v1/images/pull", "/v1/images/pull", {"reference": ref})
        self.assertIn(r.status, (200, 202), r.body)
        lines = self.call("get", "/v1/images/{id}/progress", f"/v1/images/{r.json['id']}/progress", timeout=120)
        self.assertEqual(json.loads(lines.body.splitlines()[-1])["status"], "READY", lines.body[-500:])
        return r.json["id"]

    # -- every documented operation ------------------------------------------------------------

    def test_operations(self):
        scenarios = {
            ("get", "/v1/status"): self.scenario_status,
            ("get", "/v1/services"): self.scenario_list_services,
            ("post", "/v1/services"): self.scenario_create_service,
            ("get", "/v1/services/{name}"): self.scenario_get_service,
            ("put", "/v1/services/{name}"): self.scenario_replace_service,
            ("delete", "/v1/services/{name}"): self.scenario_remove_service,
            ("get", "/v1/images"): self.scenario_list_images,
            ("post", "/v1/images/pull"): self.scenario_pull,
            ("get", "/v1/images/{id}/progress"): self.scenario_progress,
            ("get", "/v1/images/{idOrReference}"): self.scenario_get_image,
            ("delete", "/v1/images/{idOrReference}"): self.scenario_remove_image,
            ("post", "/v1/images/{id}/expire"): self.scenario_expire,
            ("get", "/v1/tokens"): self.scenario_list_tokens,
            ("post", "/v1/tokens"): self.scenario_create_token,
            ("delete", "/v1/tokens/{id}"): self.scenario_revoke_token,
            ("get", "/v1/platforms"): self.scenario_list_platforms,
            ("get", "/v1/platforms/{name}"): self.scenario_get_platform,
            ("post", "/v1/platforms/{name}/nodes/{node}/drain"): lambda: self.scenario_drain_node("drain"),
            ("post", "/v1/platforms/{name}/nodes/{node}/resume"): lambda: self.scenario_drain_node("resume"),
            ("get", "/v1/clients"): self.scenario_list_clients,
            ("post", "/v1/clients"): self.scenario_create_client,
            ("delete", "/v1/clients/{id}"): self.scenario_remove_client,
            ("post", "/token"): self.scenario_fetch_token,
            ("get", "/v1/labs"): self.scenario_list_labs,
            ("get", "/v1/labs/{name}"): self.scenario_get_lab,
            ("put", "/v1/labs/{name}"): self.scenario_put_lab,
            ("delete", "/v1/labs/{name}"): self.scenario_remove_lab,
            ("post", "/v1/labs/{name}/instances"): self.scenario_create_lab_instance,
            ("get", "/v1/lab-instances"): self.scenario_list_lab_instances,
            ("get", "/v1/lab-instances/{id}"): self.scenario_get_lab_instance,
            ("delete", "/v1/lab-instances/{id}"): self.scenario_remove_lab_instance,
            ("post", "/v1/lab-instances/{id}/token"): self.scenario_renew_lab_token,
            ("get", "/v1/lab-instances/{id}/access"): self.scenario_lab_access,
        }
        # Job operations have their own tests (test_jobs, test_planqk) should they be added here.
        documented = [(m, t) for m, t, _ in self.api.operations()
                      if not ELSEWHERE.search(self.api.route_pattern(t))]
        for op in documented:
            with self.subTest(operation=f"{op[0].upper()} {op[1]}"):
                self.assertIn(op, scenarios, "documented operation without a scenario in test_openapi.py")
                scenarios[op]()
                self.generic_checks(*op)
        self.slow_pull_conflicts()
        self.private_pull_conflict()

        for method, template, op in self.api.operations():
            if (method, template) not in documented:
                continue
            for status in op["responses"]:
                status = str(status)
                if status in NOT_TRIGGERED or (method, template, status) in NOT_TRIGGERED:
                    continue
                with self.subTest(operation=f"{method.upper()} {template}", status=status):
                    self.assertIn((method, template, status), self.seen,
                                  "documented status never observed (provoke it here, or list it in NOT_TRIGGERED)")
        self.assertServing()

    def instance(self, template):
        return re.sub(r"\{\w+\}", "0" * 64, template).replace("/v1/services/" + "0" * 64, "/v1/services/nosuch")

    def generic_checks(self, method, template):
        """What holds for every operation: 413 for an oversized body, and for operations that
        take a body 415 and 400 BadRequest for a body that is not JSON."""
        path = self.instance(template)
        # With "Expect: 100-continue" the body is never sent: no race between the daemon's early
        # answer (and close) and curl still writing.
        r = self.call(method, template, path, "x" * (MAX_BODY + 1), content_type="application/json",
                      headers={"Expect": "100-continue"})
        self.assertEqual(r.status, 413, r.body)
        if self.api.request_schema(method, template) is not None:
            r = self.call(method, template, path, '{"reference": "x"}', content_type="text/plain")
            self.assertEqual(r.status, 415, r.body)
            r = self.call(method, template, path, None, content_type=None)
            self.assertEqual(r.status, 415, r.body)
            for bad in ('{"name": ', "", "[1] x", b'{"name": "\xff"}'):
                r = self.call(method, template, path, bad)
                self.assertEqual((r.status, r.error_code()), (400, "BadRequest"), r.body)

    def scenario_create_token(self):
        t = "/v1/tokens"
        for body in ({}, {"expiresIn": 60}, {"scope": ["read", "pull"]}, {"expiresIn": 3600, "scope": ["submit"]}):
            r = self.call("post", t, t, body, as_user=users.USER)
            self.assertEqual(r.status, 201, r.body)
        semantic = [{"expiresIn": 10 ** 12}]
        invalid = [{"expiresIn": 0}, {"expiresIn": "60"}, {"expiresIn": 1.5}, {"scope": []}, {"scope": "read"},
                   {"scope": ["admin"]}, {"scope": [1]}, {"owner": "root"}, [], '"x"']
        for body in invalid + semantic:
            r = self.call("post", t, t, body, semantic=body in semantic, as_user=users.USER)
            self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), f"{body}: {r.body}")

    def scenario_list_tokens(self):
        created = self.call("post", "/v1/tokens", "/v1/tokens", {}, as_user=users.OTHER)
        r = self.call("get", "/v1/tokens", "/v1/tokens", as_user=users.OTHER)
        self.assertEqual(r.status, 200)
        self.assertIn(created.json["id"], [x["id"] for x in r.json["tokens"]])

    def scenario_revoke_token(self):
        t = "/v1/tokens/{id}"
        mine = self.call("post", "/v1/tokens", "/v1/tokens", {}, as_user=users.USER).json["id"]
        self.assertEqual(self.call("delete", t, f"/v1/tokens/{mine}", as_user=users.OTHER).status, 404)
        self.assertEqual(self.call("delete", t, f"/v1/tokens/{mine}", as_user=users.USER).status, 204)
        self.assertEqual(self.call("delete", t, f"/v1/tokens/{mine}", as_user=users.USER).status, 404)
        other = self.call("post", "/v1/tokens", "/v1/tokens", {}, as_user=users.USER).json["id"]
        self.assertEqual(self.call("delete", t, f"/v1/tokens/{other}", as_user=users.ADMIN).status, 204)

    def scenario_list_platforms(self):
        r = self.call("get", "/v1/platforms", "/v1/platforms", as_user=users.USER)
        self.assertEqual([p["name"] for p in r.json["platforms"]], ["local"])

    def scenario_get_platform(self):
        t = "/v1/platforms/{name}"
        self.assertEqual(self.call("get", t, "/v1/platforms/local", as_user=users.USER).status, 200)
        self.assertEqual(self.call("get", t, "/v1/platforms/nosuch", as_user=users.USER).status, 404)

    def scenario_drain_node(self, verb):
        t = f"/v1/platforms/{{name}}/nodes/{{node}}/{verb}"
        node = self.call("get", "/v1/platforms/{name}", "/v1/platforms/local").json["nodes"][0]["name"]
        self.assertEqual(self.call("post", t, f"/v1/platforms/local/nodes/{node}/{verb}", as_user=users.USER).status, 403)
        # The local platform's one node is the gateway host: nothing of its own to drain.
        self.assertEqual(self.call("post", t, f"/v1/platforms/local/nodes/{node}/{verb}", as_user=users.ADMIN).status, 409)
        self.assertEqual(self.call("post", t, f"/v1/platforms/nosuch/nodes/{node}/{verb}", as_user=users.ADMIN).status, 404)
        self.assertEqual(self.call("post", t, f"/v1/platforms/local/nodes/nosuch/{verb}", as_user=users.ADMIN).status, 404)
    def scenario_create_client(self):
        t = "/v1/clients"
        for body in ({}, {"name": "laptop"}, {"scope": ["read", "submit"]}, {"name": "ci", "scope": ["pull"]}):
            r = self.call("post", t, t, body, as_user=users.USER)
            self.assertEqual(r.status, 201, r.body)
        invalid = [{"scope": []}, {"scope": "read"}, {"scope": ["admin"]}, {"name": ""}, {"name": 1},
                   {"name": "x" * 129}, {"owner": "root"}, [], '"x"']
        for body in invalid:
            r = self.call("post", t, t, body, as_user=users.USER)
            self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), f"{body}: {r.body}")

    def scenario_list_clients(self):
        created = self.call("post", "/v1/clients", "/v1/clients", {}, as_user=users.OTHER)
        r = self.call("get", "/v1/clients", "/v1/clients", as_user=users.OTHER)
        self.assertEqual(r.status, 200)
        self.assertIn(created.json["clientId"], [x["clientId"] for x in r.json["clients"]])

    def scenario_remove_client(self):
        t = "/v1/clients/{id}"
        mine = self.call("post", "/v1/clients", "/v1/clients", {}, as_user=users.USER).json["clientId"]
        self.assertEqual(self.call("delete", t, f"/v1/clients/{mine}", as_user=users.OTHER).status, 404)
        self.assertEqual(self.call("delete", t, f"/v1/clients/{mine}", as_user=users.USER).status, 204)
        self.assertEqual(self.call("delete", t, f"/v1/clients/{mine}", as_user=users.USER).status, 404)
        other = self.call("post", "/v1/clients", "/v1/clients", {}, as_user=users.USER).json["clientId"]
        self.assertEqual(self.call("delete", t, f"/v1/clients/{other}", as_user=users.ADMIN).status, 204)

    def scenario_fetch_token(self):
        """The token endpoint on the unix socket (where it works as well): form bodies, OAuth2 errors."""
        c = self.call("post", "/v1/clients", "/v1/clients", {"scope": ["read"]}, as_user=users.USER).json
        form = "application/x-www-form-urlencoded"
        body = f"grant_type=client_credentials&client_id={c['clientId']}&client_secret={c['clientSecret']}"
        r = self.call("post", "/token", "/token", body, content_type=form)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["scope"], "read")
        r = self.call("post", "/token", "/token", body.replace("client_credentials", "password"), content_type=form)
        self.assertEqual((r.status, r.json["error"]), (400, "unsupported_grant_type"), r.body)
        r = self.call("post", "/token", "/token", body, content_type="application/json")
        self.assertEqual((r.status, r.json["error"]), (400, "invalid_request"), r.body)
        r = self.call("post", "/token", "/token", body[:-1], content_type=form)
        self.assertEqual((r.status, r.json["error"]), (401, "invalid_client"), r.body)

    def scenario_status(self):
        r = self.call("get", "/v1/status", "/v1/status")
        self.assertEqual(r.status, 200)

    def scenario_list_services(self):
        name = self.create()["name"]
        r = self.call("get", "/v1/services", "/v1/services", as_user=users.OTHER)
        self.assertEqual(r.status, 200)
        self.assertIn(name, [s["name"] for s in r.json["services"]])

    def scenario_create_service(self):
        t = "/v1/services"
        name = self.uniq("oa")
        full = {"name": name, "image": "registry.example.org/demo/hello:1.0", "description": "d",
                "command": ["/bin/echo", "hi"], "env": {"A_1": "x"},
                "resources": {"memory": 1 << 20, "cpus": 0.5, "timeout": 10}, "network": True}
        r = self.call("post", t, t, full)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.headers.get("location"), f"/v1/services/{name}")
        minimal = self.call("post", t, t, {"name": self.uniq("oa"), "image": "alpine", "command": None,
                                           "env": None, "resources": None})
        self.assertEqual(minimal.status, 201, minimal.body)
        admin = self.call("post", t, t, {"name": self.uniq("oa"), "image": "alpine"}, as_user=users.ADMIN)
        self.assertEqual(admin.status, 201, admin.body)
        self.assertEqual(self.call("post", t, t, full).status, 409)
        self.assertEqual(self.call("post", t, t, full, as_user=users.USER).status, 403)
        # A record read from the API may be sent back (createdAt/updatedAt are ignored).
        again = dict(r.json, name=self.uniq("oa"))
        self.assertEqual(self.call("post", t, t, again).status, 201)
        semantic = [{"name": self.uniq("oa"), "image": "alpine", "env": {"1BAD": "x"}}]
        invalid = [
            {"image": "alpine"},
            {"name": "Bad_Name", "image": "alpine"},
            {"name": "-x", "image": "alpine"},
            {"name": self.uniq("oa")},
            {"name": self.uniq("oa"), "image": "/abs"},
            {"name": self.uniq("oa"), "image": "a b"},
            {"name": self.uniq("oa"), "image": "alpine", "command": []},
            {"name": self.uniq("oa"), "image": "alpine", "command": "echo"},
            {"name": self.uniq("oa"), "image": "alpine", "command": ["a", 1]},
            {"name": self.uniq("oa"), "image": "alpine", "env": {"A": 1}},
            {"name": self.uniq("oa"), "image": "alpine", "env": []},
            {"name": self.uniq("oa"), "image": "alpine", "resources": {"memory": 0}},
            {"name": self.uniq("oa"), "image": "alpine", "resources": {"memory": 1.5}},
            {"name": self.uniq("oa"), "image": "alpine", "resources": {"cpus": 0}},
            {"name": self.uniq("oa"), "image": "alpine", "resources": {"cpus": 100000}},
            {"name": self.uniq("oa"), "image": "alpine", "resources": {"timeout": -1}},
            {"name": self.uniq("oa"), "image": "alpine", "resources": {"disk": 1}},
            {"name": self.uniq("oa"), "image": "alpine", "network": "yes"},
            {"name": self.uniq("oa"), "image": "alpine", "description": None},
            {"name": self.uniq("oa"), "image": "alpine", "colour": "blue"},
            [name],
            '"just a string"',
        ]
        for body in invalid + semantic:
            r = self.call("post", t, t, body, semantic=body in semantic)
            self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), f"{body}: {r.body}")

    def scenario_get_service(self):
        name = self.create()["name"]
        t = "/v1/services/{name}"
        self.assertEqual(self.call("get", t, f"/v1/services/{name}", as_user=users.USER).status, 200)
        self.assertEqual(self.call("get", t, f"/v1/services/{name}/").status, 200)
        for missing in ("nosuch", "%00", "UPPER"):
            self.assertEqual(self.call("get", t, f"/v1/services/{missing}").status, 404)

    def scenario_replace_service(self):
        name = self.create(command=["/bin/true"])["name"]
        t, path = "/v1/services/{name}", f"/v1/services/{name}"
        r = self.call("put", t, path, {"image": "alpine:3", "env": {"X": "1"}})
        self.assertEqual(r.status, 200, r.body)
        self.assertIsNone(r.json["command"], "PUT replaces the whole spec")
        self.assertEqual(self.call("put", t, path, {"name": name, "image": "alpine"}, as_user=users.ADMIN).status, 200)
        self.assertEqual(self.call("put", t, path, {"image": "alpine"}, as_user=users.USER).status, 403)
        self.assertEqual(self.call("put", t, "/v1/services/nosuch", {"image": "alpine"}).status, 404)
        r = self.call("put", t, path, {"name": "other", "image": "alpine"}, semantic=True)
        self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"))
        for body in ({"image": ""}, {"image": "alpine", "network": 1}, {"image": "alpine", "x": 1}, {}):
            r = self.call("put", t, path, body)
            self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), f"{body}: {r.body}")

    def scenario_remove_service(self):
        name = self.create()["name"]
        t, path = "/v1/services/{name}", f"/v1/services/{name}"
        self.assertEqual(self.call("delete", t, path, as_user=users.USER).status, 403)
        self.assertEqual(self.call("delete", t, path).status, 204)
        self.assertEqual(self.call("delete", t, path).status, 404)
        admin_owned = self.create()["name"]
        self.assertEqual(self.call("delete", t, f"/v1/services/{admin_owned}", as_user=users.ADMIN).status, 204)

    # -- labs (test_labs has the rest) -----------------------------------------------------------

    LAB = {"description": "d", "instructions": "# Hi", "lifetime": "2:00:00",
           "limits": {"memory": "64M", "tasks": 50},
           "members": [{"name": "web", "image": "registry.example.org/labs/web:1", "command": ["httpd"],
                        "env": {"A": "1"}, "ports": [{"port": 80, "kind": "http"}]},
                       {"name": "db", "image": "alpine", "command": None, "env": None, "ports": None}]}

    def put_lab(self, **kw):
        name = self.uniq("lab")
        r = self.call("put", "/v1/labs/{name}", f"/v1/labs/{name}", dict(self.LAB, **kw))
        self.assertEqual(r.status, 201, r.body)
        return r.json

    def scenario_list_labs(self):
        name = self.put_lab()["name"]
        r = self.call("get", "/v1/labs", "/v1/labs", as_user=users.OTHER)
        self.assertEqual(r.status, 200)
        self.assertIn(name, [x["name"] for x in r.json["labs"]])

    def scenario_get_lab(self):
        name = self.put_lab()["name"]
        t = "/v1/labs/{name}"
        self.assertEqual(self.call("get", t, f"/v1/labs/{name}", as_user=users.USER).status, 200)
        for missing in ("nosuch", "%00", "UPPER"):
            self.assertEqual(self.call("get", t, f"/v1/labs/{missing}").status, 404)

    def scenario_put_lab(self):
        t = "/v1/labs/{name}"
        name = self.uniq("lab")
        path = f"/v1/labs/{name}"
        r = self.call("put", t, path, self.LAB)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.headers.get("location"), path)
        r = self.call("put", t, path, dict(r.json, lifetime=60, limits={"memory": None, "tasks": None}))
        self.assertEqual(r.status, 200, r.body)
        r = self.call("put", t, path, {"name": name, "lifetime": None, "limits": None,
                                       "members": [{"name": "x", "image": "alpine"}]}, as_user=users.ADMIN)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.call("put", t, path, self.LAB, as_user=users.USER).status, 403)
        member = self.LAB["members"][0]
        semantic = [
            dict(self.LAB, name="other"),
            dict(self.LAB, members=[member, member]),
            dict(self.LAB, members=[member] * 17),
            dict(self.LAB, lifetime="soon"),
            dict(self.LAB, limits={"memory": "lots"}),
            dict(self.LAB, members=[dict(member, ports=[{"port": 80, "kind": "http"}] * 2)]),
        ]
        invalid = [
            {},
            {"members": []},
            dict(self.LAB, lifetime=0),
            dict(self.LAB, lifetime=1.5),
            dict(self.LAB, limits={"memory": 1}),
            dict(self.LAB, limits={"tasks": 0}),
            dict(self.LAB, limits={"cpus": 1}),
            dict(self.LAB, colour="blue"),
            dict(self.LAB, members=[dict(member, name="Bad")]),
            dict(self.LAB, members=[dict(member, image="a b")]),
            dict(self.LAB, members=[dict(member, ports=[{"port": 0, "kind": "http"}])]),
            dict(self.LAB, members=[dict(member, ports=[{"port": 80, "kind": "ssh"}])]),
            dict(self.LAB, members=[dict(member, command=[])]),
            dict(self.LAB, members=[dict(member, env={"A": 1})]),
            dict(self.LAB, members=[{"name": "x"}]),
            [name],
        ]
        for body in invalid + semantic:
            r = self.call("put", t, path, body, semantic=body in semantic)
            self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), f"{body}: {r.body}")

    def scenario_remove_lab(self):
        name = self.put_lab()["name"]
        t, path = "/v1/labs/{name}", f"/v1/labs/{name}"
        self.assertEqual(self.call("delete", t, path, as_user=users.USER).status, 403)
        self.assertEqual(self.call("delete", t, path).status, 204)
        self.assertEqual(self.call("delete", t, path).status, 404)
        other = self.put_lab()["name"]
        self.assertEqual(self.call("delete", t, f"/v1/labs/{other}", as_user=users.ADMIN).status, 204)

    def lab_instance(self, as_user=users.USER):
        """A running instance of a one-member lab (a fresh busybox image, sleeping)."""
        if not getattr(self, "instance_lab", None):
            self.instance_lab = self.put_lab(members=[{"name": "m", "image": self.push_busybox(),
                                                        "command": ["/bin/sh", "-c", "exec cat"]}])["name"]
        t = "/v1/labs/{name}/instances"
        r = self.call("post", t, f"/v1/labs/{self.instance_lab}/instances", as_user=as_user)
        self.assertEqual(r.status, 201, r.body)
        return r.json["id"]

    def scenario_create_lab_instance(self):
        t = "/v1/labs/{name}/instances"
        i = self.lab_instance()
        self.assertEqual(self.call("post", t, "/v1/labs/nosuch/instances", as_user=users.USER).status, 404)
        self.assertEqual(self.call("delete", "/v1/lab-instances/{id}", f"/v1/lab-instances/{i}", as_user=users.USER).status, 204)

    def scenario_list_lab_instances(self):
        i = self.lab_instance(as_user=users.OTHER)
        r = self.call("get", "/v1/lab-instances", "/v1/lab-instances", as_user=users.OTHER)
        self.assertEqual(r.status, 200)
        self.assertIn(i, [x["id"] for x in r.json["instances"]])
        r = self.call("get", "/v1/lab-instances", "/v1/lab-instances", as_user=users.USER)
        self.assertNotIn(i, [x["id"] for x in r.json["instances"]])
        self.call("delete", "/v1/lab-instances/{id}", f"/v1/lab-instances/{i}", as_user=users.OTHER)

    def scenario_get_lab_instance(self):
        t = "/v1/lab-instances/{id}"
        i = self.lab_instance()
        self.assertEqual(self.call("get", t, f"/v1/lab-instances/{i}", as_user=users.USER).status, 200)
        self.assertEqual(self.call("get", t, f"/v1/lab-instances/{i}", as_user=users.OTHER).status, 404)
        self.call("delete", t, f"/v1/lab-instances/{i}", as_user=users.USER)

    def scenario_remove_lab_instance(self):
        t = "/v1/lab-instances/{id}"
        i = self.lab_instance()
        self.assertEqual(self.call("delete", t, f"/v1/lab-instances/{i}", as_user=users.OTHER).status, 404)
        self.assertEqual(self.call("delete", t, f"/v1/lab-instances/{i}", as_user=users.USER).status, 204)
        self.assertEqual(self.call("delete", t, "/v1/lab-instances/li-0000000000000000", as_user=users.USER).status, 404)

    def scenario_renew_lab_token(self):
        t = "/v1/lab-instances/{id}/token"
        i = self.lab_instance()
        r = self.call("post", t, f"/v1/lab-instances/{i}/token", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.call("post", t, f"/v1/lab-instances/{i}/token", as_user=users.OTHER).status, 404)
        self.call("delete", "/v1/lab-instances/{id}", f"/v1/lab-instances/{i}", as_user=users.USER)

    def scenario_lab_access(self):
        t = "/v1/lab-instances/{id}/access"
        i = self.lab_instance()
        self.assertEqual(self.call("get", t, f"/v1/lab-instances/{i}/access", as_user="root").status, 200)
        self.assertEqual(self.call("get", t, f"/v1/lab-instances/{i}/access", as_user=users.USER).status, 403)
        self.assertEqual(self.call("get", t, "/v1/lab-instances/li-0000000000000000/access", as_user="root").status, 404)
        self.call("delete", "/v1/lab-instances/{id}", f"/v1/lab-instances/{i}", as_user=users.USER)

    def scenario_list_images(self):
        image_id = self.pull_ready(self.push_busybox())
        r = self.call("get", "/v1/images", "/v1/images", as_user=users.OTHER)
        self.assertEqual(r.status, 200)
        self.assertIn(image_id, [i["id"] for i in r.json["images"]])
        r = self.call("get", "/v1/images", "/v1/images?platform=local", as_user=users.OTHER)
        self.assertIn(image_id, [i["id"] for i in r.json["images"]])
        r = self.call("get", "/v1/images", "/v1/images?platform=nowhere", semantic=True)
        self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), r.body)

    def scenario_pull(self):
        t = "/v1/images/pull"
        ref = self.push_busybox()
        first = self.call("post", t, t, {"reference": ref, "platform": "local", "force": False}, as_user=users.USER)
        self.assertEqual(first.status, 202, first.body)
        self.call("get", "/v1/images/{id}/progress", f"/v1/images/{first.json['id']}/progress", timeout=120)
        again = self.call("post", t, t, {"reference": ref}, as_user=users.OTHER)
        self.assertEqual((again.status, again.json["status"]), (200, "READY"), again.body)
        forced = self.call("post", t, t, {"reference": ref, "force": True})
        self.assertEqual((forced.status, forced.json["status"]), (200, "READY"), "same digest: nothing to pull")

        private = f"{self.private.host}/team/secret:1"
        self.assertEqual(self.call("post", t, t, {"reference": private}, as_user=users.USER).status, 403)
        r = self.call("post", t, t, {"reference": private, "credentials": {"username": "alice", "password": "s3cret"},
                                     "acl": {"users": [users.ADMIN, 0], "groups": ["root", 0]}}, as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        self.assertTrue(r.json["private"])
        self.assertEqual(self.call("post", t, t, {"reference": f"{self.registry.host}/test/nothing:1"}).status, 404)
        self.assertEqual(self.call("post", t, t, {"reference": "127.0.0.1:1/x/y:1"}).status, 503)
        r = self.call("post", t, t, {"reference": "127.0.0.1:2/x/y:1"}, as_user=users.USER)
        self.assertEqual((r.status, r.error_code()), (403, "AccessDenied"), "a registry not in Locations")

        r = self.call("post", t, t, {"reference": ref, "credentials": {"user": "x"}}, semantic=True)
        self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), r.body)
        semantic = [{"reference": ref, "platform": "nowhere"},
                    {"reference": ref, "acl": {"users": ["no-such-user-xyz"]}},
                    {"reference": ref, "acl": {"groups": ["no-such-group-xyz"]}}]
        invalid = [{}, {"ref": ref}, {"reference": ""}, {"reference": "a b"}, {"reference": 5},
                   {"reference": ref, "platform": 1}, {"reference": ref, "force": "yes"},
                   {"reference": ref, "credentials": "alice:pw"}, {"reference": ref, "acl": []},
                   {"reference": ref, "acl": {"users": "root"}}, {"reference": ref, "acl": {"groups": {"a": 1}}},
                   {"reference": ref, "acl": {"owners": []}}, {"reference": ref, "acl": {"users": [True]}},
                   {"reference": ref, "acl": {"users": [-1]}},
                   {"reference": "x" * 1025}, ["x"]]
        for body in invalid + semantic:
            r = self.call("post", t, t, body, semantic=body in semantic)
            self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), f"{body}: {r.body}")

    def scenario_progress(self):
        image_id = self.pull_ready(self.push_busybox())
        t = "/v1/images/{id}/progress"
        r = self.call("get", t, f"/v1/images/sha256:{image_id}/progress", as_user=users.USER)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body.splitlines()), 1, "no pull in flight: one line")
        self.assertEqual(self.call("get", t, f"/v1/images/{'0' * 64}/progress").status, 404)
        r = self.call("get", t, f"/v1/images/{image_id}/progress?platform=nowhere", semantic=True)
        self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), r.body)

    def scenario_get_image(self):
        ref = self.push_busybox()
        image_id = self.pull_ready(ref)
        t = "/v1/images/{idOrReference}"
        for key in (image_id, f"sha256:{image_id}", ref, ref + "/"):
            r = self.call("get", t, f"/v1/images/{key}", as_user=users.USER)
            self.assertEqual(r.status, 200, key)
            self.assertEqual(r.json["id"], image_id)
        for key in ("0" * 64, "no/such/image:1", "pull"):
            self.assertEqual(self.call("get", t, f"/v1/images/{key}").status, 404, key)
        for key in (image_id, ref):
            r = self.call("get", t, f"/v1/images/{key}?platform=local", as_user=users.USER)
            self.assertEqual((r.status, r.json["platform"]), (200, "local"), key)
        r = self.call("get", t, f"/v1/images/{image_id}?platform=nowhere", semantic=True)
        self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), r.body)
        # Someone else's private image does not exist.
        secret = self.call("post", "/v1/images/pull", "/v1/images/pull",
                           {"reference": f"{self.private.host}/team/secret:1",
                            "credentials": {"username": "alice", "password": "s3cret"}}, as_user=users.USER)
        self.assertIn(secret.status, (200, 202), secret.body)
        self.assertEqual(self.call("get", t, f"/v1/images/{secret.json['id']}", as_user=users.OTHER).status, 404)

    def scenario_remove_image(self):
        ref = self.push_busybox()
        image_id = self.pull_ready(ref)
        t = "/v1/images/{idOrReference}"
        self.assertEqual(self.call("delete", t, f"/v1/images/{image_id}", as_user=users.USER).status, 403)
        r = self.call("delete", t, f"/v1/images/{image_id}?platform=nowhere", semantic=True)
        self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), r.body)
        self.assertEqual(self.call("delete", t, f"/v1/images/{ref}", as_user=users.ADMIN).status, 204)
        self.assertEqual(self.call("delete", t, f"/v1/images/{image_id}").status, 404)

    def scenario_expire(self):
        image_id = self.pull_ready(self.push_busybox())
        t, path = "/v1/images/{id}/expire", f"/v1/images/{image_id}/expire"
        self.assertEqual(self.call("post", t, path, as_user=users.USER).status, 403)
        r = self.call("post", t, path + "?platform=nowhere", semantic=True)
        self.assertEqual((r.status, r.error_code()), (400, "InvalidArgument"), r.body)
        r = self.call("post", t, path, as_user=users.ADMIN)
        self.assertEqual((r.status, r.json["status"]), (200, "EXPIRED"), r.body)
        self.assertEqual(self.call("post", t, path).status, 200, "expiring an EXPIRED image is fine")
        self.assertEqual(self.call("post", t, f"/v1/images/{'0' * 64}/expire").status, 404)

    def slow_pull_conflicts(self):
        """A pull in flight (through a rate-limited proxy): removing or expiring its image is 409,
        and the progress stream has a line per change and ends with READY."""
        repo = self.uniq("test/big")
        layer = images.Layer().busybox().file("data/random.bin", os.urandom(2 * 1024 * 1024))
        images.push_image(self.registry, repo, "1", images.Image([(layer, "none")]))
        r = self.call("post", "/v1/images/pull", "/v1/images/pull", {"reference": f"{self.slow.host}/{repo}:1"})
        self.assertEqual(r.status, 202, r.body)
        image_id = r.json["id"]
        r = self.call("delete", "/v1/images/{idOrReference}", f"/v1/images/{image_id}")
        self.assertEqual((r.status, r.error_code()), (409, "Conflict"), r.body)
        r = self.call("post", "/v1/images/{id}/expire", f"/v1/images/{image_id}/expire")
        self.assertEqual((r.status, r.error_code()), (409, "Conflict"), r.body)
        s = self.call("get", "/v1/images/{id}/progress", f"/v1/images/{image_id}/progress", timeout=120)
        lines = [json.loads(x) for x in s.body.splitlines()]
        self.assertGreater(len(lines), 1, "a pull in flight streams more than one line")
        self.assertEqual(lines[-1]["status"], "READY")
        self.assertEqual(s.headers.get("x-accel-buffering"), "no")

    def private_pull_conflict(self):
        """While a private pull of a reference is resolving, a second one is refused with 409."""
        t = "/v1/images/pull"
        body = {"reference": f"{self.hang.host}/held/image:1", "credentials": {"username": "a", "password": "b"}}
        first = {}
        th = threading.Thread(target=lambda: first.update(r=self.gw.http("POST", t, body, timeout=120)))
        th.start()
        try:
            self.assertTrue(self.hang.connected.wait(60), "the worker reached the held registry")
            r = self.call("post", t, t, body)
            self.assertEqual((r.status, r.error_code()), (409, "Conflict"), r.body)
        finally:
            self.hang.release()
            th.join(150)
        r = first["r"]
        self.assertIsNotNone(self.api.response("post", t, r.status), f"first pull: {r.status} {r.body}")
        self.assertGreaterEqual(r.status, 400, r.body)

    # -- paths with methods they do not have -----------------------------------------------------

    def test_other_methods_are_405_with_allow(self):
        samples = {"/v1/services/{name}": ["/v1/services/x"],
                   "/v1/images/{id}/progress": ["/v1/images/abc/progress"],
                   "/v1/images/{id}/expire": ["/v1/images/abc/expire"],
                   "/v1/images/{idOrReference}": ["/v1/images/abc", "/v1/images/a/b:1"]}
        resp = self.api.schemas.resolve({"$ref": "#/components/responses/MethodNotAllowed"})
        schema = resp["content"]["application/json"]["schema"]
        for template in self.api.doc["paths"]:
            for path in samples.get(template, [template]):
                allowed = {m for t in self.api.templates_matching(path) for m in METHODS
                           if m in self.api.doc["paths"][t]}
                if "get" in allowed:
                    allowed.add("head")
                for method in ("get", "post", "put", "delete", "patch", "options"):
                    if method in allowed:
                        continue
                    with self.subTest(method=method, path=path):
                        r = self.gw.http(method.upper(), path)
                        self.assertEqual(r.status, 405, r.body)
                        self.assertEqual(self.api.schemas.errors(schema, r.json), [], r.body)
                        listed = [m.strip().lower() for m in r.headers.get("allow", "").split(",") if m.strip()]
                        self.assertEqual(set(listed), allowed - {"head"}, r.headers.get("allow"))
                        self.assertEqual(len(listed), len(set(listed)), f"each method once: {r.headers.get('allow')}")
        self.assertServing()

    def test_unknown_paths_are_404(self):
        resp = self.api.schemas.resolve({"$ref": "#/components/responses/NotFound"})
        schema = resp["content"]["application/json"]["schema"]
        for path in ("/", "/v1", "/v1/nothing", "/v2/status", "/v1/services/a/b", "/v1//services"):
            with self.subTest(path=path):
                self.assertEqual(self.api.templates_matching(path), [], "not a documented path")
                r = self.gw.http("GET", path)
                self.assertEqual(r.status, 404, r.body)
                self.assertEqual(self.api.schemas.errors(schema, r.json), [], r.body)

    def test_head_wherever_get(self):
        for template in ("/v1/status", "/v1/services", "/v1/images"):
            with self.subTest(path=template):
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(10)
                    s.connect(self.gw.socket_path)
                    s.sendall(f"HEAD {template} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
                    data = b""
                    while chunk := s.recv(65536):
                        data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                self.assertRegex(head.split(b"\r\n")[0].decode(), r"^HTTP/1\.[01] 200 ")
                self.assertEqual(body, b"")


if __name__ == "__main__":
    unittest.main()
