"""Images in gatewayd: pulls through the daemon (HTTP and D-Bus) from a real docker-registry,
de-duplication, failures, private images, removal, expiry and restart in the middle of a pull.
The worker's own behaviour (layers, hostile input, auth flows) is covered by test_pull."""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess

from harness import images, users
from harness.bus import BusMonitor
from harness.gatewayd import BUS_NAME, Gatewayd
from harness.procs import Processes, TempDir, build_dir, wait_for
from harness.registry import Proxy, Registry, TestCA
from harness.stack import StackTestCase

IMAGE_IFACE = "org.gatewayd.Gateway1.Image"


def location(host):
    return {"remotetype": "dockerv2", "authentication": "http", "insecure": True}


class ImageStack(StackTestCase):
    """A registry with a busybox image (and a private one behind htpasswd), and gatewayd
    configured to reach both over plain HTTP."""

    extra_config = {}

    @classmethod
    def setUpClass(cls):
        cls.reg_procs = Processes()
        cls.reg_tmp = TempDir()
        try:
            cls.registry = Registry(cls.reg_procs, os.path.join(cls.reg_tmp.path, "public")).start()
            os.makedirs(cls.registry.tmpdir, exist_ok=True)
            cls.digest, _ = images.push_image(cls.registry, "test/busybox", "latest", images.busybox_image())
            images.push_image(cls.registry, "test/other", "v1",
                              images.Image([(images.Layer().busybox().file("etc/marker", "other\n"), "gzip")]))
            ptmp = os.path.join(cls.reg_tmp.path, "private")
            os.makedirs(ptmp)
            cls.private = Registry(cls.reg_procs, ptmp, auth=("htpasswd", {"alice": "s3cret"})).start()
            images.push_image(cls.private, "team/secret", "1",
                              images.Image([(images.Layer().busybox().file("etc/secret", "42\n"), "gzip")]))
            cls.config = {
                "DefaultImageLocation": cls.registry.host,
                "Locations": {cls.registry.host: location(cls.registry.host),
                              cls.private.host: location(cls.private.host)},
                **cls.extra_config,
            }
            super().setUpClass()
        except BaseException:
            cls.reg_procs.stop_all()
            cls.reg_tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.reg_procs.stop_all()
            cls.reg_tmp.cleanup()

    def pull(self, reference, as_user=None, **kw):
        return self.gw.http("POST", "/v1/images/pull", {"reference": reference, **kw}, as_user=as_user)

    def wait_done(self, image_id, as_user=None):
        """Follows the progress stream, which ends when the pull does; returns its lines."""
        r = self.gw.http("GET", f"/v1/images/{image_id}/progress", as_user=as_user, timeout=120)
        self.assertEqual(r.status, 200, r.body)
        lines = [json.loads(x) for x in r.body.splitlines() if x.strip()]
        self.assertTrue(lines, "progress stream has at least one line")
        return lines

    def image(self, ref, as_user=None):
        return self.gw.http("GET", f"/v1/images/{ref}", as_user=as_user)


