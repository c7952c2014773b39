"""Programs on an image of their own (docs/programs.md, "Images of programs"): ProgramImages says
which images a program may name instead of ProgramImage. Two small busybox images from the
harness's docker-registry: the base image (ProgramImage) and quantum/tool, which alone has
/etc/tool-marker, a Python distribution's dist-info (for the dependency check), a working
directory and an entrypoint of its own. Covers a program with an artifact on its image, a
program without an artifact (the image's entrypoint runs), refusals (not permitted, a registry
outside Locations — without a connection —, bad combinations) with nothing stored, the
dependency check against the program's image, /api/v1/ (the client's form without an artifact),
D-Bus and gatewayctl; a provider's program on an image of its own, run by the provider's user."""
import json
import os
import re
import shutil
import socket
import tempfile
import urllib.parse

from harness import images, procs, users
from harness.stack import StackTestCase
from test_programs import ProgramsStackBase, tar_of

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN")


class Raw:
    """A gdbus argument passed as GVariant text as it is (a boolean)."""
    def __init__(self, text):
        self.text = text

    def __str__(self):
        return self.text
APPLETS = ("sh", "cat", "echo", "ls", "true", "id")

# An artifact's entrypoint: says which image it runs on (only one has each marker).
WHICH_SH = """#!/bin/sh
echo "PlanQK:Job:Result: {\\"marker\\": \\"$(cat /etc/*-marker)\\", \\"cwd\\": \\"$(pwd)\\", \\"args\\": $ENV_JOB_ARGUMENTS}"
"""
# A provider's program: which image, and who runs it.
WHO_SH = """#!/bin/sh
echo "PlanQK:Job:Result: {\\"marker\\": \\"$(cat /etc/*-marker)\\", \\"uid\\": $(id -u)}"
"""
# The tool image's own entrypoint: what a program without an artifact runs.
TOOL_CMD = ('echo "PlanQK:Job:Result: {\\"marker\\": \\"$(cat /etc/tool-marker)\\", \\"cwd\\": \\"$(pwd)\\", '
            '\\"program\\": \\"$(ls -A /program)\\", \\"args\\": $ENV_JOB_ARGUMENTS, '
            '\\"job\\": \\"$ENV_JOB_ID_GATEWAY\\", \\"token\\": ${#ENV_JOB_GATEWAY_TOKEN}}"')


def base_image():
    layer = images.Layer().busybox(applets=APPLETS)
    layer.dir("etc")
    layer.file("etc/base-marker", b"base")
    return images.Image([(layer, "gzip")])


def tool_image():
    layer = images.Layer().busybox(applets=APPLETS)
    layer.dir("etc")
    layer.file("etc/tool-marker", b"tool")
    layer.dir("srv")
    for d in ("usr", "usr/lib", "usr/lib/python3", "usr/lib/python3/dist-packages",
              "usr/lib/python3/dist-packages/qiskit-2.0.0.dist-info"):
        layer.dir(d)
    layer.file("usr/lib/python3/dist-packages/qiskit-2.0.0.dist-info/METADATA", b"Metadata-Version: 2.1\n")
    return images.Image([(layer, "gzip")], entrypoint=["/bin/sh", "-c"], cmd=[TOOL_CMD], workdir="/srv")


