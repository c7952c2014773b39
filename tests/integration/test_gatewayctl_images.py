"""gatewayctl's image verbs (pull, images, image show, rmi, image expire) against a real
docker-registry, gatewayd on a private system bus and polkitd: the pull follows the image
object's signals to READY or FAILURE, progress output on a pipe and on a terminal, tables,
--json, short IDs, private pulls with a credentials file, and polkit refusals."""
import json
import os
import pty
import re
import select
import signal
import subprocess
import tempfile

from harness import images, users
from harness.gatewayd import check_sanitizer_output, gatewayctl_binary
from harness.registry import Proxy
from test_images import ImageStack, location

PHASES = ["PENDING", "PULLING", "CONVERSION", "TRANSFER", "READY"]


class CtlImages(ImageStack):
    def ctl(self, *args, as_user=None, timeout=120):
        """gatewayctl with stdin from a pipe (never the runner's terminal: no polkit agent)."""
        p = self.gw.gatewayctl(*args, as_user=as_user, timeout=timeout, input="")
        check_sanitizer_output(p.stderr)
        return p

    def assertOk(self, p):
        self.assertEqual(p.returncode, 0, f"stdout: {p.stdout}\nstderr: {p.stderr}")

    def assertFails(self, p, *fragments):
        self.assertEqual(p.returncode, 1, f"stdout: {p.stdout}\nstderr: {p.stderr}")
        for f in fragments:
            self.assertIn(f.lower(), p.stderr.lower())
        return p.stderr

    def push_unique(self, repo, size=64 * 1024, compression="gzip"):
        """A new image (new digest) so that a pull is seen from its start."""
        layer = images.Layer().busybox().file("data/unique.bin", os.urandom(size))
        tag = os.urandom(4).hex()
        digest, _ = images.push_image(self.registry, repo, tag, images.Image([(layer, compression)]))
        return f"{self.registry.host}/{repo}:{tag}", digest.split(":")[1]