class Pull(ImageStack):
    def test_pull_over_http_to_ready(self):
        ref = f"{self.registry.host}/test/busybox:latest"
        r = self.pull(ref, as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        rec = r.json
        self.assertEqual(rec["digest"], self.digest)
        self.assertEqual(rec["id"], self.digest.split(":")[1])
        lines = self.wait_done(rec["id"], as_user=users.USER)
        self.assertEqual(lines[-1]["status"], "READY", lines[-1])
        statuses = [x["status"] for x in lines]
        if len(lines) > 1:  # watched from the start: Shifter's phases in order
            self.assertEqual(statuses, sorted(statuses, key=["PENDING", "PULLING", "CONVERSION", "READY"].index))

        got = self.image(rec["id"], as_user=users.OTHER)
        self.assertEqual(got.status, 200, got.body)
        self.assertEqual(got.json["status"], "READY")
        self.assertGreater(got.json["size"], 0)
        by_ref = self.image(ref)
        self.assertEqual(by_ref.json["id"], rec["id"])
        squashfs = os.path.join(self.gw.state_dir, "images", rec["id"] + ".squashfs")
        self.assertTrue(os.path.exists(squashfs))
        self.assertEqual(os.path.getsize(squashfs), got.json["size"])
        listing = subprocess.run(["unsquashfs", "-lls", squashfs], capture_output=True, text=True, check=True).stdout
        self.assertIn("squashfs-root/bin/busybox", listing)
        self.assertIn("squashfs-root/var/input", listing)

        # Within PullUpdateTimeout a second pull is answered from the record, at once.
        again = self.pull(ref, as_user=users.OTHER)
        self.assertEqual(again.status, 200, again.body)
        self.assertEqual(again.json["status"], "READY")

        # Over D-Bus the record is an object with properties.
        p = self.gw.busctl("get-property", BUS_NAME, f"/org/gatewayd/Gateway1/image/{rec['id']}", IMAGE_IFACE, "Status",
                           as_user=users.OTHER)
        self.assertEqual(p.stdout.strip(), 's "READY"', p.stderr)

    def test_concurrent_pulls_convert_once(self):
        ref = f"{self.registry.host}/test/other:v1"
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            rs = list(ex.map(lambda u: self.pull(ref, as_user=u), [users.USER, users.OTHER, users.ADMIN, None] * 2))
        for r in rs:
            self.assertIn(r.status, (200, 202), r.body)
        ids = {r.json["id"] for r in rs}
        self.assertEqual(len(ids), 1, ids)
        image_id = ids.pop()
        self.assertEqual(self.wait_done(image_id)[-1]["status"], "READY")
        log = self.gw.stderr_text()
        self.assertEqual(log.count(f"Image {image_id} ({ref}): CONVERSION"), 1, "one conversion for all pulls")

    def test_pull_over_dbus(self):
        ref = f"{self.registry.host}/test/busybox:latest"
        p, data = self.gw.call("PullImage", "ss", ref, "", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        path = data[0]
        self.assertTrue(path.startswith("/org/gatewayd/Gateway1/image/"), path)
        p = self.gw.busctl("get-property", BUS_NAME, path, IMAGE_IFACE, "Id")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.wait_done(json.loads(p.stdout.split(" ", 1)[1]))[-1]["status"], "READY")
        p = self.gw.busctl("get-property", BUS_NAME, path, IMAGE_IFACE, "Progress")
        self.assertEqual(p.stdout.strip(), "d 1", p.stdout)

    def test_unknown_tag_is_not_found(self):
        r = self.pull(f"{self.registry.host}/test/busybox:nosuchtag", as_user=users.USER)
        self.assertError(r, 404, "NotFound")
        self.assertIn("nosuchtag", r.json["error"]["message"])
        p, err = self.gw.gdbus_call("PullImage", f"{self.registry.host}/test/nope:1", "", as_user=users.USER)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NotFound")
        self.assertServing()

    def test_bad_pull_requests(self):
        self.assertError(self.pull("", as_user=users.USER), 400, "InvalidArgument", "reference")
        self.assertError(self.gw.http("POST", "/v1/images/pull", {"ref": "x"}), 400, "InvalidArgument", "ref")
        self.assertError(self.gw.http("POST", "/v1/images/pull", {}), 400, "InvalidArgument", "reference")
        self.assertError(self.gw.http("POST", "/v1/images/pull", "{"), 400, "BadRequest")
        self.assertError(self.pull("alpine", platform="nowhere"), 400, "InvalidArgument", "platform")
        self.assertError(self.pull("alpine", acl={"users": ["no-such-user-xyz"]}), 400, "InvalidArgument", "acl.users")
        # ids past uid_t/gid_t were cut to 32 bits (2^32 + 1000 was uid 1000); (uid_t) -1 is no id
        for n in (4294967296 + 1000, 4294967295):
            self.assertError(self.pull("alpine", acl={"users": [n]}), 400, "InvalidArgument", "acl.users[0]")
            self.assertError(self.pull("alpine", acl={"groups": [0, n]}), 400, "InvalidArgument", "acl.groups[1]")
        self.assertError(self.pull("alpine", credentials={"username": "a"}), 400, "InvalidArgument", "credentials")
        self.assertError(self.pull("alpine", credentials={"token": 5}), 400, "InvalidArgument", "credentials")
        self.assertError(self.image("0" * 64), 404, "NotFound")
        for options in ('{"force": "yes"}', '{"platform": 1}', '{"bogus": 1}', '[1]', '{"credentials": "x"}'):
            p, err = self.gw.gdbus_call("PullImage", "alpine", options, as_user=users.USER)
            self.assertNotEqual(p.returncode, 0, options)
            self.assertIn(err, ("org.gatewayd.Gateway1.Error.InvalidArgument", "org.gatewayd.Gateway1.Error.BadRequest"), options)
        self.assertServing()

    def test_remove_needs_admin(self):
        ref = f"{self.registry.host}/test/busybox:latest"
        image_id = self.pull(ref).json["id"]
        self.wait_done(image_id)
        self.assertError(self.gw.http("DELETE", f"/v1/images/{image_id}", as_user=users.USER), 403, "AccessDenied")
        r = self.gw.http("DELETE", f"/v1/images/{image_id}", as_user=users.ADMIN)
        self.assertEqual(r.status, 204, r.body)
        self.assertError(self.image(image_id), 404, "NotFound")
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "images", image_id + ".squashfs")))
        self.assertError(self.gw.http("DELETE", f"/v1/images/{image_id}", as_user=users.ADMIN), 404, "NotFound")

    def test_private_image_acl(self):
        ref = f"{self.private.host}/team/secret:1"
        r = self.pull(ref, as_user=users.USER)
        self.assertError(r, 403, "AccessDenied")
        self.assertIn("authentication", r.json["error"]["message"])

        r = self.pull(ref, as_user=users.USER, credentials={"username": "alice", "password": "wrong"})
        self.assertError(r, 403, "AccessDenied")

        r = self.pull(ref, as_user=users.USER, credentials={"username": "alice", "password": "s3cret"},
                      acl={"users": [users.ADMIN]})
        self.assertIn(r.status, (200, 202), r.body)
        self.assertTrue(r.json["private"])
        image_id = r.json["id"]
        self.assertEqual(self.wait_done(image_id, as_user=users.USER)[-1]["status"], "READY")

        self.assertEqual(self.image(image_id, as_user=users.USER).status, 200)
        self.assertEqual(self.image(image_id, as_user=users.ADMIN).status, 200)
        self.assertError(self.image(image_id, as_user=users.OTHER), 404, "NotFound")
        self.assertError(self.image(ref, as_user=users.OTHER), 404, "NotFound")
        listed = self.gw.http("GET", "/v1/images", as_user=users.OTHER).json["images"]
        self.assertNotIn(image_id, [i["id"] for i in listed])
        p = self.gw.busctl("get-property", BUS_NAME, f"/org/gatewayd/Gateway1/image/{image_id}", IMAGE_IFACE,
                           "Status", as_user=users.OTHER)
        self.assertNotEqual(p.returncode, 0, "private image object is invisible on the bus too")
        # No credentials were left behind in the runtime directory.
        self.assertEqual([f for f in os.listdir(self.gw.runtime_dir) if f.startswith("credentials")], [])


    def test_private_pull_signals_do_not_name_the_image(self):
        # Bus signals are broadcast: for a private image they may say that some digest changed
        # state, never which repository it came from.
        images.push_image(self.private, "team/hidden", "2",
                          images.Image([(images.Layer().busybox().file("etc/hidden", "x\n"), "gzip")]))
        ref = f"{self.private.host}/team/hidden:2"
        with BusMonitor(self.bus) as mon:
            r = self.pull(ref, as_user=users.USER, credentials={"username": "alice", "password": "s3cret"})
            self.assertIn(r.status, (200, 202), r.body)
            path = "/org/gatewayd/Gateway1/image/"
            ready = mon.wait_signal("PropertiesChanged", timeout=60,
                                    predicate=lambda m: m.get("path", "").startswith(path) and "READY" in json.dumps(m))
            self.assertTrue(ready)
            signals = [m for m in mon.seen if m.get("type") == "signal"]
        self.assertTrue(signals)
        leaking = [m for m in signals if "team/hidden" in json.dumps(m)]
        self.assertEqual(leaking, [], "no signal names the private repository")
        self.assertEqual(self.image(r.json["id"], as_user=users.USER).json["reference"], ref)


