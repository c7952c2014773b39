"""The platforms surfaces (issue 9 §3): GET /v1/platforms[/{name}], node drain/resume over HTTP
and D-Bus (polkit org.gatewayd.manage-platforms), the platform objects on the bus and
gatewayctl's platforms / platform show / nodes / node drain|resume, against a real gatewayd with
two local platforms and a remote (SSH) one whose hosts nobody listens on."""
import json
import os
import re
import subprocess
import unittest

import test_jobs
import test_remote
from harness import images, procs, users
from harness.gatewayd import check_sanitizer_output
from harness.procs import TempDir
from harness.stack import StackTestCase

PLATFORM_PATH = "/org/gatewayd/Gateway1/platform/"
PLATFORM_IFACE = "org.gatewayd.Gateway1.Platform"
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
NODE_STATES = {"connecting", "up", "unreachable", "refused", "draining"}
# Port 1 on loopback: nobody listens there, so the remote platform's nodes are unreachable.
CLUSTER_HOSTS = ["127.0.0.1:1", "127.0.0.1:2"]
MAX_CLUSTERS = 3


def bus_path(name):
    """sd_bus_path_encode() of a platform name made of [a-z]."""
    return PLATFORM_PATH + name


class Platforms(StackTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir(prefix="gatewayd-platforms-")
        try:
            cls.scratch_dir = os.path.join(cls.tmp.path, "scratch-images")
            os.makedirs(cls.scratch_dir)
            key = os.path.join(cls.tmp.path, "id_ed25519")
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True,
                           capture_output=True)
            known = os.path.join(cls.tmp.path, "known_hosts")
            open(known, "w").close()
            cls.config = {
                "MaxClusters": MAX_CLUSTERS,
                "Platforms": {
                    "here": {"accesstype": "local"},
                    "scratch": {"accesstype": "local", "local": {"imageDir": cls.scratch_dir}},
                    "cluster": {"accesstype": "remote", "host": CLUSTER_HOSTS,
                                "ssh": {"username": "gwnode", "key": key, "knownHosts": known,
                                        "imageDir": "/var/lib/gwnode/images"}},
                },
                "DefaultPlatform": "here",
            }
            super().setUpClass()
        except BaseException:
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.tmp.cleanup()

    def get(self, path, as_user=users.USER):
        r = self.gw.http("GET", path, as_user=as_user)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def assertLocalNode(self, nodes):
        self.assertEqual(len(nodes), 1, nodes)
        n = nodes[0]
        self.assertEqual(n["name"], os.uname().nodename)
        self.assertEqual(n["state"], "up")
        self.assertEqual(n["slots"], MAX_CLUSTERS)
        self.assertEqual(n["running"], 0)
        self.assertRegex(n["lastContact"], ISO)

    def assertCluster(self, p):
        """The remote platform: listed whatever its implementation can do, its hosts named; if
        it cannot run jobs, it says why and has no nodes; if it can, its nodes are the
        configured hosts in a documented state (none of them can be up)."""
        self.assertEqual((p["kind"], p["accesstype"], p["default"]), ("ssh", "remote", False))
        self.assertEqual(p["hosts"], CLUSTER_HOSTS)
        self.assertEqual(p["nodeImageDir"], "/var/lib/gwnode/images")
        self.assertIsInstance(p["nodes"], list)
        if not p["runsJobs"]:
            self.assertIn("not implemented", p["unsupported"])
            self.assertEqual(p["nodes"], [])
        for n in p["nodes"]:
            self.assertIn(n["name"], CLUSTER_HOSTS)
            self.assertIn(n["state"], NODE_STATES - {"up"})

    # -- HTTP ------------------------------------------------------------------------------------

    def test_list(self):
        l = self.get("/v1/platforms")["platforms"]
        self.assertEqual([p["name"] for p in l], ["cluster", "here", "scratch"])
        by = {p["name"]: p for p in l}
        here, scratch = by["here"], by["scratch"]
        self.assertEqual((here["kind"], here["accesstype"], here["default"]), ("local", "local", True))
        self.assertEqual((here["runsJobs"], here["holdsImages"]), (True, True))
        self.assertNotIn("unsupported", here)
        self.assertEqual(here["imageDir"], os.path.join(self.gw.state_dir, "images"))
        self.assertLocalNode(here["nodes"])
        self.assertEqual((scratch["kind"], scratch["default"], scratch["runsJobs"]), ("local", False, True))
        self.assertEqual(scratch["imageDir"], self.scratch_dir)
        self.assertLocalNode(scratch["nodes"])
        self.assertCluster(by["cluster"])

    def test_show(self):
        listed = {p["name"]: p for p in self.get("/v1/platforms")["platforms"]}
        for name in ("here", "scratch", "cluster"):
            with self.subTest(platform=name):
                p = self.get(f"/v1/platforms/{name}", as_user=users.OTHER)
                for a in (p, listed[name]):
                    for n in a["nodes"]:
                        n.pop("lastContact", None)
                self.assertEqual(p, listed[name])
        self.assertLocalNode(self.get("/v1/platforms/here")["nodes"])

    def test_show_unknown(self):
        for path in ("/v1/platforms/nosuch", "/v1/platforms/HERE", "/v1/platforms/here%00"):
            with self.subTest(path=path):
                self.assertError(self.gw.http("GET", path, as_user=users.USER), 404, "NotFound", "No platform")
        self.assertServing()

    def drain(self, platform, node, verb="drain", as_user=users.ADMIN):
        return self.gw.http("POST", f"/v1/platforms/{platform}/nodes/{node}/{verb}", as_user=as_user)

    def test_drain_local_refused(self):
        host = os.uname().nodename
        for verb in ("drain", "resume"):
            for as_user in (users.ADMIN, "root"):
                with self.subTest(verb=verb, user=as_user):
                    r = self.drain("here", host, verb, as_user=as_user)
                    self.assertError(r, 409, "Conflict", "no nodes of its own")
                    self.assertIn("gateway host", r.json["error"]["message"])
        self.assertLocalNode(self.get("/v1/platforms/here")["nodes"])

    def test_drain_unknown(self):
        host = os.uname().nodename
        self.assertError(self.drain("nosuch", host), 404, "NotFound", "No platform 'nosuch'")
        self.assertError(self.drain("here", "no-such-node"), 404, "NotFound", "no node 'no-such-node'")
        self.assertError(self.drain("cluster", "127.0.0.1:99", "resume"), 404, "NotFound", "no node")
        self.assertServing()

    def test_drain_needs_authorization(self):
        host = os.uname().nodename
        for as_user in (users.USER, users.OTHER):
            for platform, node in (("here", host), ("nosuch", "x"), ("cluster", CLUSTER_HOSTS[0])):
                with self.subTest(user=as_user, platform=platform):
                    # Refused before anything is looked up, as every admin route.
                    self.assertError(self.drain(platform, node, as_user=as_user), 403, "AccessDenied")
                    self.assertError(self.drain(platform, node, "resume", as_user=as_user), 403, "AccessDenied")
        self.assertServing()

    def test_drain_ignores_body_and_other_methods(self):
        host = os.uname().nodename
        r = self.gw.http("GET", f"/v1/platforms/here/nodes/{host}/drain")
        self.assertEqual(r.status, 405, r.body)
        self.assertEqual(r.headers.get("allow"), "POST")
        r = self.gw.http("POST", "/v1/platforms/here")
        self.assertEqual(r.status, 405, r.body)
        self.assertError(self.gw.http("GET", f"/v1/platforms/here/nodes/{host}"), 404, "NotFound")

    # -- D-Bus -----------------------------------------------------------------------------------

    def test_bus_list_and_get(self):
        p, data = self.gw.call("ListPlatforms", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(data[0], [["cluster", "ssh", False, data[0][0][3], bus_path("cluster")],
                                   ["here", "local", True, True, bus_path("here")],
                                   ["scratch", "local", False, True, bus_path("scratch")]])
        p, data = self.gw.call("GetPlatform", "s", "here", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        rec = json.loads(data[0])
        self.assertEqual((rec["name"], rec["kind"], rec["default"]), ("here", "local", True))
        self.assertLocalNode(rec["nodes"])
        self.assertCluster(json.loads(self.gw.call("GetPlatform", "s", "cluster")[1][0]))

    def test_bus_unknown_platform(self):
        p, err = self.gw.gdbus_call("GetPlatform", "nosuch", as_user=users.USER)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NoSuchPlatform", p.stderr)
        p, err = self.gw.gdbus_call("DrainNode", "nosuch", "x")
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NoSuchPlatform", p.stderr)
        p, err = self.gw.gdbus_call("ResumeNode", "here", "no-such-node")
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.NoSuchNode", p.stderr)
        p = self.gw.busctl("get-property", "org.gatewayd.Gateway1", bus_path("nosuch"), PLATFORM_IFACE, "Name")
        self.assertNotEqual(p.returncode, 0)

    def test_bus_drain(self):
        host = os.uname().nodename
        for method in ("DrainNode", "ResumeNode"):
            with self.subTest(method=method):
                p, err = self.gw.gdbus_call(method, "here", host, as_user=users.ADMIN)
                self.assertEqual(err, "org.gatewayd.Gateway1.Error.Conflict", p.stderr)
                self.assertIn("no nodes of its own", p.stderr)
                p, err = self.gw.gdbus_call(method, "here", host, as_user=users.USER)
                self.assertEqual(err, "org.gatewayd.Gateway1.Error.AccessDenied", p.stderr)

    def test_bus_objects(self):
        def prop(name, prop, sig):
            p = self.gw.busctl("get-property", "org.gatewayd.Gateway1", bus_path(name), PLATFORM_IFACE, prop,
                               as_user=users.USER)
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout.strip()

        self.assertEqual(prop("here", "Name", "s"), 's "here"')
        self.assertEqual(prop("here", "Kind", "s"), 's "local"')
        self.assertEqual(prop("here", "AccessType", "s"), 's "local"')
        self.assertEqual(prop("here", "Default", "b"), "b true")
        self.assertEqual(prop("scratch", "Default", "b"), "b false")
        self.assertEqual(prop("here", "RunsJobs", "b"), "b true")
        self.assertEqual(prop("here", "Unsupported", "s"), 's ""')
        self.assertEqual(prop("scratch", "ImageDirectory", "s"), f's "{self.scratch_dir}"')
        self.assertEqual(prop("cluster", "Kind", "s"), 's "ssh"')
        if prop("cluster", "RunsJobs", "b") == "b false":
            self.assertIn("not implemented", prop("cluster", "Unsupported", "s"))

        p, data = self.gw.call("GetNodes", path=bus_path("here"), iface=PLATFORM_IFACE, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLocalNode(json.loads(data[0]))

        # Enumerated in the tree and by the ObjectManager.
        p = self.gw.busctl("tree", "--list", "org.gatewayd.Gateway1", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        for name in ("here", "scratch", "cluster"):
            self.assertIn(bus_path(name), p.stdout.split())
        p, data = self.gw.call("GetManagedObjects", iface="org.freedesktop.DBus.ObjectManager")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(PLATFORM_IFACE, data[0][bus_path("scratch")])

    # -- gatewayctl ------------------------------------------------------------------------------

    def ctl(self, *args, as_user=users.USER):
        p = self.gw.gatewayctl(*args, as_user=as_user, input="")
        check_sanitizer_output(p.stderr)
        return p

    def test_gatewayctl_platforms(self):
        p = self.ctl("platforms")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "KIND", "DEFAULT", "JOBS", "NODES"])
        rows = {l.split()[0]: l.split() for l in lines[1:4]}
        self.assertEqual(rows["here"], ["here", "local", "yes", "yes", "1", "up"])
        self.assertEqual(rows["scratch"], ["scratch", "local", "no", "yes", "1", "up"])
        self.assertEqual(rows["cluster"][:3], ["cluster", "ssh", "no"])
        self.assertIn("3 platforms listed.", p.stdout)

        p = self.ctl("platforms", "--json=short")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([x["name"] for x in json.loads(p.stdout)], ["cluster", "here", "scratch"])

    def test_gatewayctl_nodes(self):
        host = os.uname().nodename
        p = self.ctl("nodes", "here", "scratch")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["PLATFORM", "NODE", "STATE", "SLOTS", "RUNNING", "LAST", "CONTACT"])
        self.assertEqual(lines[1].split()[:5], ["here", host, "up", str(MAX_CLUSTERS), "0"])
        self.assertEqual(lines[2].split()[:5], ["scratch", host, "up", str(MAX_CLUSTERS), "0"])
        self.assertIn("2 nodes listed.", p.stdout)

        p = self.ctl("nodes", "--json=short")
        self.assertEqual(p.returncode, 0, p.stderr)
        nodes = json.loads(p.stdout)
        self.assertEqual([(n["platform"], n["name"]) for n in nodes if n["platform"] != "cluster"],
                         [("here", host), ("scratch", host)])

        p = self.ctl("nodes", "nosuch")
        self.assertEqual(p.returncode, 1)
        self.assertIn("No platform 'nosuch'", p.stderr)

    def test_gatewayctl_platform_show(self):
        p = self.ctl("platform", "show", "scratch")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^ *Kind: local$")
        self.assertRegex(p.stdout, r"(?m)^ *Default: no$")
        self.assertRegex(p.stdout, r"(?m)^ *Runs jobs: yes$")
        self.assertRegex(p.stdout, rf"(?m)^ *Image dir: {re.escape(self.scratch_dir)}$")
        self.assertRegex(p.stdout, rf"(?m)^{re.escape(os.uname().nodename)} +up +{MAX_CLUSTERS} +0 ")

        p = self.ctl("platform", "show", "cluster")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"(?m)^ *Hosts: 127\.0\.0\.1:1\n *127\.0\.0\.1:2$")

        p = self.ctl("platform", "show", "nosuch")
        self.assertEqual(p.returncode, 1)
        self.assertIn("No platform 'nosuch'", p.stderr)

    def test_gatewayctl_node_drain(self):
        host = os.uname().nodename
        p = self.ctl("node", "drain", "here", host, as_user="root")
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"Failed to drain node '{host}' of platform 'here'", p.stderr)
        self.assertIn("no nodes of its own", p.stderr)
        p = self.ctl("node", "resume", "here", host, as_user=users.USER)
        self.assertEqual(p.returncode, 1)
        self.assertIn("Failed to resume node", p.stderr)
        self.assertIn("denied", p.stderr.lower())
        p = self.ctl("node", "drain", "here")
        self.assertEqual(p.returncode, 1)
        self.assertIn("Too few arguments", p.stderr)