class ProgramImageTest(ProgramsStackBase):
    tmp_prefix = "gatewayd-progimage-"

    @classmethod
    def push_images(cls):
        images.push_image(cls.registry, "base", "1.0", base_image())
        images.push_image(cls.registry, "quantum/tool", "1.0", tool_image())

    @classmethod
    def program_config(cls, host):
        cls.tool = f"{host}/quantum/tool:1.0"
        return {
            "ProgramImage": f"{host}/base:1.0",
            "ProgramImages": [f"{host}/quantum/*"],
            "ProgramArtifactMax": "1M",
            "ImageSizeMax": "16M",
            "ImageFilesMax": 500,
            "ProgramProviders": {"acme": {"admins": ["@" + users.ADMIN_GROUP], "users": [users.USER]}},
        }

    # ---- helpers ----

    def upload(self, title, artifact=None, status=201, as_user=users.USER, **meta):
        return self.post_program(artifact, status, as_user, title=title, **meta)

    def run_and_result(self, title, body=None, as_user=users.USER):
        r = self.gw.http("POST", f"/v1/programs/{title}/run", body or {}, as_user=as_user)
        self.assertEqual(r.status, 201, r.body)
        return self.wait_result(r.json["id"], as_user)

    def wait_result(self, job_id, as_user=users.USER):
        last = {}

        def check():
            last["job"] = self.gw.http("GET", f"/v1/jobs/{job_id}", as_user=as_user).json
            return last["job"]["status"] in TERMINAL
        procs.wait_for(check, timeout=60, what=f"job {job_id} to finish")
        log = self.gw.http("GET", f"/v1/jobs/{job_id}/log", as_user=as_user).body
        self.assertEqual(last["job"]["status"], "SUCCEEDED", log)
        r = self.gw.http("GET", f"/v1/jobs/{job_id}/result", as_user=as_user)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def stored(self):
        d = os.path.join(self.gw.state_dir, "programs")
        return sorted(os.listdir(d)), sorted(os.listdir(os.path.join(d, ".uploads")))

    # ---- tests ----

    def test_artifact_runs_on_the_programs_image(self):
        art = tar_of([{"name": "which.sh", "data": WHICH_SH, "mode": 0o755}])
        # named as the rest of gatewayd reads references: normalised (DefaultImageLocation's registry)
        p = self.upload("onimage", art, entrypoint="which.sh", image="quantum/tool:1.0", arguments={"n": 1}).json
        self.assertEqual(p["image"], self.tool)
        self.assertEqual(p["entrypoint"], "which.sh")
        self.assertEqual(self.gw.http("GET", "/v1/programs/onimage", as_user=users.USER).json["image"], self.tool)
        self.assertEqual(self.run_and_result("onimage", {"arguments": {"n": 2}}),
                         {"marker": "tool", "cwd": "/program", "args": {"n": 2}})
        # the same artifact without an image: ProgramImage, as before
        p = self.upload("onbase", art, entrypoint="which.sh").json
        self.assertIsNone(p["image"])
        self.assertEqual(self.run_and_result("onbase")["marker"], "base")
        # uploading again without the image: back on ProgramImage (a re-upload sets everything)
        p = self.upload("onimage", art, entrypoint="which.sh", replace="true").json
        self.assertIsNone(p["image"])
        self.assertEqual(self.run_and_result("onimage")["marker"], "base")

    def test_image_only_runs_the_images_entrypoint(self):
        before = self.stored()
        p = self.upload("imgonly", image=self.tool, arguments={"k": "v"}).json
        self.assertIsNone(p["entrypoint"])
        self.assertEqual(p["image"], self.tool)
        res = self.run_and_result("imgonly", {"arguments": {"n": 3}})
        # the image's entrypoint, cmd and working directory; /program is empty; the job's token is there
        self.assertEqual(res["marker"], "tool")
        self.assertEqual(res["cwd"], "/srv")
        self.assertEqual(res["program"], "")
        self.assertEqual(res["args"], {"k": "v", "n": 3})
        self.assertEqual(res["token"], 64)
        self.assertEqual(len(self.stored()[0]), len(before[0]) + 1)
        self.assertEqual(self.stored()[1], [])

    def test_refused_images_store_nothing(self):
        art = tar_of([{"name": "which.sh", "data": WHICH_SH, "mode": 0o755}])
        before = self.stored()
        # not in ProgramImages (same registry, outside quantum/; a string prefix is no path prefix)
        for image in (f"{self.host}/other/tool:1.0", f"{self.host}/quantumx/tool:1.0", f"{self.host}/quantum"):
            with self.subTest(image=image):
                r = self.upload("refused", art, entrypoint="which.sh", image=image, status=403)
                self.assertError(r, 403, "AccessDenied", "ProgramImages")
                r = self.upload("refused", image=image, status=403)
                self.assertError(r, 403, "AccessDenied", "ProgramImages")
        for q, status, code, words in (
                ({"image": "Not A Reference"}, 400, "InvalidArgument", "image"),
                # an entrypoint names a file in the artifact: there is none
                ({"image": self.tool, "entrypoint": "which.sh"}, 400, "InvalidArgument", "entrypoint"),
                # neither an artifact nor an image
                ({"entrypoint": "which.sh"}, 400, "BadRequest", "artifact")):
            with self.subTest(q=q):
                r = self.upload("refused", status=status, **q)
                self.assertError(r, status, code, words)
        # with an artifact, no entrypoint and no image
        r = self.upload("refused", art, status=400)
        self.assertError(r, 400, "InvalidArgument", "entrypoint")
        self.assertEqual(self.gw.http("GET", "/v1/programs/refused", as_user=users.USER).status, 404)
        self.assertEqual(self.stored(), before)
        self.assertServing()

    def test_kept_across_restart_and_checked_again_at_run(self):
        """The image is stored (programs.image); a site that withdraws it from ProgramImages
        refuses the program's runs (403), and the program runs again once it is permitted."""
        p = self.upload("kept", image=self.tool).json
        config = dict(self.config)
        try:
            self.gw.restart()
            self.assertEqual(self.gw.http("GET", "/v1/programs/kept", as_user=users.USER).json, p)
            self.gw.write_config({**config, "ProgramImages": []})
            self.gw.restart()
            r = self.gw.http("POST", "/v1/programs/kept/run", {}, as_user=users.USER)
            self.assertError(r, 403, "AccessDenied", "ProgramImage")
            r = self.gw.http("POST", "/api/v1/programs/run/", {"title": "kept"}, as_user=users.USER)
            self.assertEqual((r.status, list(r.json)), (403, ["message"]), r.body)
        finally:
            self.gw.write_config(config)
            self.gw.restart()
        self.assertEqual(self.run_and_result("kept")["marker"], "tool")

    def test_dependencies_checked_against_the_programs_image(self):
        art = tar_of([{"name": "which.sh", "data": WHICH_SH, "mode": 0o755}])
        # ProgramImage has no qiskit: refused there
        r = self.upload("deps", art, entrypoint="which.sh", dependencies=["qiskit>=2"], status=400)
        self.assertError(r, 400, "InvalidArgument", "'qiskit>=2' (not installed)")
        # the program's image has qiskit 2.0.0, with and without an artifact
        self.upload("deps", art, entrypoint="which.sh", image=self.tool, dependencies=["qiskit>=2"])
        self.upload("deps2", image=self.tool, dependencies=["Qiskit==2.0.*"])
        r = self.upload("deps3", image=self.tool, dependencies=["qiskit<2"], status=400)
        self.assertError(r, 400, "InvalidArgument", "'qiskit<2' (installed: qiskit 2.0.0)")
        self.assertEqual(self.run_and_result("deps")["marker"], "tool")

    def test_serverless_api(self):
        """The client uploads a program on an image as a urlencoded form (requests' data=, no
        artifact); the program's image is its "image" field."""
        form = urllib.parse.urlencode({"title": "slimg", "image": "quantum/tool:1.0", "arguments": "{}",
                                       "dependencies": "[]", "env_vars": '{"A": "b"}', "runner": "ray"})
        r = self.gw.http("POST", "/api/v1/programs/upload/", form, as_user=users.USER,
                         content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 200, r.body)
        self.addCleanup(self.remove_quietly, "slimg")
        self.assertEqual(r.json["image"], self.tool)
        self.assertIsNone(r.json["entrypoint"])
        self.assertEqual(self.gw.http("GET", "/api/v1/programs/get_by_title/slimg", as_user=users.USER).json["image"],
                         self.tool)
        r = self.gw.http("POST", "/api/v1/programs/run/", {"title": "slimg", "arguments": '{"x": 1}'}, as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        res = self.wait_result(r.json["id"])
        self.assertEqual((res["marker"], res["args"], res["job"]), ("tool", {"x": 1}, r.json["id"]))
        # multipart with an artifact and an image
        boundary = "b0undary"
        art = tar_of([{"name": "which.sh", "data": WHICH_SH, "mode": 0o755}])
        body = b"".join([
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in (("title", "slart"), ("entrypoint", "which.sh"), ("image", self.tool))
        ]) + (f'--{boundary}\r\nContent-Disposition: form-data; name="artifact"; filename="a.tar"\r\n'
              f'Content-Type: application/octet-stream\r\n\r\n').encode() + art + f"\r\n--{boundary}--\r\n".encode()
        r = self.gw.http("POST", "/api/v1/programs/upload/", body, as_user=users.USER,
                         content_type=f"multipart/form-data; boundary={boundary}")
        self.assertEqual(r.status, 200, r.body)
        self.addCleanup(self.remove_quietly, "slart")
        self.assertEqual((r.json["image"], r.json["entrypoint"]), (self.tool, "which.sh"))
        # multipart without an artifact: a program that is its image
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nslmp\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"\r\n\r\n{self.tool}\r\n'
                f'--{boundary}--\r\n').encode()
        r = self.gw.http("POST", "/api/v1/programs/upload/", body, as_user=users.USER,
                         content_type=f"multipart/form-data; boundary={boundary}")
        self.assertEqual(r.status, 200, r.body)
        self.addCleanup(self.remove_quietly, "slmp")
        self.assertEqual((r.json["image"], r.json["entrypoint"]), (self.tool, None))
        self.assertEqual(self.stored()[1], [])
        # refusals in the gateway's shape, nothing stored
        before = self.stored()
        for image, status in ((f"{self.host}/other/x:1", 403), ("Not A Reference", 400)):
            with self.subTest(image=image):
                form = urllib.parse.urlencode({"title": "slbad", "image": image})
                r = self.gw.http("POST", "/api/v1/programs/upload/", form, as_user=users.USER,
                                 content_type="application/x-www-form-urlencoded")
                self.assertEqual(r.status, status, r.body)
                self.assertEqual(list(r.json), ["message"], r.body)
        # the client's form without an image is not a program
        form = urllib.parse.urlencode({"title": "slbad", "entrypoint": "main.py"})
        r = self.gw.http("POST", "/api/v1/programs/upload/", form, as_user=users.USER,
                         content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 400, r.body)
        self.assertIn("artifact", r.json["message"])
        self.assertEqual(self.stored(), before)
        self.assertEqual(self.gw.http("GET", "/api/v1/programs/get_by_title/slbad", as_user=users.USER).status, 404)

    def test_provider_program_on_its_own_image(self):
        """A provider's admin uploads programs on the provider's image (the client's form with
        provider and image, no artifact; the native upload with an artifact); the provider's user
        runs them as jobs of their own on that image; others do not see them."""
        form = urllib.parse.urlencode({"title": "pvimg", "provider": "acme", "image": "quantum/tool:1.0",
                                       "arguments": "{}", "dependencies": '["qiskit"]', "env_vars": "{}"})
        r = self.gw.http("POST", "/api/v1/programs/upload/", form, as_user=users.ADMIN,
                         content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 200, r.body)
        self.addCleanup(self.gw.http, "DELETE", "/v1/programs/pvimg?provider=acme", as_user=users.ADMIN)
        self.assertEqual((r.json["provider"], r.json["image"], r.json["entrypoint"]), ("acme", self.tool, None))
        art = tar_of([{"name": "who.sh", "data": WHO_SH, "mode": 0o700}])
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode(
            {"title": "pvart", "provider": "acme", "entrypoint": "who.sh", "image": self.tool}), art,
            as_user=users.ADMIN, content_type="application/gzip")
        self.assertEqual(r.status, 201, r.body)
        self.addCleanup(self.gw.http, "DELETE", "/v1/programs/pvart?provider=acme", as_user=users.ADMIN)
        self.assertEqual((r.json["provider"], r.json["image"]), ("acme", self.tool))
        shown = self.gw.http("GET", "/api/v1/programs/get_by_title/pvimg?provider=acme", as_user=users.USER).json
        self.assertEqual((shown["provider"], shown["image"]), ("acme", self.tool))

        # the provider's user runs both: their own jobs, on the program's image
        r = self.gw.http("POST", "/api/v1/programs/run/", {"title": "acme/pvimg", "arguments": '{"q": 1}'},
                         as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        res = self.wait_result(r.json["id"])
        self.assertEqual((res["marker"], res["cwd"], res["args"]), ("tool", "/srv", {"q": 1}))
        r = self.gw.http("POST", "/v1/programs/pvart/run?provider=acme", {}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual((r.json["uid"], r.json["programProvider"]), (users.uid_of(users.USER), "acme"))
        self.assertEqual(self.wait_result(r.json["id"]), {"marker": "tool", "uid": users.uid_of(users.USER)})

        # the user cannot upload for the provider, image or not; a non-member does not see them
        form = urllib.parse.urlencode({"title": "pvuser", "provider": "acme", "image": self.tool})
        r = self.gw.http("POST", "/api/v1/programs/upload/", form, as_user=users.USER,
                         content_type="application/x-www-form-urlencoded")
        self.assertEqual((r.status, list(r.json)), (403, ["message"]), r.body)
        for title in ("pvimg", "pvart"):
            r = self.gw.http("POST", f"/v1/programs/{title}/run?provider=acme", {}, as_user=users.OTHER)
            self.assertError(r, 404, "NotFound", title)
        # an image ProgramImages does not permit is refused for a provider's admin too
        form = urllib.parse.urlencode({"title": "pvbad", "provider": "acme", "image": f"{self.host}/other/x:1"})
        r = self.gw.http("POST", "/api/v1/programs/upload/", form, as_user=users.ADMIN,
                         content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 403, r.body)
        self.assertIn("ProgramImages", r.json["message"])
        self.assertEqual(self.gw.http("GET", "/v1/programs/pvbad?provider=acme", as_user=users.ADMIN).status, 404)

    def test_dbus(self):
        meta = json.dumps({"title": "busimg", "image": "quantum/tool:1.0", "arguments": {"a": 1}})
        p, data = self.gw.call("UploadProgram", "sb", meta, "false", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.addCleanup(self.remove_quietly, "busimg")
        self.assertEqual(json.loads(data[0])["image"], self.tool)
        p, data = self.gw.call("ListPrograms", as_user=users.USER)
        self.assertEqual([x["image"] for x in json.loads(data[0]) if x["title"] == "busimg"], [self.tool])
        p, data = self.gw.call("RunProgram", "sss", "busimg", '{"b": 2}', "", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        job_id = re.sub(r"_([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), data[0].rsplit("/", 1)[1])
        self.assertEqual(self.wait_result(job_id)["args"], {"a": 1, "b": 2})
        before = self.stored()
        for text, replace, name in (
                (meta, "false", "org.gatewayd.Gateway1.Error.AlreadyExists"),
                (json.dumps({"title": "busbad", "image": f"{self.host}/other/x:1"}), "false",
                 "org.gatewayd.Gateway1.Error.AccessDenied"),
                # no artifact travels over the bus: an image is needed, and an entrypoint makes no sense
                (json.dumps({"title": "busbad"}), "false", "org.gatewayd.Gateway1.Error.InvalidArgument"),
                (json.dumps({"title": "busbad", "image": self.tool, "entrypoint": "x.py"}), "false",
                 "org.gatewayd.Gateway1.Error.InvalidArgument"),
                ("[1]", "false", "org.gatewayd.Gateway1.Error.InvalidArgument"),
                ("{bad", "false", "org.gatewayd.Gateway1.Error.BadRequest")):
            with self.subTest(text=text):
                p, err = self.gw.gdbus_call("UploadProgram", text, Raw(replace), as_user=users.USER)
                self.assertNotEqual(p.returncode, 0)
                self.assertEqual(err, name, p.stderr)
        self.assertEqual(self.stored(), before)
        # replace: the program's new fields
        p, data = self.gw.call("UploadProgram", "sb", json.dumps({"title": "busimg", "image": self.tool}), "true",
                               as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(data[0])["arguments"], {})
        # a provider's program on its image: its admins upload, its users run, others do not see it
        meta = json.dumps({"title": "busprov", "image": self.tool, "provider": "acme"})
        p, data = self.gw.call("UploadProgram", "sb", meta, "false", as_user=users.ADMIN)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.addCleanup(self.gw.http, "DELETE", "/v1/programs/busprov?provider=acme", as_user=users.ADMIN)
        self.assertEqual((json.loads(data[0])["provider"], json.loads(data[0])["image"]), ("acme", self.tool))
        p, data = self.gw.call("RunProviderProgram", "ssss", "acme", "busprov", "", "", as_user=users.USER)
        self.assertEqual(p.returncode, 0, p.stderr)
        job_id = re.sub(r"_([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), data[0].rsplit("/", 1)[1])
        self.assertEqual(self.wait_result(job_id)["marker"], "tool")
        for user, name in ((users.USER, "AccessDenied"), (users.OTHER, "NotFound")):
            with self.subTest(user=user):
                p, err = self.gw.gdbus_call("UploadProgram", json.dumps({"title": "busprov2", "image": self.tool,
                                                                          "provider": "acme"}), Raw("false"), as_user=user)
                self.assertNotEqual(p.returncode, 0)
                self.assertEqual(err, f"org.gatewayd.Gateway1.Error.{name}", p.stderr)
        p, err = self.gw.gdbus_call("UploadProgram", json.dumps({"title": "busprov", "image": self.tool, "provider": 1}),
                                    Raw("false"), as_user=users.ADMIN)
        self.assertEqual(err, "org.gatewayd.Gateway1.Error.InvalidArgument", p.stderr)

    def test_gatewayctl(self):
        d = tempfile.mkdtemp(prefix="gatewayd-progimage-src-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        with open(os.path.join(d, "which.sh"), "w") as f:
            f.write(WHICH_SH)
        os.chmod(os.path.join(d, "which.sh"), 0o755)
        r = self.gw.gatewayctl("program", "upload", d, "--title=ctlart", "--entrypoint=which.sh",
                               "--image=quantum/tool:1.0", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(self.remove_quietly, "ctlart")
        r = self.gw.gatewayctl("program", "upload", "--title=ctlimg", "--image=quantum/tool:1.0", "--arg=z=1",
                               "--json=short", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(self.remove_quietly, "ctlimg")
        self.assertEqual(json.loads(r.stdout)["image"], self.tool)
        r = self.gw.gatewayctl("program", "run", "ctlart", "--wait", "--json=short", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["marker"], "tool")
        r = self.gw.gatewayctl("program", "run", "ctlimg", "--wait", "--json=short", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((json.loads(r.stdout)["cwd"], json.loads(r.stdout)["args"]), ("/srv", {"z": 1}))
        # a provider's program on its image: uploaded by the admin, run by the provider's user
        r = self.gw.gatewayctl("program", "upload", "--title=ctlprov", "--image=quantum/tool:1.0", "--provider=acme",
                               "--json=short", as_user=users.ADMIN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.addCleanup(self.gw.http, "DELETE", "/v1/programs/ctlprov?provider=acme", as_user=users.ADMIN)
        self.assertEqual((json.loads(r.stdout)["provider"], json.loads(r.stdout)["image"]), ("acme", self.tool))
        r = self.gw.gatewayctl("program", "run", "ctlprov", "--provider=acme", "--wait", "--json=short", as_user=users.USER)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["marker"], "tool")
        for args, words in ((("--title=x",), "--entrypoint"),
                            (("--image=quantum/tool:1.0",), "--title"),
                            (("--image=quantum/tool:1.0", "--title=x", "--entrypoint=a.sh"), "no DIR"),
                            (("--image=other/x:1", "--title=x"), "ProgramImages")):
            with self.subTest(args=args):
                r = self.gw.gatewayctl("program", "upload", *args, as_user=users.USER)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(words, r.stderr)


class ProgramImageLocationsTest(StackTestCase):
    """ProgramImages "*" permits any image, but a registry outside Locations is refused like a
    pull (403) before anything connects to it."""

    @classmethod
    def setUpClass(cls):
        cls.listener = socket.socket()
        cls.listener.bind(("127.0.0.1", 0))
        cls.listener.listen(8)
        cls.listener.setblocking(False)
        cls.port = cls.listener.getsockname()[1]
        cls.config = {
            "Locations": {"registry.example.org": {"remotetype": "dockerv2"}},
            "WorkerPath": os.path.join(procs.build_dir(), "src", "worker", "gateway-worker"),
            "ProgramImages": ["*"],
        }
        try:
            super().setUpClass()
        except BaseException:
            cls.listener.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.listener.close()

    def test_registry_not_in_locations(self):
        image = f"127.0.0.1:{self.port}/x/y:1"
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode({"title": "far", "image": image}),
                         as_user=users.USER)
        self.assertError(r, 403, "AccessDenied", "Locations")
        form = urllib.parse.urlencode({"title": "far", "image": image, "dependencies": '["qiskit"]'})
        r = self.gw.http("POST", "/api/v1/programs/upload/", form, as_user=users.USER,
                         content_type="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 403, r.body)
        self.assertIn("Locations", r.json["message"])
        with self.assertRaises(BlockingIOError):
            self.listener.accept()    # nothing connected
        self.assertEqual(self.gw.http("GET", "/v1/programs/far", as_user=users.USER).status, 404)
        self.assertServing()



class ImageWithdrawnWhileQueued(ProgramsStackBase):
    """A program's image is checked when a run is submitted and again when its job's turn comes:
    with JobsPerUser 1 a run waits behind another; a restart with the image withdrawn from
    ProgramImages meanwhile makes the waiting job fail ACCESS_DENIED before anything is pulled."""
    tmp_prefix = "gatewayd-progimage-"

    @classmethod
    def push_images(cls):
        layer = images.Layer().busybox(applets=APPLETS + ("sleep",))
        images.push_image(cls.registry, "base", "1.0", images.Image([(layer, "gzip")]))
        images.push_image(cls.registry, "quantum/tool", "1.0", tool_image())

    @classmethod
    def program_config(cls, host):
        cls.tool = f"{host}/quantum/tool:1.0"
        return {"ProgramImage": f"{host}/base:1.0", "ProgramImages": [f"{host}/quantum/*"], "JobsPerUser": 1}

    def job(self, job_id):
        return self.gw.http("GET", f"/v1/jobs/{job_id}", as_user=users.USER).json

    def start_run(self, title):
        r = self.gw.http("POST", f"/v1/programs/{title}/run", {}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        return r.json["id"]

    def test_withdrawn_while_queued(self):
        blocker = tar_of([{"name": "run.sh", "data": "#!/bin/sh\nexec sleep 1000\n", "mode": 0o755}])
        self.post_program(blocker, 201, users.USER, title="blocker", entrypoint="run.sh")
        self.post_program(None, 201, users.USER, title="tooled", image=self.tool)
        first = self.start_run("blocker")
        procs.wait_for(lambda: self.job(first)["status"] == "RUNNING", timeout=60, what="the first run running")
        second = self.start_run("tooled")
        self.assertEqual(self.job(second)["status"], "QUEUED")
        config = dict(self.config)
        try:
            self.gw.write_config({**config, "ProgramImages": []})
            self.gw.restart()
            if self.job(first)["status"] not in TERMINAL:
                self.assertEqual(self.gw.http("PUT", f"/v1/jobs/{first}/cancel", as_user=users.USER).status, 200)
            procs.wait_for(lambda: self.job(second)["status"] in TERMINAL, timeout=60, what="the second run's end")
            job = self.job(second)
            self.assertEqual((job["status"], job["error"]["code"]), ("FAILED", "ACCESS_DENIED"), job)
            self.assertIn("ProgramImage", job["error"]["message"])
            self.assertIsNone(job["startedAt"], "nothing of it ran")
            # nothing was pulled for it
            r = self.gw.http("GET", "/v1/images", as_user=users.USER)
            self.assertNotIn(self.tool, [i["reference"] for i in r.json["images"]])
        finally:
            self.gw.write_config(config)
            self.gw.restart()