class PrivateOnTwoPlatforms(ImageStack):
    """A private image converted for one platform serves another platform's pull without a second
    conversion — but only a pull whose own credentials pass the registry, and the other
    platform's record is private to that puller: the first puller's credentials and ACL lend
    nobody anything. "there" has an image directory of its own."""

    @classmethod
    def setUpClass(cls):
        cls.there_tmp = TempDir()
        cls.extra_config = {"Platforms": {"here": {"accesstype": "local"},
                                          "there": {"accesstype": "local",
                                                    "local": {"imageDir": os.path.join(cls.there_tmp.path, "images")}}},
                            "DefaultPlatform": "here"}
        try:
            super().setUpClass()
        except BaseException:
            cls.there_tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.there_tmp.cleanup()

    def on(self, image_id, platform, as_user):
        return self.gw.http("GET", f"/v1/images/{image_id}?platform={platform}", as_user=as_user)

    def wait_ready(self, image_id, platform, as_user):
        wait_for(lambda: self.on(image_id, platform, as_user).json.get("status") in ("READY", "FAILURE"),
                 timeout=60, what=f"the pull for {platform} to end")
        self.assertEqual(self.on(image_id, platform, as_user).json["status"], "READY")

    def test_private_image_for_another_platform(self):
        images.push_image(self.private, "team/twice", "1",
                          images.Image([(images.Layer().busybox().file("etc/twice", "2\n"), "gzip")]))
        ref = f"{self.private.host}/team/twice:1"
        good = {"username": "alice", "password": "s3cret"}
        r = self.pull(ref, as_user=users.USER, credentials=good, platform="here")
        self.assertIn(r.status, (200, 202), r.body)
        image_id = r.json["id"]
        self.wait_ready(image_id, "here", users.USER)

        # Without credentials, or with wrong ones, the registry refuses OTHER: nothing is reused.
        self.assertError(self.pull(ref, as_user=users.OTHER, platform="there"), 403, "AccessDenied")
        self.assertError(self.pull(ref, as_user=users.OTHER, platform="there",
                                   credentials={"username": "alice", "password": "wrong"}), 403, "AccessDenied")
        for platform in ("here", "there"):
            self.assertError(self.on(image_id, platform, users.OTHER), 404, "NotFound")
        self.assertError(self.on(image_id, "there", users.USER), 404, "NotFound")

        # With credentials that pass: READY for "there" from "here"'s conversion, private to OTHER.
        r = self.pull(ref, as_user=users.OTHER, credentials=good, platform="there")
        self.assertIn(r.status, (200, 202), r.body)
        self.assertEqual(r.json["id"], image_id)
        self.wait_ready(image_id, "there", users.OTHER)
        self.assertEqual(self.gw.stderr_text().count(f"Image {image_id} ({ref}): CONVERSION"), 1, "converted once")
        self.assertTrue(self.on(image_id, "there", users.OTHER).json["private"])
        self.assertError(self.on(image_id, "here", users.OTHER), 404, "NotFound")
        self.assertError(self.on(image_id, "there", users.USER), 404, "NotFound")
        self.assertEqual(self.on(image_id, "here", users.USER).status, 200)
        listed = self.gw.http("GET", "/v1/images", as_user=users.OTHER).json["images"]
        self.assertEqual([(i["id"], i["platform"]) for i in listed if i["id"] == image_id], [(image_id, "there")])