class RunningJobs(test_jobs.JobsBase):
    """The default configuration (one platform, "local"): its node counts the jobs whose workers
    it watches, from start to end."""
    max_clusters = 4

    def node(self):
        r = self.gw.http("GET", "/v1/platforms/local", as_user=users.OTHER)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(len(r.json["nodes"]), 1, r.body)
        return r.json["nodes"][0]

    def test_default_platform(self):
        r = self.gw.http("GET", "/v1/platforms", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([(p["name"], p["kind"], p["default"], p["runsJobs"]) for p in r.json["platforms"]],
                         [("local", "local", True, True)])

    def test_running_counted(self):
        self.assertEqual((self.node()["running"], self.node()["slots"]), (0, 4))
        jobs = [self.submit("sleep", params={"sleep": 60}).json["id"] for _ in range(2)]
        for j in jobs:
            self.cleanup_job(j)
            self.wait_log(j, "sleeping 60")
        self.assertEqual(self.node()["running"], 2)
        p = self.gw.gatewayctl("nodes", as_user=users.USER, input="")
        self.assertRegex(p.stdout, r"(?m)^local +\S+ +up +4 +2 ")

        self.gw.http("PUT", f"/v1/jobs/{jobs[0]}/cancel", as_user=users.USER)
        self.wait_status(jobs[0], test_jobs.TERMINAL)
        self.assertEqual(self.node()["running"], 1)
        self.gw.http("PUT", f"/v1/jobs/{jobs[1]}/cancel", as_user=users.USER)
        self.wait_status(jobs[1], test_jobs.TERMINAL)
        self.assertEqual(self.node()["running"], 0)


class ImagesPerPlatform(test_jobs.JobsBase):
    """Image records are per platform, as Shifter's are per system: the same image pulled for two
    platforms is two records (one id), each READY on its own; neither pull moves the other's
    record, removing one leaves the other (and the file they share) alone, and both come back
    after a restart. "here" (the default, where jobs run) and "there" are both local platforms
    with the same image directory, so that they share the squashfs file too."""
    extra_config = {"Platforms": {"here": {"accesstype": "local"}, "there": {"accesstype": "local"}},
                    "DefaultPlatform": "here"}

    def pull_ready(self, platform):
        r = self.gw.http("POST", "/v1/images/pull", {"reference": self.image_ref, "platform": platform},
                         as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        self.assertEqual(r.json["platform"], platform, r.body)
        procs.wait_for(lambda: [i["status"] for i in self.listed(platform)] == ["READY"],
                       timeout=60, what=f"the image to be READY on {platform}")
        return r.json["id"]

    def listed(self, platform=None):
        r = self.gw.http("GET", "/v1/images" + (f"?platform={platform}" if platform else ""), as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        return [i for i in r.json["images"] if i["reference"] == self.image_ref]

    def shifter_ids(self, system):
        r = self.gw.http("GET", f"/api/list/{system}/", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        return [i["id"] for i in r.json["list"]]

    def assertBothReady(self, image_id):
        for platform in ("here", "there"):
            got = [(i["id"], i["platform"], i["status"]) for i in self.listed(platform)]
            self.assertEqual(got, [(image_id, platform, "READY")], platform)
            r = self.gw.http("GET", f"/v1/images/{image_id}?platform={platform}", as_user=users.USER)
            self.assertEqual((r.status, r.json.get("platform"), r.json.get("status")), (200, platform, "READY"), r.body)
            self.assertEqual(self.shifter_ids(platform), [image_id], platform)
            r = self.gw.http("GET", f"/api/lookup/{platform}/docker/{self.image_ref}/", as_user=users.USER)
            self.assertEqual((r.status, r.json.get("system"), r.json.get("status")), (200, platform, "READY"), r.body)
        self.assertEqual(sorted((i["platform"], i["id"]) for i in self.listed()),
                         [("here", image_id), ("there", image_id)])
        # By id alone: the default platform's record.
        r = self.gw.http("GET", f"/v1/images/{image_id}", as_user=users.USER)
        self.assertEqual((r.status, r.json.get("platform")), (200, "here"), r.body)

    def pulls(self):
        return self.gw.stderr_text().count(f"Pulling {self.image_ref} ")

    def run_job_without_pull(self):
        before = self.pulls()
        job = self.submit("echo", data={"n": 1}).json["id"]
        self.assertEqual(self.wait_status(job, test_jobs.TERMINAL)["status"], "SUCCEEDED")
        self.assertEqual(self.pulls(), before, "the job on the default platform pulled its image again")

    def test_same_image_on_two_platforms(self):
        image_id = self.pull_ready("here")
        self.assertEqual(self.pull_ready("there"), image_id)
        self.assertBothReady(image_id)
        # The same image directory: the second platform's record uses the file converted already.
        self.assertEqual(self.gw.stderr_text().count(f"Image {image_id} ({self.image_ref}): CONVERSION"), 1)
        self.run_job_without_pull()
        # Pulling for one platform again does not move the record away from the other.
        self.pull_ready("here")
        self.assertBothReady(image_id)

        self.gw.restart()
        self.assertBothReady(image_id)
        self.run_job_without_pull()

        # The bus names the default platform's record by id, the other one with its platform.
        p, data = self.gw.call("GetImage", "s", image_id, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(data[0])["platform"], "here")
        p, data = self.gw.call("GetImageOn", "ss", "there", image_id, as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(data[0])["platform"], "there")
        p, data = self.gw.call("ListImages", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        paths = {rec[4]: rec[5] for rec in data[0] if rec[0] == image_id}
        self.assertEqual(paths, {"here": "/org/gatewayd/Gateway1/image/" + test_jobs.bus_path_encode(image_id),
                                 "there": "/org/gatewayd/Gateway1/image/" +
                                          test_jobs.bus_path_encode(image_id + "@there")})
        for platform, path in paths.items():
            p = self.gw.busctl("get-property", "org.gatewayd.Gateway1", path, "org.gatewayd.Gateway1.Image",
                               "Platform", as_user=users.USER)
            self.assertEqual(p.stdout.strip(), f's "{platform}"', p.stderr)
        p, err = self.gw.gdbus_call("ExpireImageOn", "nowhere", image_id)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.InvalidArgument", p.stderr)
        self.assertIn("platform", p.stderr)

        # Expiring "there"'s copy leaves "here"'s (and their file); a pull brings it back at once.
        p, _ = self.gw.call("ExpireImageOn", "ss", "there", image_id)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([i["status"] for i in self.listed("there")], ["EXPIRED"])
        self.assertEqual([i["status"] for i in self.listed("here")], ["READY"])
        self.run_job_without_pull()
        self.pull_ready("there")
        self.assertEqual(self.gw.stderr_text().count(f"Image {image_id} ({self.image_ref}): CONVERSION"), 1)

        # Removing "there"'s copy leaves "here"'s record and the file they share.
        r = self.gw.http("DELETE", f"/v1/images/{image_id}?platform=there", as_user=None)
        self.assertEqual(r.status, 204, r.body)
        self.assertEqual(self.listed("there"), [])
        self.assertEqual(self.shifter_ids("there"), [])
        self.assertEqual([i["status"] for i in self.listed("here")], ["READY"])
        squashfs = os.path.join(self.gw.state_dir, "images", image_id + ".squashfs")
        self.assertTrue(os.path.exists(squashfs), "the removal took the other platform's file")
        self.run_job_without_pull()
        self.gw.restart()
        self.assertEqual(self.listed("there"), [])
        self.assertEqual([i["status"] for i in self.listed("here")], ["READY"])
        self.run_job_without_pull()

    def test_gatewayctl_platform_option(self):
        image_id = self.pull_ready("here")
        self.assertEqual(self.pull_ready("there"), image_id)

        def ctl(*args, as_user=None):
            p = self.gw.gatewayctl(*args, as_user=as_user, input="")
            return p.returncode, p.stdout, p.stderr

        rc, out, err = ctl("image", "show", "--json", "--platform=there", image_id[:12], as_user=users.USER)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["platform"], "there")
        rc, out, err = ctl("image", "show", "--json", image_id, as_user=users.USER)
        self.assertEqual((rc, json.loads(out)["platform"]), (0, "here"), err)
        rc, _, err = ctl("image", "show", "--platform=nowhere", image_id, as_user=users.USER)
        self.assertNotEqual(rc, 0)
        self.assertIn("platform", err)
        # expire and remove act on the named platform's record only
        rc, _, err = ctl("image", "expire", "--platform=there", image_id)
        self.assertEqual(rc, 0, err)
        self.assertEqual([i["status"] for i in self.listed("there")], ["EXPIRED"])
        self.assertEqual([i["status"] for i in self.listed("here")], ["READY"])
        rc, _, err = ctl("rmi", "--platform=there", image_id)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.listed("there"), [])
        self.assertEqual([i["status"] for i in self.listed("here")], ["READY"])

    def test_unknown_platform_parameter(self):
        for path in ("/v1/images?platform=nowhere", "/v1/images/0123?platform=nowhere"):
            self.assertError(self.gw.http("GET", path, as_user=users.USER), 400, "InvalidArgument", "platform")


class ImagesConvertedOnce(test_jobs.JobsBase):
    """An image id is converted once, whatever the number of platforms that pull it: "here"
    writes to gatewayd's image directory, "there" (the default: jobs run there) to its own
    imageDir. A pull for one platform of an id being converted for the other waits for that
    conversion (and fails with it); one of an id READY for the other takes its files, as a file of
    its own (a hard link here) that the other's removal leaves alone."""
    extra_config = None

    @classmethod
    def setUpClass(cls):
        cls.there_tmp = TempDir(prefix="gatewayd-there-")
        cls.there_dir = os.path.join(cls.there_tmp.path, "images")
        cls.extra_config = {"Platforms": {"here": {"accesstype": "local"},
                                          "there": {"accesstype": "local", "local": {"imageDir": cls.there_dir}}},
                            "DefaultPlatform": "there"}
        try:
            super().setUpClass()
        except BaseException:
            cls.there_tmp.cleanup()
            raise
        # The slow path of JobsBase, fast enough for a whole image in a second or two, slow
        # enough that the second pull's resolve ends while the first one converts.
        if cls.skip_reason is None:
            cls.slow.rate = 512 << 10

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.there_tmp.cleanup()

    def push(self, name, image=None):
        # a layer of its own: one in the blob cache from another test would not be downloaded,
        # and the conversion this pull's followers wait for would be over in a moment
        layer = images.Layer().busybox().dir("etc").file(f"etc/{name}", name.encode())
        images.push_image(self.registry, name, "1.0", image or images.Image([(layer, "gzip")], entrypoint=["/bin/sh"],
                                                                            cmd=["-c", "echo hi"], labels={"test": name}))
        return f"{self.slow.host}/{name}:1.0"

    def pull(self, ref, platform, as_user=users.USER):
        r = self.gw.http("POST", "/v1/images/pull", {"reference": ref, "platform": platform}, as_user=as_user)
        self.assertIn(r.status, (200, 202), r.body)
        self.assertEqual(r.json["platform"], platform, r.body)
        return r.json["id"]

    def record(self, image_id, platform):
        r = self.gw.http("GET", f"/v1/images/{image_id}?platform={platform}", as_user=users.USER)
        return r.json if r.status == 200 else {}

    def wait_ended(self, image_id, platform):
        last = {}

        def ended():
            last["r"] = self.record(image_id, platform)
            return last["r"].get("status") in ("READY", "FAILURE")
        procs.wait_for(ended, timeout=60, what=f"the pull of {image_id} for {platform} to end")
        return last["r"]

    def conversions(self, image_id):
        """The worker's conversions of the image (its CONVERSION status, logged per record) and
        the full pulls gatewayd started for it."""
        log = self.gw.stderr_text()
        return (len(re.findall(rf"Image {image_id} \([^)]*\): CONVERSION", log)),
                log.count(f"Converting image {image_id} "))

    def worker_pulls(self):
        """gateway-worker pull processes started so far (resolves and conversions)."""
        return len(re.findall(r"Started worker \d+: \S+ pull$", self.gw.stderr_text(), re.M))

    def files(self, image_id):
        return (os.path.join(self.gw.state_dir, "images", image_id + ".squashfs"),
                os.path.join(self.there_dir, image_id + ".squashfs"))

    def assertOwnFiles(self, image_id):
        """Both platforms hold the image as files of their own names (one inode: a hard link)."""
        here, there = self.files(image_id)
        a, b = os.stat(here), os.stat(there)
        self.assertEqual((a.st_dev, a.st_ino), (b.st_dev, b.st_ino), "a hard link on one file system")
        for platform, path in (("here", here), ("there", there)):
            self.assertTrue(os.path.exists(path[:-len(".squashfs")] + ".meta.json"), platform)
            self.assertTrue(os.path.exists(path[:-len(".squashfs")] + ".meta"), f"{platform}: Shifter .meta")

    def run_job(self, ref, name):
        """A job on the default platform ("there") with the image, which is READY there: no pull."""
        svc = f"dedup-{name}-{os.getpid() % 10000}"
        r = self.gw.http("POST", "/v1/services", {"name": svc, "image": ref, "command": ["/bin/sh", "-c", test_jobs.ECHO]})
        self.assertEqual(r.status, 201, r.body)
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", {"data": {"n": 1}}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(self.wait_status(r.json["id"], test_jobs.TERMINAL)["status"], "SUCCEEDED")

    def test_concurrent_pulls_convert_once(self):
        ref = self.push("dedup-concurrent")
        image_id = self.pull(ref, "here")
        self.assertEqual(self.pull(ref, "there"), image_id)
        # While "there" waits for the conversion for "here", its record shows that pull's
        # progress (it used to stand at PULLING, 0 bytes, until the end).
        seen = []

        def there_progressed():
            r = self.record(image_id, "there")
            seen.append((r.get("status"), r.get("progress", {}).get("bytesDone", 0)))
            return seen[-1][0] in ("READY", "FAILURE") or seen[-1][1] > 0
        procs.wait_for(there_progressed, timeout=60, what="the waiting pull's progress")
        self.assertTrue(any(status in ("PULLING", "CONVERSION") and done > 0 for status, done in seen), seen)
        for platform in ("here", "there"):
            self.assertEqual(self.wait_ended(image_id, platform)["status"], "READY", platform)
        self.assertEqual(self.conversions(image_id), (1, 1), "one conversion for both platforms")
        self.assertIn(f"Image {image_id} ({ref}) for platform there: waiting for its conversion for platform here.",
                      self.gw.stderr_text())
        self.assertOwnFiles(image_id)
        self.run_job(ref, "concurrent")

    def test_sequential_pull_converts_nothing_and_removal_leaves_the_other(self):
        ref = self.push("dedup-sequential")
        image_id = self.pull(ref, "here")
        self.assertEqual(self.wait_ended(image_id, "here")["status"], "READY")
        self.assertEqual(self.pull(ref, "there"), image_id)
        self.assertEqual(self.wait_ended(image_id, "there")["status"], "READY")
        self.assertEqual(self.conversions(image_id), (1, 1), "the second platform's pull converted again")
        self.assertOwnFiles(image_id)
        here, there = self.files(image_id)

        # Removing "here"'s record takes its file; "there"'s stays and runs jobs.
        r = self.gw.http("DELETE", f"/v1/images/{image_id}?platform=here", as_user=None)
        self.assertEqual(r.status, 204, r.body)
        self.assertFalse(os.path.exists(here))
        self.assertTrue(os.path.exists(there))
        self.assertEqual(self.record(image_id, "there")["status"], "READY")
        self.run_job(ref, "sequential")

        # The other way round: "here" takes "there"'s file; expiring "there" leaves "here"'s.
        self.pull(ref, "here")
        self.assertEqual(self.wait_ended(image_id, "here")["status"], "READY")
        self.assertEqual(self.conversions(image_id), (1, 1))
        self.assertOwnFiles(image_id)
        p, _ = self.gw.call("ExpireImageOn", "ss", "there", image_id)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(there))
        self.assertTrue(os.path.exists(here))
        self.assertEqual(self.record(image_id, "here")["status"], "READY")

    def test_other_file_system_converts_its_own(self):
        """"there"'s image directory on a tmpfs: no hard link, no reflink, and no copy on
        gatewayd's event loop either: "there" converts the image itself."""
        ref = self.push("dedup-otherfs")
        image_id = self.pull(ref, "here")
        self.assertEqual(self.wait_ended(image_id, "here")["status"], "READY")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", self.there_dir], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", self.there_dir], check=False)
        self.pull(ref, "there")
        self.assertEqual(self.wait_ended(image_id, "there")["status"], "READY")
        self.assertEqual(self.conversions(image_id), (2, 2), "converted for each file system")
        self.assertIn(f"Image {image_id} ({ref}) for platform there: {self.there_dir} is on another file system",
                      self.gw.stderr_text())
        here, there = self.files(image_id)
        self.assertNotEqual(os.stat(here).st_dev, os.stat(there).st_dev)
        self.run_job(ref, "otherfs")

    def test_failed_placement_is_the_other_platforms_alone(self):
        ref = self.push("dedup-placement")
        image_id = self.pull(ref, "here")
        self.assertEqual(self.wait_ended(image_id, "here")["status"], "READY")
        # "there"'s image directory is not one for a while: its copy cannot be placed.
        aside = self.there_dir + ".aside"
        os.rename(self.there_dir, aside)
        try:
            with open(self.there_dir, "w"):
                pass
            self.pull(ref, "there")
            got = self.wait_ended(image_id, "there")
        finally:
            os.unlink(self.there_dir)
            os.rename(aside, self.there_dir)
        self.assertEqual(got["status"], "FAILURE")
        self.assertIn("Cannot place the image in platform there's image directory", got["message"])
        self.assertEqual(self.record(image_id, "here")["status"], "READY")
        self.assertTrue(os.path.exists(self.files(image_id)[0]))
        # Pulled again: placed now, still without a conversion of its own.
        self.pull(ref, "there")
        self.assertEqual(self.wait_ended(image_id, "there")["status"], "READY")
        self.assertEqual(self.conversions(image_id), (1, 1))
        self.assertOwnFiles(image_id)

    def test_failed_conversion_fails_both(self):
        # Found only at the layer's end: 1 MiB that does not compress keeps the conversion going
        # (through the slow path) well after the second pull's resolve.
        layer = images.Layer().file("noise", os.urandom(1 << 20))
        ref = self.push("dedup-broken", images.Image([(layer, "gzip")], diff_ids=[images.sha256(b"something else")]))
        workers = self.worker_pulls()
        image_id = self.pull(ref, "here")
        self.assertEqual(self.pull(ref, "there"), image_id)
        got = {platform: self.wait_ended(image_id, platform) for platform in ("here", "there")}
        self.assertEqual({p: r["status"] for p, r in got.items()}, {"here": "FAILURE", "there": "FAILURE"})
        self.assertIn("diff_id mismatch", got["here"]["message"])
        self.assertEqual(got["there"]["message"], got["here"]["message"])
        self.assertEqual(self.worker_pulls() - workers, 3, "two resolves and one conversion")
        self.assertEqual(self.conversions(image_id)[1], 1, "one attempt for both platforms")
        for path in self.files(image_id):
            self.assertFalse(os.path.exists(path))
        # The daemon keeps pulling: the same platforms, another image.
        ref = self.push("dedup-after-failure")
        image_id = self.pull(ref, "there")
        self.assertEqual(self.wait_ended(image_id, "there")["status"], "READY")


