"""A lab member's browser console (issue 12): a real VNC server (TigerVNC's Xvnc from Debian's
tigervnc-standalone-server, copied with its libraries into an OCI image) runs as a lab member in
the job sandbox; a real gateway-proxy serves Debian's noVNC for its "vnc" port and bridges noVNC's
WebSocket to it; Debian's chromium, headless, driven through puppeteer-core
(tests/integration/browser/novnc-console.js), logs in with the instance's token and waits until
noVNC says it is connected and the framebuffer holds pixels. An expired token (signed with
gatewayd's own key) and a forged one are refused: 401, and no console in the page."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import images, procs
from harness.procs import source_dir
from harness.proxy import WithProxy
from test_labs import InstancesBase

PUPPETEER = os.path.join(source_dir(), "build-tools", "puppeteer", "node_modules")
DRIVER = os.path.join(source_dir(), "tests", "integration", "browser", "novnc-console.js")
CHROMIUM = "/usr/bin/chromium"
XVNC = "/usr/bin/Xvnc"
NOVNC = "/usr/share/novnc"

# -retro: the X server's classic root weave instead of a black root window, so that the
# framebuffer noVNC draws is visibly not blank without any X client in the image.
VNC_CMD = ["/usr/bin/Xvnc", ":1", "-rfbport", "5900", "-SecurityTypes", "None", "-geometry", "640x480",
           "-depth", "24", "-retro", "-nolisten", "unix", "-nolisten", "tcp"]


def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def vnc_image():
    """Busybox's sh (the X server runs xkbcomp through /bin/sh -c), Xvnc and xkbcomp with their
    libraries, and the XKB data: about 30 MB, no package manager."""
    layer = images.Layer().busybox(("sh",))
    layer.host_binary(XVNC).host_binary("/usr/bin/xkbcomp").host_tree("/usr/share/X11/xkb")
    return images.Image([(layer, "gzip")])


def missing_tools():
    missing = [p for p in (CHROMIUM, XVNC, "/usr/bin/xkbcomp", os.path.join(NOVNC, "vnc.html"),
                           os.path.join(PUPPETEER, "puppeteer-core")) if not os.path.exists(p)]
    if not shutil.which("node"):
        missing.append("node")
    return missing


@unittest.skipIf(missing_tools(), f"needs {missing_tools()} (scripts/install-deps)")
class LabBrowser(WithProxy, InstancesBase):
    @classmethod
    def setUpClass(cls):
        cls.extra_config = {"LabInstancesPerUser": 2}
        super().setUpClass()
        try:
            images.push_image(cls.registry, "labs/vnc", "1", vnc_image())
            cls.desktop = cls._put_lab(cls, "desktop", [
                {"name": "desk", "image": f"{cls.registry.host}/labs/vnc:1", "command": VNC_CMD,
                 "ports": [{"port": 5900, "kind": "vnc"}]}])
            cls.start_proxy(f"--novnc-dir={NOVNC}")
        except BaseException:
            cls.tearDownClass()
            raise

    def browse(self, visits, timeout_ms=60000):
        """Runs the driver (one chromium for all visits); returns its results."""
        with tempfile.TemporaryDirectory(prefix="gatewayd-browser-") as home:
            env = dict(os.environ, NODE_PATH=PUPPETEER, HOME=home, XDG_CONFIG_HOME=home, XDG_CACHE_HOME=home)
            r = subprocess.run(["node", DRIVER, json.dumps({"visits": visits, "timeout": timeout_ms, "chromium": CHROMIUM})],
                               capture_output=True, text=True, env=env, timeout=timeout_ms / 1000 * len(visits) + 60)
        self.assertEqual(r.returncode, 0, r.stderr[-4000:])
        self.browser_log = r.stderr
        return json.loads(r.stdout)

    def await_vnc_listening(self, rec):
        """RUNNING means the member's sandbox runs, not that Xvnc listens yet (it runs xkbcomp
        first; seconds on a loaded machine). noVNC connects once and then shows an error, so the
        browser is sent only once the port accepts, as test_labs waits for its web members."""
        netns, addr = rec["networkNamespace"], rec["members"][0]["address"]
        probe = ["nsenter", f"--net={netns}", "/usr/bin/python3", "-c",
                 "import socket, sys; socket.create_connection((sys.argv[1], 5900), 2).close()", addr]
        procs.wait_for(lambda: subprocess.run(probe, capture_output=True, timeout=20).returncode == 0,
                       timeout=60, what="Xvnc listening in the instance")

    def visit_log(self, index):
        """The driver's stderr for one visit (it starts each with a "visit N:" line)."""
        log = getattr(self, "browser_log", "")
        start = log.find(f"visit {index}:")
        end = log.find(f"visit {index + 1}:")
        return log[start:end if end >= 0 else None][-3000:]

    def url(self, token, member="desk", path="/"):
        return f"http://127.0.0.1:{self.proxy_port}/{token}/{member}{path}"

    def expired_like(self, token):
        """The same claims with exp (and iat) in the past, signed with gatewayd's own key: a token
        that was genuine and has expired, without waiting for it."""
        with open(os.path.join(self.gw.state_dir, "lab-token.key"), "rb") as f:
            key = f.read()
        h, c, _ = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)))
        claims["iat"], claims["exp"] = int(time.time()) - 700, int(time.time()) - 100
        c = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{h}.{c}." + _b64(hmac.new(key, f"{h}.{c}".encode(), hashlib.sha256).digest())

    def test_console_connects_and_bad_tokens_get_none(self):
        inst = self.start(self.desktop)
        self.await_vnc_listening(self.await_state(inst["id"], ("RUNNING",)))
        token = inst["access"]["token"]
        self.assertEqual(inst["access"]["members"]["desk"], f"/{token}/desk/")
        h, c, sig = token.split(".")
        forged = f"{h}.{c}.{_b64(hmac.new(os.urandom(32), f'{h}.{c}'.encode(), hashlib.sha256).digest())}"
        expired = self.expired_like(token)
        console, *refused = self.browse([
            {"url": self.url(token), "expect": "console"},
            {"url": self.url(expired), "expect": "refused"},
            {"url": self.url(forged), "expect": "refused"},
            # the console page of a good token pointed at a bridge with the expired one
            {"url": self.url(token, path=f"/vnc.html?autoconnect=true&path={expired}/desk/websockify"),
             "expect": "fails"},
        ])
        self.assertIsNone(console["error"], self.visit_log(0))
        self.assertEqual(console["status"], 200)
        self.assertIn(f"/{token}/desk/vnc.html?", console["url"])
        self.assertTrue(console["connected"], console)
        self.assertIn("Connected", console["statusText"])
        self.assertEqual(console["websockets"], [101])
        fb = console["canvas"]
        self.assertEqual((fb["width"], fb["height"]), (640, 480))
        self.assertGreater(fb["nonblack"], 0)
        self.assertGreater(fb["colors"], 1)
        for what, r in zip(("expired", "forged"), refused):
            with self.subTest(what):
                self.assertEqual(r["status"], 401, r)
                self.assertFalse(r["connected"])
                self.assertIsNone(r["canvas"])
                self.assertEqual(r["websockets"], [])
        bridge = refused[2]
        self.assertEqual(bridge["status"], 200)
        self.assertIsNone(bridge["error"], f"{bridge}\n{self.visit_log(3)}")
        self.assertTrue(bridge["failed"], bridge)
        self.assertFalse(bridge["connected"], bridge)
        self.assertIsNone(bridge["canvas"])
        self.assertNotIn(101, bridge["websockets"])