class Expiry(ImageStack):
    extra_config = {"ImageExpirationTimeout": "0:00:00:02"}

    def test_unused_image_expires(self):
        image_id = self.pull(f"{self.registry.host}/test/busybox:latest").json["id"]
        self.wait_done(image_id)
        squashfs = os.path.join(self.gw.state_dir, "images", image_id + ".squashfs")
        self.assertTrue(os.path.exists(squashfs))
        # Expiry runs on a timer; there is no event to wait for but the status. (Polled through
        # the list: a lookup of the image itself counts as a use and would keep it alive.)
        def expired():
            listed = self.gw.http("GET", "/v1/images").json["images"]
            return [i["status"] for i in listed if i["id"] == image_id] == ["EXPIRED"]
        wait_for(expired, timeout=20, what="expiry")
        self.assertFalse(os.path.exists(squashfs))

    def test_lookup_keeps_image(self):
        image_id = self.pull(f"{self.registry.host}/test/other:v1").json["id"]
        self.wait_done(image_id)
        # Looked up more often than the timeout: stays READY across several expiry rounds.
        for _ in range(6):
            r = self.gw.http("GET", f"/v1/images/{image_id}", timeout=5)
            self.assertEqual(r.json["status"], "READY")
            self.gw.notify.count()  # (no sleep: the lookups themselves take time)
        self.assertEqual(self.image(image_id).json["status"], "READY")

    def test_admin_expires_on_demand(self):
        image_id = self.pull(f"{self.registry.host}/test/other:v1").json["id"]
        self.wait_done(image_id)
        self.assertError(self.gw.http("POST", f"/v1/images/{image_id}/expire", as_user=users.USER), 403, "AccessDenied")
        r = self.gw.http("POST", f"/v1/images/{image_id}/expire", as_user=users.ADMIN)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["status"], "EXPIRED")
        # Pulling again brings it back.
        r = self.pull(f"{self.registry.host}/test/other:v1")
        self.assertEqual(self.wait_done(r.json["id"])[-1]["status"], "READY")


