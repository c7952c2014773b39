"""Every kind of bad input on the HTTP surface gets its status and a JSON error naming the
problem, and the daemon keeps serving afterwards (same process, still answering)."""
import json
import socket
import unittest

from harness.stack import StackTestCase, spec

BAD_REQUEST = "org.gatewayd.Gateway1.Error.BadRequest"
INVALID_ARGUMENT = "org.gatewayd.Gateway1.Error.InvalidArgument"
# A registry on loopback that nothing listens on: should a pull start after all, it fails fast
# and sends nothing off the machine.
NOWHERE = "127.0.0.1:9"

# References the worker's grammar refuses (docs: 400 InvalidArgument), as JSON text fragments.
BAD_REFERENCES = [
    ("lone surrogate escape", f'"{NOWHERE}/app\\ud800:1"'),
    ("upper case in the repository", f'"{NOWHERE}/Team/app:1"'),
    ("upper case on Docker Hub", '"Alpine"'),
    ("escaped e acute", f'"{NOWHERE}/caf\\u00e9:1"'),
    ("raw e acute", f'"{NOWHERE}/app:caf\u00e9"'),
    ("empty", '""'),
    ("digest too short", f'"{NOWHERE}/app@sha256:abc"'),
]

VALIDATION_CASES = [
    # (what is wrong, spec changes (None value = remove the key), field the message must name)
    ("missing name", {"name": None}, "name"),
    ("empty name", {"name": ""}, "name"),
    ("name not a string", {"name": 5}, "name"),
    ("upper-case name", {"name": "Hello"}, "name"),
    ("name with leading dash", {"name": "-hello"}, "name"),
    ("name with trailing dash", {"name": "hello-"}, "name"),
    ("name too long", {"name": "a" * 64}, "name"),
    ("name with underscore", {"name": "hel_lo"}, "name"),
    ("name with dot", {"name": "hel.lo"}, "name"),
    ("name with slash", {"name": "a/b"}, "name"),
    ("missing image", {"image": None}, "image"),
    ("empty image", {"image": ""}, "image"),
    ("image not a string", {"image": ["busybox"]}, "image"),
    ("image with spaces", {"image": "not a reference"}, "image"),
    ("command a string", {"command": "echo hi"}, "command"),
    ("command with a number", {"command": ["echo", 1]}, "command"),
    ("command an object", {"command": {"a": "b"}}, "command"),
    ("env a list", {"env": ["A=1"]}, "env"),
    ("env value a number", {"env": {"A": 1}}, "env"),
    ("env name starting with a digit", {"env": {"1A": "x"}}, "env"),
    ("env name with dash", {"env": {"A-B": "x"}}, "env"),
    ("env name with '='", {"env": {"A=B": "x"}}, "env"),
    ("empty env name", {"env": {"": "x"}}, "env"),
    ("description not a string", {"description": 7}, "description"),
    ("resources not an object", {"resources": "big"}, "resources"),
    ("memory zero", {"resources": {"memory": 0}}, "resources.memory"),
    ("memory negative", {"resources": {"memory": -1}}, "resources.memory"),
    ("memory a string", {"resources": {"memory": "1G"}}, "resources.memory"),
    ("memory fractional", {"resources": {"memory": 1.5}}, "resources.memory"),
    ("cpus zero", {"resources": {"cpus": 0}}, "resources.cpus"),
    ("cpus negative", {"resources": {"cpus": -0.5}}, "resources.cpus"),
    ("cpus a string", {"resources": {"cpus": "2"}}, "resources.cpus"),
    ("timeout zero", {"resources": {"timeout": 0}}, "resources.timeout"),
    ("timeout negative", {"resources": {"timeout": -10}}, "resources.timeout"),
    ("timeout fractional", {"resources": {"timeout": 2.5}}, "resources.timeout"),
    ("unknown resource", {"resources": {"disk": 10}}, "disk"),
    ("network a string", {"network": "yes"}, "network"),
    ("network a number", {"network": 1}, "network"),
    ("unknown field", {"colour": "blue"}, "colour"),
]


def bad_spec(name, changes):
    s = spec(name)
    for k, v in changes.items():
        if v is None:
            s.pop(k, None)
        else:
            s[k] = v
    return s