class NetworkCallers(test_remote.RemoteBase):
    """On the TCP listener: reading platforms takes the "read" scope, draining every scope and,
    for a network identity, gatewayd's Admins list (polkit cannot judge one)."""

    def test_read_scope_reads(self):
        t = self.create_token(scope=["read"])["token"]
        r = self.net("GET", "/v1/platforms", token=t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([p["name"] for p in r.json["platforms"]], ["local"])
        r = self.net("GET", "/v1/platforms/local", token=t)
        self.assertEqual((r.status, r.json["name"]), (200, "local"), r)
        self.assertNetError(self.net("GET", "/v1/platforms/nosuch", token=t), 404, "NotFound")
        self.assertNetError(self.net("GET", "/v1/platforms"), 401, "Unauthenticated")

    def test_drain_needs_every_scope_and_admins(self):
        node = self.gw.http("GET", "/v1/platforms/local").json["nodes"][0]["name"]
        path = f"/v1/platforms/local/nodes/{node}/drain"
        read = self.create_token(users.ADMIN, scope=["read"])["token"]
        self.assertNetError(self.net("POST", path, token=read), 403, "AccessDenied")
        user = self.create_token(users.USER)["token"]
        self.assertNetError(self.net("POST", path, token=user), 403, "AccessDenied")
        admin = self.create_token(users.ADMIN)["token"]
        self.assertNetError(self.net("POST", path, token=admin), 409, "Conflict")
        self.assertNetError(self.net("POST", "/v1/platforms/nosuch/nodes/x/resume", token=admin), 404, "NotFound")


if __name__ == "__main__":
    unittest.main()