class Limits(ImageStack):
    """Images that would take too much: ImageSizeMax and ImageFilesMax (small here, so the tests
    take seconds) reach the worker, its FAILURE names the limit, the staging tree is gone, and
    the daemon keeps serving and pulling."""

    extra_config = {"ImageSizeMax": "16M", "ImageFilesMax": 400}

    def assert_fails(self, name, image, expect):
        images.push_image(self.registry, "limits/" + name, "latest", image)
        r = self.pull(f"{self.registry.host}/limits/{name}:latest", as_user=users.USER)
        self.assertEqual(r.status, 202, r.body)
        lines = self.wait_done(r.json["id"], as_user=users.USER)
        self.assertEqual(lines[-1]["status"], "FAILURE", lines[-1])
        self.assertIn(expect, lines[-1]["message"])
        got = self.image(r.json["id"], as_user=users.USER)
        self.assertEqual((got.json["status"], got.json["message"]), ("FAILURE", lines[-1]["message"]))
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "images", r.json["id"] + ".squashfs")))
        expand = os.path.join(self.gw.state_dir, "expand")
        self.assertEqual(os.listdir(expand) if os.path.isdir(expand) else [], [], "staging tree removed")
        self.assertServing()
        return r.json["id"]

    def test_gzip_bomb(self):
        self.assert_fails("bomb", images.Image([(images.gzip_bomb(256), "gzip")]), "ImageSizeMax (16777216 bytes")
        # the daemon still pulls what fits
        r = self.pull(f"{self.registry.host}/test/busybox:latest", force=True)
        self.assertEqual(self.wait_done(r.json["id"])[-1]["status"], "READY")

    def test_too_many_files(self):
        layer = images.Layer().dir("d")
        for i in range(450):
            layer.file(f"d/{i}")
        self.assert_fails("files", images.Image([(layer, "gzip")]), "ImageFilesMax (400)")

    def test_diff_id_mismatch(self):
        layer = images.Layer().busybox()
        img = images.Image([(layer, "gzip")], diff_ids=[images.sha256(b"something else")])
        self.assert_fails("diffid", img, "diff_id mismatch")

    def test_config_too_large(self):
        img = images.Image([(images.Layer().file("f", "x"), "gzip")], labels={"pad": "x" * (8 << 20)})
        self.assert_fails("config", img, "more than the limit of 8388608")

    def test_too_many_layers(self):
        # found while resolving, before there is an image record: the pull request is refused
        layer = (images.Layer().file("f", "x"), "gzip")
        images.push_image(self.registry, "limits/layers", "latest", images.Image([layer] * 1001))
        r = self.pull(f"{self.registry.host}/limits/layers:latest", as_user=users.USER)
        self.assertEqual(r.status, 503, r.body)
        self.assertIn("more than 1000 layers", r.json["error"]["message"])
        self.assertServing()