class HttpErrors(StackTestCase):
    config = {"MaxRequestBody": 65536}

    def setUp(self):
        super().setUp()
        self.pid = self.gw.pid()

    def tearDown(self):
        # Still the same process, still answering.
        self.assertEqual(self.gw.pid(), self.pid, "gatewayd did not restart or crash")
        self.assertServing()
        super().tearDown()

    def test_validation_on_create(self):
        for what, changes, field in VALIDATION_CASES:
            with self.subTest(what):
                name = self.name("val")
                r = self.gw.http("POST", "/v1/services", bad_spec(name, changes))
                self.assertError(r, 400, "InvalidArgument", field)
                self.assertFalse(self.exists(name), "nothing created")

    def test_validation_on_update(self):
        name = self.name("upd")
        before = self.create(name)
        for what, changes, field in VALIDATION_CASES:
            if field == "name":
                continue  # the name comes from the path on PUT; mismatches are tested below
            with self.subTest(what):
                r = self.gw.http("PUT", f"/v1/services/{name}", bad_spec(name, changes))
                self.assertError(r, 400, "InvalidArgument", field)
        self.assertEqual(self.gw.http("GET", f"/v1/services/{name}").json, before, "unchanged")

    def test_put_name_mismatch(self):
        name = self.name("mis")
        self.create(name)
        r = self.gw.http("PUT", f"/v1/services/{name}", spec("some-other-name"))
        self.assertError(r, 400, "InvalidArgument", "name")
        self.assertFalse(self.exists("some-other-name"))

    def test_malformed_json(self):
        for body in ('{"name": "x", ', "{name: x}", "not json at all", '{"a":1}}', "\x00\x01",
                     '{"name": "x"} trailing'):
            with self.subTest(body=body):
                r = self.gw.http("POST", "/v1/services", body)
                self.assertError(r, 400, "BadRequest")

    def test_nul_escape_refused_everywhere(self):
        """"\\u0000" in any string or key of any body is 400: json-c keeps such a string whole,
        but names, keys and references are C strings and would be cut at the NUL (a service
        "nul\\u0000x" used to be created as "nul")."""
        name = self.name("nul")
        before = self.create(name, image=f"{NOWHERE}/none/nul:1")
        cases = [
            ("POST", "/v1/services", {"name": "nul\x00x", "image": "a/b:1"}),
            ("POST", "/v1/services", {"name": name + "x", "image": "a/b:1\x00"}),
            ("POST", "/v1/services", {"name": name + "y", "image": "a/b:1", "description": "a\x00b"}),
            ("POST", "/v1/services", {"name": name + "z", "image": "a/b:1", "env": {"A\x00B": "1"}}),
            ("POST", "/v1/services", {"name\x00": name + "w", "image": "a/b:1"}),
            ("PUT", f"/v1/services/{name}", {"name": name, "image": "a/b:1", "description": "\x00"}),
            ("POST", "/v1/images/pull", {"reference": f"{NOWHERE}/nul\x00:1"}),
            ("POST", f"/v1/services/{name}/jobs", {"data": {"s": "\x00"}}),
            ("POST", f"/planqk/{name}", {"data": {"k\x00": 1}}),
        ]
        for method, path, body in cases:
            text = json.dumps(body)
            self.assertIn("\\u0000", text)
            with self.subTest(method=method, path=path, body=text):
                r = self.gw.http(method, path, text)
                self.assertError(r, 400, "BadRequest", "\\u0000")
        for n in ("nul", name + "x", name + "y", name + "z", name + "w"):
            self.assertFalse(self.exists(n), n)
        self.assertEqual(self.gw.http("GET", f"/v1/services/{name}").json, before, "unchanged")
        self.assertEqual(self.gw.http("GET", "/v1/jobs").json.get("jobs"), [], "no job submitted")

    def test_nul_escape_refused_on_dbus(self):
        """The bus methods that take JSON text parse it with the same function."""
        name = self.name("nulbus")
        self.create(name, image=f"{NOWHERE}/none/nul:1")
        calls = [
            ("CreateService", json.dumps({"name": "nul\x00x", "image": "a/b:1"})),
            ("UpdateService", name, json.dumps({"name": name, "image": "a/b:1", "description": "\x00"})),
            ("SubmitJob", name, json.dumps({"s": "\x00"}), ""),
            ("SubmitJob", name, "", json.dumps({"k\x00": 1})),
            ("PullImage", f"{NOWHERE}/none/nul:1", json.dumps({"platform": "lo\x00cal"})),
        ]
        for method, *args in calls:
            with self.subTest(method=method, args=args):
                p, err = self.gw.gdbus_call(method, *args)
                self.assertEqual(err, BAD_REQUEST, p.stderr)
                self.assertIn("\\u0000", p.stderr)
        self.assertFalse(self.exists("nul"))
        self.assertEqual(self.gw.http("GET", f"/v1/services/{name}").json["description"], "")

    def test_bad_reference_is_400(self):
        """A reference outside the grammar is the client's mistake: 400 InvalidArgument naming
        "reference", on HTTP and D-Bus, and no worker is started for it (it used to end as a
        failed pull, 503)."""
        for what, ref in BAD_REFERENCES:
            with self.subTest(what):
                r = self.gw.http("POST", "/v1/images/pull", '{"reference": %s}' % ref)
                self.assertError(r, 400, "InvalidArgument", "reference")
                # D-Bus strings are valid UTF-8: a lone surrogate arrives as U+FFFD there, as
                # json-c decodes it.
                text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in json.loads(ref))
                p, err = self.gw.gdbus_call("PullImage", text, "")
                self.assertEqual(err, INVALID_ARGUMENT, p.stderr)
        self.assertEqual(self.gw.http("GET", "/v1/images").json["images"], [], "no image record")

    def test_bad_service_image_is_400(self):
        """A service must name an image the worker could pull."""
        for what, ref in BAD_REFERENCES:
            with self.subTest(what):
                name = self.name("img")
                r = self.gw.http("POST", "/v1/services", '{"name": "%s", "image": %s}' % (name, ref))
                self.assertError(r, 400, "InvalidArgument", "image")
                self.assertFalse(self.exists(name))

    def test_empty_body(self):
        r = self.gw.http("POST", "/v1/services", "")
        self.assertEqual(r.status, 400, r.body)
        self.assertIn(r.error_code(), ("BadRequest", "InvalidArgument"))

    def test_json_not_an_object(self):
        for body in ("[]", "null", '"hello"', "42", "true"):
            with self.subTest(body=body):
                r = self.gw.http("POST", "/v1/services", body)
                self.assertEqual(r.status, 400, r.body)
                self.assertIn(r.error_code(), ("BadRequest", "InvalidArgument"))

    def test_invalid_utf8(self):
        r = self.gw.http("POST", "/v1/services",
                         b'{"name": "utf", "image": "a/b:1", "description": "\xff\xfe"}')
        self.assertEqual(r.status, 400, r.body)
        self.assertFalse(self.exists("utf"))

    def test_unsupported_media_type(self):
        for ctype in (None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"):
            with self.subTest(content_type=ctype):
                name = self.name("ct")
                r = self.gw.http("POST", "/v1/services", spec(name), content_type=ctype)
                self.assertError(r, 415, "UnsupportedMediaType")
                self.assertFalse(self.exists(name))
        name = self.name("ctput")
        self.create(name)
        r = self.gw.http("PUT", f"/v1/services/{name}", spec(name), content_type="text/plain")
        self.assertError(r, 415, "UnsupportedMediaType")

    def test_payload_too_large(self):
        """MaxRequestBody (64 KiB here) is enforced; a body just under it is fine."""
        name = self.name("big")
        r = self.gw.http("POST", "/v1/services", spec(name, description="x" * 70000))
        self.assertError(r, 413, "PayloadTooLarge")
        self.assertFalse(self.exists(name))
        r = self.gw.http("POST", "/v1/services", spec(name, description="x" * 60000))
        self.assertEqual(r.status, 201, r.body[:300])

    def test_payload_far_too_large(self):
        """Several MiB are refused from Content-Length alone: with "Expect: 100-continue" the
        daemon answers 413 instead of 100 and never reads the body."""
        r = self.gw.http("POST", "/v1/services", b"{" + b" " * (8 << 20) + b"}",
                         headers={"Expect": "100-continue"})
        self.assertError(r, 413, "PayloadTooLarge")

    def test_unknown_routes(self):
        for method, path in (("GET", "/"), ("GET", "/v1"), ("GET", "/v1/nothing"),
                             ("GET", "/v2/services"), ("GET", "/v1/services/a/b"),
                             ("POST", "/v1/nothing"), ("GET", "/v1/servicesx")):
            with self.subTest(method=method, path=path):
                r = self.gw.http(method, path, body={} if method == "POST" else None)
                self.assertError(r, 404, "NotFound")

    def test_method_not_allowed(self):
        cases = (("DELETE", "/v1/services", {"GET", "POST"}),
                 ("PUT", "/v1/services", {"GET", "POST"}),
                 ("POST", "/v1/status", {"GET"}),
                 ("DELETE", "/v1/status", {"GET"}),
                 ("PATCH", "/v1/services/x", {"GET", "PUT", "DELETE"}),
                 ("POST", "/v1/services/x", {"GET", "PUT", "DELETE"}))
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                r = self.gw.http(method, path, body={} if method in ("PUT", "POST", "PATCH") else None)
                self.assertError(r, 405, "MethodNotAllowed")
                allow = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
                self.assertTrue(allowed <= allow, f"Allow: {r.headers.get('allow')!r} lists {allowed}")

    def test_unknown_service(self):
        r = self.gw.http("GET", "/v1/services/no-such-service")
        self.assertError(r, 404, "NotFound", "no-such-service")
        r = self.gw.http("PUT", "/v1/services/no-such-service", spec("no-such-service"))
        self.assertError(r, 404, "NotFound")
        self.assertFalse(self.exists("no-such-service"), "PUT does not create")
        r = self.gw.http("DELETE", "/v1/services/no-such-service")
        self.assertError(r, 404, "NotFound")

    def test_invalid_name_in_path(self):
        for path in ("/v1/services/UPPER", "/v1/services/%00", "/v1/services/" + "a" * 300):
            with self.subTest(path=path[:40]):
                r = self.gw.http("GET", path)
                self.assertIn(r.status, (400, 404), r.body)
                self.assertIn(r.error_code(), ("InvalidArgument", "NotFound", "BadRequest"))

    def test_duplicate(self):
        name = self.name("dup")
        first = self.create(name)
        r = self.gw.http("POST", "/v1/services", spec(name, description="second"))
        self.assertError(r, 409, "AlreadyExists", name)
        self.assertEqual(self.gw.http("GET", f"/v1/services/{name}").json, first, "unchanged")

    def test_delete_twice(self):
        name = self.name("del")
        self.create(name)
        self.assertEqual(self.gw.http("DELETE", f"/v1/services/{name}").status, 204)
        self.assertError(self.gw.http("DELETE", f"/v1/services/{name}"), 404, "NotFound")

    def test_error_content_type(self):
        r = self.gw.http("GET", "/v1/nothing")
        self.assertIn("application/json", r.headers.get("content-type", ""))

    def raw(self, data, want_status=False):
        """Sends raw bytes on the socket and half-closes it. With WANT_STATUS, returns the status
        line the daemon answers with; otherwise only gives the daemon a moment (whether it
        closes at once or only at its connection timeout is not the point here)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10 if want_status else 0.5)
        s.connect(self.gw.socket_path)
        try:
            if data:
                s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            out = b""
            while b"\r\n" not in out:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    if want_status:
                        raise
                    return out
                if not chunk:
                    break
                out += chunk
            return out
        finally:
            s.close()

    def test_garbage_and_broken_connections(self):
        """Non-HTTP bytes, truncated requests, a lying Content-Length and clients that vanish
        mid-request do not take the daemon down."""
        self.raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100)  # a TLS hello
        self.raw(b"GARBAGE\r\n\r\n")
        self.raw(b"POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"name\":")
        self.raw(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
        self.raw(b"")
        self.assertServing()
        out = self.raw(b"POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 5\r\n\r\n{\"name\": \"toolong\"}", want_status=True)
        self.assertTrue(out.startswith(b"HTTP/1.1 4"), out[:100])
        out = self.raw(b"GET /v1/status HTTP/1.0\r\n\r\n", want_status=True)
        self.assertTrue(out.startswith(b"HTTP/1.0 200") or out.startswith(b"HTTP/1.1 200"), out[:100])

    def test_huge_header_does_not_block_others(self):
        """A client stuck in a 200 KB header (whether the daemon answers 431, closes, or just
        stops reading) does not keep anyone else from being served."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.gw.socket_path)
        try:
            try:
                s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 200000 + b"\r\n\r\n")
                s.shutdown(socket.SHUT_WR)
            except (socket.timeout, BrokenPipeError, ConnectionResetError):
                pass
            # The stuck connection is still open here.
            self.assertServing()
            self.create()
            s.settimeout(0.5)
            try:
                out = s.recv(100)
            except (socket.timeout, ConnectionResetError):
                out = b""
            if out:
                self.assertTrue(out.startswith(b"HTTP/1.1 4"), out[:100])
        finally:
            s.close()

    def test_many_bad_requests_then_good(self):
        for i in range(50):
            self.gw.http("POST", "/v1/services", "{bad")
        self.create()


if __name__ == "__main__":
    unittest.main()