class Pull(CtlImages):
    def test_pull_to_ready_prints_id(self):
        ref, image_id = self.push_unique("ctl/ready")
        p = self.ctl("pull", ref, as_user=users.USER)
        self.assertOk(p)
        self.assertEqual(p.stdout, image_id + "\n")
        last = p.stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith("READY"), p.stderr)
        self.assertIn("100%", last)
        self.assertRegex(last, r"squashfs \d")
        # What the daemon says about it agrees.
        rec = self.image(image_id).json
        self.assertEqual(rec["status"], "READY")

        # Again within PullUpdateTimeout: answered from the record at once, still READY.
        p = self.ctl("pull", ref, "--quiet", as_user=users.OTHER)
        self.assertOk(p)
        self.assertEqual(p.stdout, image_id + "\n")
        self.assertEqual(p.stderr, "")

        p = self.ctl("pull", ref, "--json=short", "--force", as_user=users.USER)
        self.assertOk(p)
        j = json.loads(p.stdout)
        self.assertEqual(j["id"], image_id)
        self.assertEqual(j["status"], "READY")
        self.assertGreater(j["size"], 0)

    def test_unknown_tag_fails_with_daemons_message(self):
        ref = f"{self.registry.host}/test/busybox:nosuchtag"
        p = self.ctl("pull", ref, as_user=users.USER)
        err = self.assertFails(p, f"Failed to pull '{ref}'", "nosuchtag")
        self.assertEqual(p.stdout, "")
        # The message is gatewayd's (the same as over HTTP), not a generic one.
        http = self.pull(ref, as_user=users.USER)
        self.assertIn(http.json["error"]["message"], err)
        self.assertServing()

    def test_failure_after_start_exits_1_with_status_message(self):
        """The registry dies after PullImage() answered: the image goes to FAILURE, and
        gatewayctl (which only watches signals by then) reports the StatusMessage."""
        layer = images.Layer().busybox().file("data/random.bin", os.urandom(2 * 1024 * 1024))
        images.push_image(self.registry, "ctl/dies", "1", images.Image([(layer, "none")]))
        proxy = Proxy(self.registry.port, rate=256 * 1024)
        self.addCleanup(proxy.stop)
        self.gw.config["Locations"][proxy.host] = location(proxy.host)
        self.gw.write_config()
        self.gw.restart()
        ref = f"{proxy.host}/ctl/dies:1"
        proc = subprocess.Popen([gatewayctl_binary(), "pull", ref], env=self.gw.bus.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # Wait for the first progress line: the pull is under way and watched.
            first = proc.stderr.readline()
            self.assertTrue(first.startswith("PULLING"), first)
            self.registry.kill()
            self.addCleanup(self.registry.start, self.registry.port)
            out, rest = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        err = first + rest
        check_sanitizer_output(err)
        self.assertEqual(proc.returncode, 1, err)
        self.assertEqual(out, "")
        self.assertIn("FAILURE", err)
        msg = re.search(r"Failed to pull '[^']*': (.*)", err)
        self.assertTrue(msg, err)
        image_id = self.gw.http("GET", "/v1/images").json["images"]
        rec = [i for i in image_id if i["reference"] == ref][0]
        self.assertEqual(rec["status"], "FAILURE")
        self.assertEqual(msg.group(1), rec["message"])

    def test_bad_pull_command_lines(self):
        with tempfile.TemporaryDirectory() as d:
            def creds(text):
                path = os.path.join(d, f"c{len(os.listdir(d))}.json")
                with open(path, "w") as f:
                    f.write(text)
                return path
            cases = [
                (["pull", "x", "--credentials-file=/nonexistent/c.json"], "Failed to read credentials file"),
                (["pull", "x", "--credentials-file", creds("{")], "is not valid JSON"),
                (["pull", "x", "--credentials-file", creds("[]")], "must hold a JSON object"),
                (["pull", "x", "--credentials-file", creds('{"username":"a","password":"b","x":1}')], "unknown key 'x'"),
                (["pull", "x", "--credentials-file", creds('{"password":"b"}')], '"username" must be'),
                (["pull", "x", "--credentials-file", creds('{"username":"a"}')], '"password" must be'),
                (["pull", "x", "--credentials-file="], "needs a path"),
                (["pull", "x", "--platform="], "needs a platform name"),
                (["pull"], "Too few arguments"),
                (["pull", "a", "b"], "Too many arguments"),
                (["pull", ""], "must not be empty"),
                (["images", "--force"], "--force does not apply to 'images'"),
                (["image", "show"], "Too few arguments"),
                (["rmi"], "Too few arguments"),
                (["image", "frobnicate"], "'image' takes one of: show, expire"),
            ]
            for argv, fragment in cases:
                with self.subTest(argv=argv):
                    self.assertFails(self.ctl(*argv), fragment)
        # The daemon's own validation comes through too.
        self.assertFails(self.ctl("pull", "busybox", "--platform=nowhere"), "platform")

    def test_private_pull_with_credentials_file(self):
        ref = f"{self.private.host}/team/secret:1"
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            wrong = os.path.join(d, "wrong.json")
            with open(wrong, "w") as f:
                json.dump({"username": "alice", "password": "nope"}, f)
            os.chmod(wrong, 0o644)
            self.assertFails(self.ctl("pull", ref, f"--credentials-file={wrong}", as_user=users.USER),
                             f"Failed to pull '{ref}'")
            # From standard input, as the user.
            p = self.gw.gatewayctl("pull", ref, "--credentials-file=-", "--json=short", as_user=users.USER,
                                   input=json.dumps({"username": "alice", "password": "s3cret"}), timeout=120)
            check_sanitizer_output(p.stderr)
            self.assertOk(p)
        rec = json.loads(p.stdout)
        self.assertTrue(rec["private"])
        self.assertEqual(rec["status"], "READY")
        self.assertIn(rec["id"][:12], self.ctl("images", as_user=users.USER).stdout)
        self.assertNotIn(rec["id"][:12], self.ctl("images", as_user=users.OTHER).stdout)
        self.assertFails(self.ctl("image", "show", rec["id"], as_user=users.OTHER), "No image")


class Progress(CtlImages):
    """A pull slow enough (rate-limited proxy) to be watched from its start."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.proxy = Proxy(cls.registry.port, rate=1024 * 1024)
            cls.gw.config["Locations"][cls.proxy.host] = location(cls.proxy.host)
            cls.gw.write_config()
            cls.gw.restart()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            if getattr(cls, "proxy", None):
                cls.proxy.stop()
        finally:
            super().tearDownClass()

    def slow_ref(self, repo):
        ref, image_id = self.push_unique(repo, size=2 * 1024 * 1024, compression="none")
        return ref.replace(self.registry.host, self.proxy.host), image_id

    def test_plain_progress_lines_show_phases_in_order(self):
        ref, image_id = self.slow_ref("ctl/plain")
        p = self.ctl("pull", ref, as_user=users.USER)
        self.assertOk(p)
        self.assertEqual(p.stdout, image_id + "\n")
        lines = p.stderr.splitlines()
        self.assertNotIn("\r", p.stderr)
        self.assertNotIn("\x1b", p.stderr)
        statuses = [line.split()[0] for line in lines]
        phases = [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
        self.assertEqual(phases, sorted(phases, key=PHASES.index), p.stderr)
        self.assertEqual(len(phases), len(set(phases)), f"no phase comes back: {p.stderr}")
        for phase in ("PULLING", "CONVERSION", "READY"):
            self.assertIn(phase, phases, p.stderr)
        # While downloading, bytes with units, layers and a percentage, growing.
        pulling = [line for line in lines if line.startswith("PULLING")]
        self.assertTrue(any(re.search(r"\d+%  [\d.]+[BKMG]/[\d.]+[KMG]  layers \d+/1", line) for line in pulling),
                        p.stderr)
        percents = [int(re.search(r"(\d+)%", line).group(1)) for line in lines]
        self.assertEqual(percents, sorted(percents), p.stderr)
        self.assertGreater(len(pulling), 1, f"progress shown during the download: {p.stderr}")
        self.assertTrue(lines[-1].startswith("READY") and "100%" in lines[-1], p.stderr)

    def test_interrupt_stops_following_not_the_pull(self):
        ref, image_id = self.slow_ref("ctl/sigint")
        proc = subprocess.Popen([gatewayctl_binary(), "pull", ref], env=self.gw.bus.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = proc.stderr.readline()
            self.assertTrue(first.startswith("PULLING"), first)
            proc.send_signal(signal.SIGINT)
            out, rest = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        check_sanitizer_output(rest)
        self.assertEqual(proc.returncode, 1, first + rest)
        self.assertEqual(out, "")
        self.assertIn(f"Interrupted. The pull goes on in gatewayd; 'gatewayctl image show {image_id}'", rest)
        # It does go on: the daemon's progress stream ends with READY.
        self.assertEqual(self.wait_done(image_id)[-1]["status"], "READY")

    def test_terminal_progress_bar_redraws_in_place(self):
        ref, image_id = self.slow_ref("ctl/tty")
        master, slave = pty.openpty()
        env = self.gw.bus.env()
        env["COLUMNS"] = "100"
        env["TERM"] = "xterm"
        proc = subprocess.Popen([gatewayctl_binary(), "pull", ref], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        tty = b""
        try:
            while True:
                r, _, _ = select.select([master], [], [], 120)
                if not r:
                    break
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not chunk:
                    break
                tty += chunk
            out = proc.stdout.read().decode()
            proc.wait(30)
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        text = tty.decode(errors="replace")
        check_sanitizer_output(text)
        self.assertEqual(proc.returncode, 0, text)
        self.assertEqual(out, image_id + "\n")
        frames = [f.replace("\x1b[K", "").strip("\r\n") for f in text.split("\r") if f.strip("\r\n")]
        self.assertGreater(len(frames), 2, text)
        for f in frames:
            self.assertLess(len(f), 100, f"fits the terminal: {f!r}")
        self.assertTrue(any(re.match(r"PULLING +\[#*\.+\] +\d+%", f) for f in frames), text)
        self.assertRegex(frames[-1], r"^READY +\[#+\] +100%")
        self.assertTrue(text.endswith("\n"), "the last frame stays, followed by a newline")


class ListShowRemove(CtlImages):
    def pulled(self, as_user=users.USER):
        ref, image_id = self.push_unique("ctl/list")
        self.assertOk(self.ctl("pull", "-q", ref, as_user=as_user))
        return ref, image_id

    def test_images_table_and_json(self):
        ref, image_id = self.pulled()
        p = self.ctl("images", as_user=users.OTHER)
        self.assertOk(p)
        lines = p.stdout.splitlines()
        self.assertRegex(lines[0], r"^ID +REFERENCE +STATUS +SIZE +PLATFORM$")
        row = [line for line in lines if line.startswith(image_id[:12] + " ")]
        self.assertEqual(len(row), 1, p.stdout)
        cols = row[0].split()
        self.assertEqual(cols[1:3], [ref, "READY"])
        self.assertRegex(cols[3], r"^[\d.]+[KM]$")
        self.assertRegex(lines[-1], r"^\d+ images? listed\.$")

        p = self.ctl("images", "--no-legend", as_user=users.OTHER)
        self.assertFalse(p.stdout.startswith("ID"))
        self.assertNotIn("listed", p.stdout)

        p = self.ctl("images", "--json=short", as_user=users.OTHER)
        self.assertOk(p)
        recs = json.loads(p.stdout)
        mine = [r for r in recs if r["id"] == image_id]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["reference"], ref)
        for key in ("digest", "status", "size", "platform", "private"):
            self.assertEqual(mine[0][key], self.image(image_id).json[key], key)

    def test_image_show_by_id_short_id_and_reference(self):
        ref, image_id = self.pulled()
        for name in (image_id, image_id[:12], ref, "sha256:" + image_id):
            with self.subTest(name=name):
                p = self.ctl("image", "show", name, as_user=users.OTHER)
                self.assertOk(p)
                fields = dict(re.match(r"^ *([^:]+): (.*)$", line).groups() for line in p.stdout.splitlines())
                self.assertEqual(fields["Id"], image_id)
                self.assertEqual(fields["Digest"], "sha256:" + image_id)
                self.assertEqual(fields["Reference"], ref)
                self.assertEqual(fields["Status"], "READY")
                self.assertEqual(fields["Private"], "no")
                self.assertRegex(fields["Size"], r"^[\d.]+[KM]$")
                self.assertNotIn("Progress", fields)
        p = self.ctl("image", "show", image_id[:12], "--json")
        self.assertOk(p)
        self.assertEqual(json.loads(p.stdout)["id"], image_id)
        self.assertFails(self.ctl("image", "show", "0" * 64), "Failed to get image", "No image")
        self.assertFails(self.ctl("image", "show", "nosuch/thing:1"), "No image")

    def test_ambiguous_short_id(self):
        # Two images whose ids start with the same digit: made until their manifests agree.
        base = images.Layer().busybox().tar()
        made = {}
        while True:
            extra = images.Layer().file("data/n", os.urandom(16)).tar()
            img = images.Image([(base, "gzip"), (extra, "none")])
            body, _, _ = img.build()
            first = images.sha256(body)[7]
            if first in made:
                break
            made[first] = img
        ids = []
        for i in (made[first], img):
            tag = os.urandom(4).hex()
            digest, _ = images.push_image(self.registry, "ctl/ambiguous", tag, i)
            self.assertOk(self.ctl("pull", "-q", f"{self.registry.host}/ctl/ambiguous:{tag}"))
            ids.append(digest.split(":")[1])
        self.assertEqual(ids[0][0], ids[1][0])
        common = os.path.commonprefix(ids)
        self.assertFails(self.ctl("image", "show", common), "ambiguous", "give more digits")
        self.assertFails(self.ctl("rmi", common), "ambiguous")
        # One more digit tells them apart.
        p = self.ctl("image", "show", ids[1][:len(common) + 1], "--json")
        self.assertOk(p)
        self.assertEqual(json.loads(p.stdout)["id"], ids[1])

    def test_rmi_needs_admin(self):
        ref, image_id = self.pulled()
        err = self.assertFails(self.ctl("rmi", image_id[:12], as_user=users.USER),
                               f"Failed to remove image '{image_id[:12]}'")
        self.assertIn("access denied", err.lower())
        self.assertEqual(self.image(image_id).json["status"], "READY", "still there")

        # Every name is tried; one failure makes the exit status 1.
        p = self.ctl("rmi", "nosuch/thing:1", image_id[:12], as_user=users.ADMIN)
        self.assertFails(p, "Failed to remove image 'nosuch/thing:1'")
        self.assertError(self.image(image_id), 404, "NotFound")
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "images", image_id + ".squashfs")))
        self.assertNotIn(image_id[:12], self.ctl("images").stdout)
        self.assertFails(self.ctl("rmi", ref), "No image")

    def test_image_expire(self):
        ref, image_id = self.pulled()
        self.assertFails(self.ctl("image", "expire", ref, as_user=users.USER), "access denied")
        p = self.ctl("image", "expire", ref)
        self.assertOk(p)
        self.assertEqual(p.stdout, "")
        self.assertIn("EXPIRED", self.ctl("image", "show", image_id).stdout)
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "images", image_id + ".squashfs")))
        # Pulling again brings it back.
        p = self.ctl("pull", ref, as_user=users.USER)
        self.assertOk(p)
        self.assertEqual(self.image(image_id).json["status"], "READY")