class Interrupted(ImageStack):
    """Pulls that break: a registry that dies mid-download, and gatewayd killed mid-pull."""

    def slow_image(self, tag):
        layer = images.Layer().busybox().file("data/random.bin", os.urandom(4 * 1024 * 1024))
        images.push_image(self.registry, "test/big", tag, images.Image([(layer, "none")]))
        proxy = Proxy(self.registry.port, rate=256 * 1024)
        self.addCleanup(proxy.stop)
        return proxy, f"{proxy.host}/test/big:{tag}"

    def reconfigure_for(self, proxy):
        self.gw.config["Locations"][proxy.host] = location(proxy.host)
        self.gw.write_config()

    def test_kill_gatewayd_mid_pull(self):
        proxy, ref = self.slow_image("kill")
        self.reconfigure_for(proxy)
        self.gw.restart()
        r = self.pull(ref, as_user=users.USER)
        self.assertEqual(r.status, 202, r.body)
        image_id = r.json["id"]
        self.gw.kill(signal.SIGKILL)  # waits for it
        self.gw.start()
        got = self.image(image_id)
        self.assertEqual(got.json["status"], "FAILURE", got.body)
        self.assertIn("restart", got.json["message"])
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "images", image_id + ".squashfs")))
        image_dir = os.path.join(self.gw.state_dir, "images")
        leftovers = os.listdir(image_dir) if os.path.isdir(image_dir) else []
        self.assertEqual([f for f in leftovers if image_id in f], [], "nothing of the image is visible")

    def test_registry_dies_mid_download(self):
        proxy, ref = self.slow_image("dies")
        self.reconfigure_for(proxy)
        self.gw.restart()
        r = self.pull(ref, as_user=users.USER)
        self.assertEqual(r.status, 202, r.body)
        image_id = r.json["id"]
        # The registry crashes mid-transfer; it comes back (same port, same storage) afterwards.
        self.registry.kill()
        self.addCleanup(self.registry.start, self.registry.port)
        lines = self.wait_done(image_id)
        self.assertEqual(lines[-1]["status"], "FAILURE", lines[-1])
        self.assertTrue(lines[-1]["message"])
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "images", image_id + ".squashfs")))
        self.assertServing()


class CountingServer:
    """An HTTP server on 127.0.0.1 that counts every connection it accepts and answers every
    request 404: it stands for an internal service that a pull must not reach."""

    def __init__(self):
        import http.server
        import threading
        server = self
        self.connections = 0
        self.connected = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

        class Server(http.server.ThreadingHTTPServer):
            def verify_request(self, request, client_address):
                server.connections += 1
                server.connected.set()
                return True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class Locations(ImageStack):
    """Pulls go only to the registries in Locations (issue 8 §3): anything else is 403 and the
    worker is never started, so no connection is made."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.outside = CountingServer()
            cls.inside = CountingServer()
            cls.gw.config["Locations"][cls.inside.host] = location(cls.inside.host)
            cls.gw.write_config()
            cls.gw.restart()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            for s in ("outside", "inside"):
                if getattr(cls, s, None):
                    getattr(cls, s).stop()
        finally:
            super().tearDownClass()

    def test_unconfigured_registry_is_refused_without_connection(self):
        host = self.outside.host
        for ref in (f"{host}/probe/anything:1", f"{host}/x@sha256:{'0' * 64}", f"{host.upper()}/y"):
            r = self.pull(ref, as_user=users.USER)
            self.assertError(r, 403, "AccessDenied", "Locations")
            self.assertIn(host, r.json["error"]["message"])
        # Also for root and with credentials, and over D-Bus.
        self.assertError(self.pull(f"{host}/a/b:1"), 403, "AccessDenied", "Locations")
        self.assertError(self.pull(f"{host}/a/b:1", credentials={"username": "u", "password": "p"}),
                         403, "AccessDenied", "Locations")
        p, err = self.gw.gdbus_call("PullImage", f"{host}/probe/bus:1", "", as_user=users.USER)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.AccessDenied", p.stderr)
        self.assertIn("Locations", p.stderr)
        # A refused pull starts no worker: nothing can connect later either.
        self.assertFalse(self.outside.connected.wait(1.0), "a refused pull connected to the registry")
        self.assertEqual(self.outside.connections, 0)
        self.assertNotIn(f"Pulling {host}", self.gw.stderr_text())

    def test_configured_location_is_contacted(self):
        # The control: the same kind of server, listed in Locations, is asked.
        r = self.pull(f"{self.inside.host}/probe/anything:1", as_user=users.USER)
        self.assertError(r, 404, "NotFound")
        self.assertTrue(self.inside.connected.is_set())
        # The default location (references without a registry) is one of them too.
        r = self.pull("test/busybox:latest", as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        self.assertEqual(r.json["digest"], self.digest)

    def test_invalid_reference_is_bad_request(self):
        for ref in (f"{self.registry.host}/UPPER/case:1", f"{self.outside.host}/a/b@sha256:1", "-x/y", "a/b:-t"):
            self.assertError(self.pull(ref, as_user=users.USER), 400, "InvalidArgument", "reference")
        self.assertFalse(self.outside.connected.is_set())


class LocationKeys(ImageStack):
    """A Location's url, sslcacert and authentication do what docs/configuration.md says (issue 8):
    a registry under a made-up name reached at its url, TLS with the site's CA (and without it a
    clear TLS error), authentication "none" sending no credentials, a missing CA file refusing the
    start. gatewayd's proxy variables point at a server that counts connections: anything the
    worker reached by a name instead of 127.0.0.1 would go there, never resolved by the worker."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.trap = CountingServer()
            cls.ca = TestCA(cls.reg_tmp.path)
            # The same storage as the plain registry, served over TLS only.
            cls.tls = Registry(cls.reg_procs, cls.reg_tmp.path, tls=cls.ca, storage=cls.registry.storage).start()
            shutil.copy(cls.ca.ca, os.path.join(os.path.dirname(cls.gw.config_path), "site-ca.pem"))
            cls.gw.config["Locations"].update({
                "mirror.gatewayd.invalid": {"url": f"http://{cls.registry.host}/"},
                cls.tls.host: {"url": f"https://{cls.tls.host}", "sslcacert": "site-ca.pem"},
                f"localhost:{cls.tls.port}": {"url": f"https://{cls.tls.host}"},
                f"localhost:{cls.private.port}": {"authentication": "none"},
            })
            cls.gw.env_extra.update(http_proxy=f"http://{cls.trap.host}", https_proxy=f"http://{cls.trap.host}",
                                    no_proxy="127.0.0.1,localhost")
            cls.gw.write_config()
            cls.gw.restart()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if getattr(cls, "trap", None):
                cls.trap.stop()
        finally:
            super().tearDownClass()

    def assert_ready(self, r, digest):
        self.assertIn(r.status, (200, 202), r.body)
        self.assertEqual(r.json["digest"], digest)
        if r.status == 202:
            self.assertEqual(self.wait_done(r.json["id"])[-1]["status"], "READY")

    def test_url_reaches_registry_under_another_name(self):
        r = self.pull("mirror.gatewayd.invalid/test/busybox:latest", as_user=users.USER)
        self.assert_ready(r, self.digest)
        self.assertEqual(self.image("mirror.gatewayd.invalid/test/busybox:latest").json["digest"], self.digest)
        self.assertEqual(self.trap.connections, 0, "the made-up name was contacted")

    def test_sslcacert_tls_pull(self):
        # sslcacert is relative: resolved against the configuration file's directory.
        r = self.pull(f"{self.tls.host}/test/other:v1", as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        if r.status == 202:
            self.assertEqual(self.wait_done(r.json["id"])[-1]["status"], "READY")
        self.assertEqual(self.trap.connections, 0)

    def test_tls_without_sslcacert_fails_clearly(self):
        r = self.pull(f"localhost:{self.tls.port}/test/busybox:latest", as_user=users.USER)
        self.assertError(r, 503, "Unavailable")
        msg = r.json["error"]["message"]
        self.assertIn("TLS error", msg)
        self.assertIn("certificate", msg)
        self.assertEqual(self.trap.connections, 0)

    def test_authentication_none_sends_no_credentials(self):
        # The credentials are right (the same registry under its other name takes them): the
        # pull fails only because they are not sent.
        r = self.pull(f"localhost:{self.private.port}/team/secret:1", as_user=users.USER,
                      credentials={"username": "alice", "password": "s3cret"})
        self.assertError(r, 403, "AccessDenied")
        self.assertIn("authentication required", r.json["error"]["message"])
        self.assertIn('authentication "none"', r.json["error"]["message"])

    def test_missing_sslcacert_refuses_start(self):
        config = dict(self.config, Locations={"reg.example.org": {"sslcacert": "missing-ca.pem"}},
                      DefaultImageLocation="reg.example.org")
        gw = Gatewayd(bus=self.bus, config=config)
        try:
            gw.write_config()
            os.makedirs(gw.state_dir, exist_ok=True)
            os.makedirs(gw.runtime_dir, exist_ok=True)
            try:
                p = subprocess.run(gw.argv(), capture_output=True, text=True, timeout=10, env=self.bus.env())
            except subprocess.TimeoutExpired:
                self.fail("gatewayd started without its sslcacert file")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("Locations.reg.example.org.sslcacert", p.stderr)
            self.assertIn(os.path.join(os.path.dirname(gw.config_path), "missing-ca.pem"), p.stderr)
        finally:
            gw.stop()


class WorkerPathPull(ImageStack):
    """"WorkerPath" names the gateway-worker for pulls too, not only for jobs: a wrapper that
    records its verb and runs the real worker does the pull."""

    @classmethod
    def setUpClass(cls):
        cls.wrap_tmp = TempDir(prefix="gatewayd-workerpath-")
        os.chmod(cls.wrap_tmp.path, 0o755)
        cls.invocations = os.path.join(cls.wrap_tmp.path, "invocations")
        real = os.path.join(build_dir(), "src", "worker", "gateway-worker")
        wrapper = os.path.join(cls.wrap_tmp.path, "gateway-worker")
        with open(wrapper, "w") as f:
            f.write(f'#!/bin/sh\necho "$1" >> {cls.invocations}\nexec {real} "$@"\n')
        os.chmod(wrapper, 0o755)
        cls.extra_config = {"WorkerPath": wrapper}
        try:
            super().setUpClass()
        except BaseException:
            cls.wrap_tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.wrap_tmp.cleanup()

    def test_pull_uses_worker_path(self):
        r = self.pull(f"{self.registry.host}/test/other:v1", as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        if r.status == 202:
            self.assertEqual(self.wait_done(r.json["id"])[-1]["status"], "READY")
        with open(self.invocations) as f:
            self.assertIn("pull", f.read().split())
