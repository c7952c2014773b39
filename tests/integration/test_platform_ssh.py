"""Remote platforms (accesstype "remote"): gatewayd runs jobs on SSH nodes (platform-ssh.c) — real
sshd processes on 127.0.0.1 with the forced command `gateway-worker connect` in front of
`gateway-worker serve` (harness/sshnode.py), a real registry the image is pulled from, and the
native API as the user sees it. The image reaches a node over SFTP the first time a job needs it
there. Faults: the SSH connection killed mid-job, gatewayd killed with SIGKILL mid-job, a node
gone for longer than NodeLostTimeout, a node whose host key does not match."""
import glob
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import unittest
import urllib.parse

from harness import images, procs, slowfsync, sshnode, users
from harness.registry import Registry
from harness.stack import StackTestCase

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "UNKNOWN")
ECHO = ('cat /var/input/data.json; echo; echo "to stderr" >&2; /bin/busybox grep " / " /proc/mounts >&2; '
        'echo "PlanQK:Job:InterimResult: {\\"step\\": 1}"; '
        'echo "PlanQK:Job:Result: {\\"data\\": $(cat /var/input/data.json)}"')
# Sleeps params.sleep seconds, printing a line first so that a test knows it runs.
SLEEP = ('s=$(sed -n \'s/.*"sleep": *\\([0-9]*\\).*/\\1/p\' /var/input/params.json); '
         'echo "sleeping ${s:-60}"; sleep "${s:-60}"; echo "PlanQK:Job:InterimResult: {\\"woke\\": true}"; '
         'echo "PlanQK:Job:Result: {\\"slept\\": ${s:-60}}"')
# A program (an executable entrypoint: the base image is busybox): its arguments both ways, a
# file of its own, and which upload it is.
PROGRAM_SH = """#!/bin/sh
echo "program {version} on the node"
sleep "${{PSLEEP:-0}}"
echo "PlanQK:Job:Result: {{\\"version\\": {version}, \\"args\\": $ENV_JOB_ARGUMENTS, \\"file\\": $(cat /var/input/arguments.json), \\"own\\": \\"$(cat /program/data.txt)\\"}}"
"""


# save_result from inside a program job (docs/programs.md), with busybox's wget (the base image is
# busybox): as the serverless client does it (the form field result=<JSON text>), then once more
# with a JSON body — the last save wins, over the marker printed first too —, and once with a
# forged token. With SAVE_WAIT set it saves nothing and waits that long (a test saves it from
# outside, through gatewayd's own route).
SAVE_SH = """#!/bin/sh
echo 'PlanQK:Job:Result: {"marker": true}'
if [ -n "$SAVE_WAIT" ]; then echo "waiting for a save"; sleep "$SAVE_WAIT"; exit 0; fi
url="$ENV_JOB_GATEWAY_HOST/api/v1/jobs/$ENV_JOB_ID_GATEWAY/result/"
auth="Authorization: Bearer $ENV_JOB_GATEWAY_TOKEN"
echo "form: $(/bin/busybox wget -q -O - --header "$auth" --post-data 'result=%7B%22form%22%3A%201%7D' "$url" 2>&1)"
echo "json: $(/bin/busybox wget -q -O - --header "$auth" --header 'Content-Type: application/json' \
  --post-data "{\\"result\\": {\\"saved\\": true, \\"host\\": \\"$ENV_JOB_GATEWAY_HOST\\", \\"args\\": $ENV_JOB_ARGUMENTS}}" "$url" 2>&1)"
echo "forged: $(/bin/busybox wget -q -O - --header 'Authorization: Bearer 00' --post-data 'result=1' "$url" 2>&1)"
"""


def save_tar():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        ti = tarfile.TarInfo("save.sh")
        ti.mode, ti.size = 0o755, len(SAVE_SH.encode())
        t.addfile(ti, io.BytesIO(SAVE_SH.encode()))
    return buf.getvalue()


def job_token(state_dir, job_id):
    """The token gatewayd mints for a program job: HMAC-SHA256 over its id (docs/programs.md)."""
    import hmac
    with open(os.path.join(state_dir, "job-token.key"), "rb") as f:
        key = f.read()
    return hmac.new(key, b"gatewayd job result token 1\n" + job_id.encode(), hashlib.sha256).hexdigest()


def save_via_gatewayd(gw, job_id, token, result):
    """POST /api/v1/jobs/{id}/result/ on gatewayd's unix socket, as someone else than the job's
    owner: only the token counts there."""
    r = gw.http("POST", f"/api/v1/jobs/{job_id}/result/", urllib.parse.urlencode({"result": json.dumps(result)}),
                as_user=users.OTHER, headers={"Authorization": "Bearer " + token},
                content_type="application/x-www-form-urlencoded")
    return r.status, r.json


def assert_saved_from_inside(test, jid, log, args):
    """What save.sh (SAVE_SH) did from inside job jid, seen from outside: its last save is the
    job's result on both APIs, the forged token was refused, and a save after the end is 409."""
    saved = {"saved": True, "host": "http://127.0.0.1:80", "args": args}
    test.assertEqual(test.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER).json, saved, log)
    r = test.gw.http("GET", f"/api/v1/jobs/{jid}/result/", as_user=users.USER)
    test.assertEqual((r.status, json.loads(r.json["result"])), (200, saved), r.body)
    test.assertIn('form: {"message": "Result saved."}', log)
    test.assertIn('json: {"message": "Result saved."}', log)
    test.assertIn("forged: wget: server returned error: HTTP/1.1 401", log)
    test.assertIn("replaces the one printed with a marker", log)
    test.assertEqual(save_via_gatewayd(test.gw, jid, job_token(test.gw.state_dir, jid), {"late": 1}),
                     (409, {"message": "The job has finished: its result can no longer be saved."}))


def program_tar(version):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data, mode in (("run.sh", PROGRAM_SH.format(version=version), 0o755),
                                 ("data.txt", f"data of {version}\n", 0o644)):
            ti = tarfile.TarInfo(name)
            ti.mode, ti.size = mode, len(data.encode())
            t.addfile(ti, io.BytesIO(data.encode()))
    return buf.getvalue()


# Leaves result files in $OUTPUT_DIRECTORY (and a link that must not come back).
FILES = ('o="$OUTPUT_DIRECTORY"; printf "hello\\n" > "$o/hello.txt"; /bin/busybox head -c 200000 /dev/urandom > "$o/r.bin"; '
         '/bin/busybox ln -s /etc/shadow "$o/shadow"; '
         'echo "PlanQK:Job:Result: {\\"sha\\": \\"$(/bin/busybox sha256sum "$o/r.bin" | /bin/busybox cut -c1-64)\\"}"')


def setUpModule():
    sshnode.subreaper(True)


def tearDownModule():
    sshnode.reap_orphans()
    sshnode.subreaper(False)


def session_processes(sshd_pid):
    """The per-connection sshd processes ([priv] and its children) of a listening sshd."""
    def children(pid):
        kids = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    kids += [int(k) for k in f.read().split()]
        except OSError:
            pass
        return kids
    found = []
    for pid in children(sshd_pid):
        found.append(pid)
        found += children(pid)
    return found


def descendants(pid):
    """Every process below pid."""
    found = []
    for kid in session_processes(pid):
        if kid not in found:
            found.append(kid)
            found += [k for k in descendants(kid) if k not in found]
    return found


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def kill_all(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class RemoteBase(StackTestCase):
    node_args = ["--slots=1", "--lost-after=5", "--run-option=--kill-grace=1"]
    node_lost_timeout = 3
    n_nodes = 2
    wrong_host_key = False
    extra_platforms = {}

    @classmethod
    def setUpClass(cls):
        cls.rprocs = procs.Processes()
        cls.rtmp = procs.TempDir(prefix="gatewayd-pssh-")
        cls.nodes = []
        try:
            cls.registry = Registry(cls.rprocs, cls.rtmp.path).start()
            images.push_image(cls.registry, "busybox", "1.0", images.busybox_image())
            images.push_image(cls.registry, "big", "1.0",
                              images.Image([(images.Layer().busybox(), "gzip"),
                                            (images.Layer().file("data.bin", os.urandom(3 * 1024 * 1024)), "gzip")],
                                           entrypoint=["/bin/sh"]))
            images.push_image(cls.registry, "transfer", "1.0",
                              images.busybox_image(env=["PATH=/bin", "GREETING=hello world"], workdir="/tmp",
                                                   labels={"for": "transfer"}))
            cls.key = sshnode.client_key(cls.rtmp.path)
            users.ensure_test_users()   # before a systemd node copies /etc
            cls.start_nodes()
            known = os.path.join(cls.rtmp.path, "known_hosts")
            with open(known, "w") as f:
                for n in cls.nodes:
                    with open(n.known_hosts) as k:
                        line = k.read()
                    if cls.wrong_host_key:
                        other = os.path.join(cls.rtmp.path, "other_host_key")
                        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
                        with open(other + ".pub") as o:
                            line = line.split()[0] + " " + " ".join(o.read().split()[:2]) + "\n"
                    f.write(line)
            host = cls.registry.host
            cls.config = {
                "DefaultImageLocation": host,
                "Locations": {host: {"remotetype": "dockerv2", "authentication": "none", "insecure": True}},
                "WorkerPath": sshnode.worker_binary(),
                "Platforms": {"cluster": {
                    "accesstype": "remote",
                    "host": [f"127.0.0.1:{n.port}" for n in cls.nodes],
                    "ssh": {"username": sshnode.ACCOUNT, "key": cls.key, "knownHosts": known,
                            "imageDir": "/var/lib/gateway-worker/images"}}, **cls.extra_platforms},
                "DefaultPlatform": "cluster",
                "JobsPerUser": 6,
                "MaxClusters": 6,
                "NodeLostTimeout": cls.node_lost_timeout,
                "ProgramImage": f"{host}/busybox:1.0",
                "ProgramImages": [f"{host}/transfer"],
                "ProgramProviders": {"acme": {"admins": [users.ADMIN], "users": [users.USER]}},
            }
            super().setUpClass()
            if not cls.wrong_host_key:
                for n in cls.nodes:
                    procs.wait_for(lambda: f"node 127.0.0.1:{n.port} is up" in cls.gw.stderr_text(), timeout=30,
                                   what=f"gatewayd's connection to node {n.name}")
            cls.services = {}
            for kind, script in (("echo", ECHO), ("sleep", SLEEP), ("files", FILES)):
                svc = f"pssh-{kind}-{os.getpid() % 10000}"
                r = cls.gw.http("POST", "/v1/services", {"name": svc, "image": f"{host}/busybox:1.0",
                                                           "command": ["/bin/sh", "-c", script]})
                assert r.status == 201, r.body
                cls.services[kind] = svc
        except BaseException:
            for n in cls.nodes:
                print(n.log())
            cls._cleanup_nodes()
            raise

    @classmethod
    def start_nodes(cls):
        for name in "ab"[:cls.n_nodes]:
            cls.nodes.append(sshnode.SSHNode(name, cls.key, serve_args=cls.node_args).start())

    @classmethod
    def _cleanup_nodes(cls):
        for n in cls.nodes:
            n.stop()
        cls.rprocs.stop_all()
        cls.rtmp.cleanup()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls._cleanup_nodes()

    # ---- helpers ----

    def node_named(self, name):
        return next(n for n in self.nodes if f"127.0.0.1:{n.port}" == name)

    def submit(self, kind="echo", data=None, params=None, as_user=users.USER):
        body = {"data": data if data is not None else {}}
        if params is not None:
            body["params"] = params
        r = self.gw.http("POST", f"/v1/services/{self.services[kind]}/jobs", body, as_user=as_user)
        self.assertEqual(r.status, 201, r.body)
        return r.json["id"]

    def job(self, job_id):
        r = self.gw.http("GET", f"/v1/jobs/{job_id}", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def wait_status(self, job_id, statuses, timeout=60):
        statuses = (statuses,) if isinstance(statuses, str) else statuses
        last = {}

        def check():
            last["job"] = self.job(job_id)
            return last["job"]["status"] in statuses
        try:
            procs.wait_for(check, timeout=timeout, what=f"job {job_id} to reach {statuses}")
        except TimeoutError:
            print(self.gw.stderr_text()[-6000:])
            raise
        return last["job"]

    def log(self, job_id):
        return self.gw.http("GET", f"/v1/jobs/{job_id}/log", as_user=users.USER).body

    def wait_log(self, job_id, text, timeout=60):
        procs.wait_for(lambda: text in self.log(job_id), timeout=timeout, what=f"'{text}' in the log of {job_id}")

    def platform_json(self, job_id):
        with open(os.path.join(self.gw.state_dir, "jobs", job_id, "platform.json")) as f:
            return json.load(f)

    def node_of(self, job_id):
        return self.node_named(self.platform_json(job_id)["node"])

    def cancel_after(self, job_id):
        def cancel():
            if self.gw.alive():
                r = self.gw.http("PUT", f"/v1/jobs/{job_id}/cancel", as_user=users.USER)
                if r.status != 404:
                    self.wait_status(job_id, TERMINAL, timeout=30)
        self.addCleanup(cancel)

    def upload_saver(self):
        title = f"pssh-save-{os.getpid() % 10000}"
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode({"title": title, "entrypoint": "save.sh",
                                                                           "replace": "true"}),
                         save_tar(), as_user=users.USER, content_type="application/gzip")
        self.assertEqual(r.status, 201, r.body)
        self.addCleanup(lambda: self.gw.alive() and self.gw.http("DELETE", f"/v1/programs/{title}", as_user=users.USER))
        return title

    def assert_provider_run_on_node(self, title, result):
        """Provider acme's program TITLE run by one of its users succeeds on a node with RESULT;
        someone outside the provider does not find it."""
        r = self.gw.http("POST", f"/v1/programs/{title}/run?provider=acme", {}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        jid = r.json["id"]
        self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "SUCCEEDED", self.log(jid))
        self.assertIn(self.node_of(jid), self.nodes)
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER).json, result)
        self.assertEqual(self.gw.http("POST", f"/v1/programs/{title}/run?provider=acme", {}, as_user=users.OTHER).status, 404)

    def start_waiting_saver(self, seconds):
        """A program job that saves nothing and waits SECONDS for a save from outside: its id and
        token, once it waits."""
        title = self.upload_saver()
        r = self.gw.http("POST", f"/v1/programs/{title}/run", {"env": {"SAVE_WAIT": str(seconds)}}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        jid = r.json["id"]
        self.wait_log(jid, "waiting for a save")
        return jid, job_token(self.gw.state_dir, jid)

    def wait_gone_on_node(self, node, job_id, timeout=30):
        procs.wait_for(lambda: not os.path.exists(node.job_dir(job_id)), timeout=timeout,
                       what=f"job {job_id} removed from node {node.name}")


class RemotePlatform(RemoteBase):
    def test_job_runs_on_node(self):
        jid = self.submit("echo", data={"x": 1})
        j = self.wait_status(jid, TERMINAL)
        self.assertEqual(j["status"], "SUCCEEDED", j)
        r = self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json, {"data": {"x": 1}})
        r = self.gw.http("GET", f"/v1/jobs/{jid}/interim-results", as_user=users.USER)
        self.assertEqual(r.json, [{"step": 1}])
        log = self.log(jid)
        self.assertIn('{"x":1}', log.replace(" ", ""))
        self.assertIn("to stderr", log)
        # the node's worker made the sandbox's root once for the image (src/worker/sandbox-root.h)
        self.assertRegex(log, r"overlay / overlay ro,nosuid,nodev")
        # It ran on a node of the platform, and the node forgot it once its outcome was ours.
        node = self.node_of(jid)
        self.assertIn(node, self.nodes)
        self.wait_gone_on_node(node, jid)
        # The image went to that node over SFTP (installed under its final name only).
        self.assertTrue([x for x in os.listdir(node.images) if x.endswith(".squashfs")])
        self.assertFalse([x for x in os.listdir(node.images) if x.endswith(".partial")])

    def test_result_files_come_back(self):
        # the node's worker keeps them; they come back inline in `finished`, before exit.json
        jid = self.submit("files")
        j = self.wait_status(jid, TERMINAL)
        self.assertEqual(j["status"], "SUCCEEDED", j)
        base = f"/planqk/{self.services['files']}/{jid}"
        r = self.gw.http("GET", base + "/result", as_user=users.USER)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.json["_links"]), {"self", "status", "hello.txt", "r.bin"})
        f = self.gw.http("GET", base + "/result/r.bin", as_user=users.USER)
        self.assertEqual((f.status, len(f.raw)), (200, 200000))
        self.assertEqual(hashlib.sha256(f.raw).hexdigest(), r.json["sha"])
        self.assertEqual(self.gw.http("GET", base + "/result/hello.txt", as_user=users.USER).raw, b"hello\n")
        self.assertEqual(self.gw.http("GET", base + "/result/shadow", as_user=users.USER).status, 404)
        self.assertIn("Result file 'shadow' not kept: it is a symbolic link", self.log(jid))

    def program_layers(self):
        """The squashfs files of this gatewayd's programs (one per upload still kept)."""
        return {os.path.basename(p)[:-len(".squashfs")]
                for p in glob.glob(os.path.join(self.gw.state_dir, "programs", "*", "*.squashfs"))}

    def upload_program(self, title, version, replace=False):
        q = {"title": title, "entrypoint": "run.sh", "arguments": json.dumps({"n": 1})}
        if replace:
            q["replace"] = "true"
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode(q), program_tar(version),
                         as_user=users.USER, content_type="application/gzip")
        self.assertEqual(r.status, 201, r.body)
        return r

    def run_program(self, title, arguments, env=None):
        r = self.gw.http("POST", f"/v1/programs/{title}/run", {"arguments": arguments, "env": env or {}},
                         as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        return r.json["id"]

    def test_program_runs_on_node(self):
        """A program uploaded for an SSH-node platform: its squashfs goes to every node at upload
        (like an image's TRANSFER, by its layer id), its job runs on a node with the program at
        /program and its arguments both ways, result and log come back; another user gets 404.
        A node without the layer (wiped here) gets it with the job. Removal removes it from the
        nodes."""
        title = f"pssh-prog-{os.getpid() % 10000}"
        before = self.program_layers()
        self.upload_program(title, 1)
        self.addCleanup(lambda: self.gw.alive() and self.gw.http("DELETE", f"/v1/programs/{title}", as_user=users.USER))
        (layer,) = self.program_layers() - before
        for n in self.nodes:
            procs.wait_for(lambda: f"{layer}.squashfs" in os.listdir(n.images), timeout=30,
                           what=f"program layer {layer} on node {n.name}")
        jid = self.run_program(title, {"n": 2})
        j = self.wait_status(jid, TERMINAL)
        self.assertEqual(j["status"], "SUCCEEDED", (j, self.log(jid)))
        self.assertEqual(j.get("program"), title)
        self.assertIn(self.node_of(jid), self.nodes)
        r = self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER)
        self.assertEqual(r.json, {"version": 1, "args": {"n": 2}, "file": {"n": 2}, "own": "data of 1"})
        self.assertIn("program 1 on the node", self.log(jid))
        # the serverless view of the same job
        r = self.gw.http("GET", f"/api/v1/jobs/{jid}/result/", as_user=users.USER)
        self.assertEqual((r.status, json.loads(r.json["result"])["version"]), (200, 1), r.body)

        # someone else's program does not exist for them
        for method, path in (("GET", f"/v1/programs/{title}"), ("POST", f"/v1/programs/{title}/run")):
            r = self.gw.http(method, path, {} if method == "POST" else None, as_user=users.OTHER)
            self.assertEqual(r.status, 404, r.body)
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}", as_user=users.OTHER).status, 404)

        # nodes that lack it (as a node added later would): the job brings it along
        for n in self.nodes:
            os.unlink(os.path.join(n.images, f"{layer}.squashfs"))
        jid = self.run_program(title, {"n": 3})
        self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "SUCCEEDED", self.log(jid))
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER).json["args"], {"n": 3})
        self.assertIn(f"{layer}.squashfs", os.listdir(self.node_of(jid).images))

        r = self.gw.http("DELETE", f"/v1/programs/{title}", as_user=users.USER)
        self.assertEqual(r.status, 204, r.body)
        for n in self.nodes:
            procs.wait_for(lambda: f"{layer}.squashfs" not in os.listdir(n.images), timeout=15,
                           what=f"program layer {layer} removed from node {n.name}")

    def test_program_on_its_own_image_on_node(self):
        """A program on an image of its own (docs/programs.md, "Images of programs") runs on a node
        on that image, pulled there like a service's: its entrypoint sees the image's env; one
        without an artifact runs the image's own entrypoint (echo hi) in its working directory."""
        import io
        import tarfile
        title = f"pssh-progimg-{os.getpid() % 10000}"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b'#!/bin/sh\necho "greeting=$GREETING cwd=$(pwd)"\n'
            ti = tarfile.TarInfo("which.sh")
            ti.size, ti.mode = len(data), 0o755
            t.addfile(ti, io.BytesIO(data))
        for t, body, q in ((title, buf.getvalue(), {"entrypoint": "which.sh"}), (title + "-only", None, {})):
            q.update(title=t, image="transfer:1.0")
            r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode(q), body, as_user=users.USER,
                             content_type="application/gzip")
            self.assertEqual(r.status, 201, r.body)
            self.assertEqual(r.json["image"], f"{self.registry.host}/transfer:1.0")
            self.addCleanup(lambda t=t: self.gw.alive() and self.gw.http("DELETE", f"/v1/programs/{t}", as_user=users.USER))
        jid = self.run_program(title, {})
        self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "SUCCEEDED", self.log(jid))
        self.assertIn(self.node_of(jid), self.nodes)
        self.assertIn("greeting=hello world cwd=/program", self.log(jid))
        jid = self.run_program(title + "-only", {})
        self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "SUCCEEDED", self.log(jid))
        self.assertRegex(self.log(jid), r"(?m)^hi$")

    def test_program_reupload_on_nodes(self):
        """Uploading a title again with replace=true: new jobs run the new code on the nodes,
        the job that runs keeps the upload it started with, whose layer goes (here and on the
        nodes) once it has ended."""
        title = f"pssh-re-{os.getpid() % 10000}"
        before = self.program_layers()
        self.upload_program(title, 1)
        self.addCleanup(lambda: self.gw.alive() and self.gw.http("DELETE", f"/v1/programs/{title}", as_user=users.USER))
        (old,) = self.program_layers() - before
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode({"title": title, "entrypoint": "run.sh"}),
                         program_tar(2), as_user=users.USER, content_type="application/gzip")
        self.assertEqual(r.status, 409, r.body)
        # an old job that is still running (it reads its own file after a while) when the new upload lands
        a = self.run_program(title, {"n": 1}, env={"PSLEEP": "2"})
        self.wait_log(a, "program 1 on the node")
        self.upload_program(title, 2, replace=True)
        self.assertEqual(len(self.program_layers() - before - {old}), 1, self.program_layers())
        self.assertIn(old, self.program_layers())   # its job runs
        b = self.run_program(title, {"n": 2})
        self.assertEqual(self.wait_status(a, TERMINAL)["status"], "SUCCEEDED", self.log(a))
        self.assertEqual(self.wait_status(b, TERMINAL)["status"], "SUCCEEDED", self.log(b))
        ra, rb = (self.gw.http("GET", f"/v1/jobs/{x}/result", as_user=users.USER) for x in (a, b))
        self.assertEqual((ra.json["version"], ra.json["own"]), (1, "data of 1"), ra.body)
        self.assertEqual((rb.json["version"], rb.json["own"]), (2, "data of 2"), rb.body)
        # the old upload is no longer used: gone here and from the nodes
        procs.wait_for(lambda: old not in self.program_layers(), timeout=15, what="the old layer removed")
        for n in self.nodes:
            procs.wait_for(lambda: f"{old}.squashfs" not in os.listdir(n.images), timeout=15,
                           what=f"old layer removed from node {n.name}")

    def test_provider_program_on_node(self):
        """A provider's program (docs/programs.md "Providers") on SSH nodes: uploaded by the
        provider's admin with files only the uploader could read in the artifact, run by one of its
        users as that user (the uid inside), from the layer every node has by its id."""
        title = f"pssh-shared-{os.getpid() % 10000}"
        script = ('#!/bin/sh\nwhile read k v rest; do [ "$k" = "Uid:" ] && uid=$v; done < /proc/self/status\n'
                  'echo "PlanQK:Job:Result: {\\"uid\\": $uid, \\"own\\": \\"$(cat /program/data.txt)\\"}"\n')
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            for name, data, mode in (("run.sh", script, 0o700), ("data.txt", "shared", 0o600)):
                ti = tarfile.TarInfo(name)
                ti.mode, ti.size = mode, len(data.encode())
                t.addfile(ti, io.BytesIO(data.encode()))
        before = self.program_layers()
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode({"title": title, "entrypoint": "run.sh",
                                                                           "provider": "acme"}),
                         buf.getvalue(), as_user=users.ADMIN, content_type="application/gzip")
        self.assertEqual(r.status, 201, r.body)
        self.addCleanup(lambda: self.gw.alive() and self.gw.http("DELETE", f"/v1/programs/{title}?provider=acme",
                                                                 as_user=users.ADMIN))
        (layer,) = self.program_layers() - before
        for n in self.nodes:
            procs.wait_for(lambda: f"{layer}.squashfs" in os.listdir(n.images), timeout=30,
                           what=f"program layer {layer} on node {n.name}")
        self.assert_provider_run_on_node(title, {"uid": users.uid_of(users.USER), "own": "shared"})

    def test_provider_program_on_its_own_image_on_node(self):
        """A provider's program on an image of its own (ProgramProviders and ProgramImages
        together) on SSH nodes: uploaded by the provider's admin, run by one of its users as that
        user on the program's image (its env), pulled on the node as that user's."""
        title = f"pssh-shimg-{os.getpid() % 10000}"
        script = ('#!/bin/sh\nwhile read k v rest; do [ "$k" = "Uid:" ] && uid=$v; done < /proc/self/status\n'
                  'echo "PlanQK:Job:Result: {\\"uid\\": $uid, \\"greeting\\": \\"$GREETING\\"}"\n')
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as t:
            ti = tarfile.TarInfo("run.sh")
            ti.mode, ti.size = 0o700, len(script.encode())
            t.addfile(ti, io.BytesIO(script.encode()))
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode({"title": title, "entrypoint": "run.sh",
                                                                           "provider": "acme", "image": "transfer:1.0"}),
                         buf.getvalue(), as_user=users.ADMIN, content_type="application/gzip")
        self.assertEqual(r.status, 201, r.body)
        self.addCleanup(lambda: self.gw.alive() and self.gw.http("DELETE", f"/v1/programs/{title}?provider=acme",
                                                                 as_user=users.ADMIN))
        self.assertEqual((r.json["provider"], r.json["image"]), ("acme", f"{self.registry.host}/transfer:1.0"))
        self.assert_provider_run_on_node(title, {"uid": users.uid_of(users.USER), "greeting": "hello world"})

    def test_save_result_from_inside_the_job_on_node(self):
        """save_result inside a program job on a node reaches the worker's endpoint in the job's
        own network namespace there (ENV_JOB_GATEWAY_HOST is the job's loopback on every
        platform); the saved result travels back with the job's events and is the job's result
        on /v1/jobs and /api/v1/jobs — the last save, over the marker's."""
        title = self.upload_saver()
        jid = self.run_program(title, {"n": 7})
        j = self.wait_status(jid, TERMINAL)
        log = self.log(jid)
        self.assertEqual(j["status"], "SUCCEEDED", log)
        self.assertIn(self.node_of(jid), self.nodes)
        assert_saved_from_inside(self, jid, log, {"n": 7})

    def test_save_result_through_gatewayd_on_node(self):
        """gatewayd's own POST /api/v1/jobs/{id}/result/ (the job's token, from outside the job)
        for a job on a node: forwarded to the node, where the worker takes it as the job's result
        like a save from inside; a token that is not the job's is 401 and nothing is sent."""
        title = self.upload_saver()
        jid = self.run_program(title, {"n": 1}, env={"SAVE_WAIT": "3"})
        self.cancel_after(jid)
        self.wait_log(jid, "waiting for a save")
        token = job_token(self.gw.state_dir, jid)
        self.assertEqual(save_via_gatewayd(self.gw, jid, "0" * 64, {"x": 1})[0], 401)
        self.assertEqual(save_via_gatewayd(self.gw, jid, token, {"from": "outside"}),
                         (200, {"message": "Result saved."}))
        j = self.wait_status(jid, TERMINAL)
        self.assertEqual(j["status"], "SUCCEEDED", self.log(jid))
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER).json, {"from": "outside"})
        r = self.gw.http("GET", f"/api/v1/jobs/{jid}/result/", as_user=users.USER)
        self.assertEqual(json.loads(r.json["result"]), {"from": "outside"}, r.body)
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "jobs", jid, "saved-result.json")))
        self.assertEqual(save_via_gatewayd(self.gw, jid, token, {"late": 1})[0], 409)

    def test_pull_transfers_to_every_node(self):
        """A pull for the remote platform: converted here, then (TRANSFER) the squashfs and a
        Shifter-format .meta go to every node; READY once they are there. Removing the image
        removes it from the nodes."""
        r = self.gw.http("POST", "/v1/images/pull", {"reference": f"{self.registry.host}/transfer:1.0",
                                                      "platform": "cluster"}, as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        image_id = r.json["id"]
        self.gw.http("GET", f"/v1/images/{image_id}/progress", as_user=users.USER)   # until the pull ends
        img = self.gw.http("GET", f"/v1/images/{image_id}", as_user=users.USER).json
        self.assertEqual(img["status"], "READY", img)
        self.assertIn(f"image {image_id} is on every node that is up", self.gw.stderr_text())
        local = os.path.join(self.gw.state_dir, "images", f"{image_id}.squashfs")
        for n in self.nodes:
            names = os.listdir(n.images)
            self.assertIn(f"{image_id}.squashfs", names)
            self.assertIn(f"{image_id}.meta", names)
            self.assertFalse([x for x in names if x.endswith(".partial")], names)
            self.assertEqual(os.path.getsize(os.path.join(n.images, f"{image_id}.squashfs")), os.path.getsize(local))
            with open(os.path.join(n.images, f"{image_id}.meta")) as f:
                meta = f.read().splitlines()
            self.assertEqual(meta[0], "FORMAT: squashfs")
            self.assertIn("ENTRY: /bin/sh", meta)
            self.assertIn("CMD: -c echo hi", meta)
            self.assertIn("WORKDIR: /tmp", meta)
            self.assertIn("ENV: GREETING=hello world", meta)
        r = self.gw.http("DELETE", f"/v1/images/{image_id}", as_user=users.ADMIN)
        self.assertIn(r.status, (200, 204), r.body)
        for n in self.nodes:
            procs.wait_for(lambda: not [x for x in os.listdir(n.images) if x.startswith(image_id)], timeout=15,
                           what=f"image {image_id} removed from node {n.name}")

    def test_jobs_spread_by_slots(self):
        # One slot per node: two jobs run at once, one on each; a third waits PENDING for a slot.
        a = self.submit("sleep", params={"sleep": 3})
        b = self.submit("sleep", params={"sleep": 3})
        self.cancel_after(a)
        self.cancel_after(b)
        self.wait_log(a, "sleeping 3")
        self.wait_log(b, "sleeping 3")
        self.assertNotEqual(self.platform_json(a)["node"], self.platform_json(b)["node"])
        c = self.submit("echo", data={"c": 3})
        self.assertEqual(self.job(c)["status"], "PENDING")
        self.assertFalse(os.path.exists(os.path.join(self.gw.state_dir, "jobs", c, "platform.json")))
        for jid in (a, b, c):
            self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "SUCCEEDED")
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{c}/result", as_user=users.USER).json, {"data": {"c": 3}})

    def test_drain_and_resume_node(self):
        """An admin drains a node (HTTP, polkit org.gatewayd.manage-platforms): it shows as
        draining, takes no new job — both go to the other node, one after the other — and takes
        jobs again once resumed. A user may not drain."""
        a, b = self.nodes[0], self.nodes[1]
        path = f"/v1/platforms/cluster/nodes/127.0.0.1:{a.port}"
        r = self.gw.http("POST", path + "/drain", as_user=users.USER)
        self.assertEqual(r.status, 403, r.body)
        r = self.gw.http("POST", path + "/drain", as_user=users.ADMIN)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["state"], "draining", r.json)
        self.addCleanup(lambda: self.gw.http("POST", path + "/resume", as_user=users.ADMIN))
        nodes = {n["name"]: n for n in self.gw.http("GET", "/v1/platforms/cluster", as_user=users.USER).json["nodes"]}
        self.assertEqual(nodes[f"127.0.0.1:{a.port}"]["state"], "draining")
        self.assertEqual(nodes[f"127.0.0.1:{b.port}"]["state"], "up")
        jobs = [self.submit("echo", data={"n": k}) for k in range(2)]
        for jid in jobs:
            self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "SUCCEEDED")
            self.assertIs(self.node_of(jid), b)
        r = self.gw.http("POST", path + "/resume", as_user=users.ADMIN)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json["state"], "up", r.json)
        # Both nodes take jobs again: two long jobs at once land on both.
        x, y = self.submit("sleep", params={"sleep": 3}), self.submit("sleep", params={"sleep": 3})
        self.cancel_after(x)
        self.cancel_after(y)
        self.wait_log(x, "sleeping 3")
        self.wait_log(y, "sleeping 3")
        self.assertEqual({self.node_of(x), self.node_of(y)}, {a, b})
        for jid in (x, y):
            self.assertEqual(self.wait_status(jid, TERMINAL)["status"], "SUCCEEDED")

    def test_cancel_remote_job(self):
        jid = self.submit("sleep", params={"sleep": 60})
        self.wait_log(jid, "sleeping 60")
        r = self.gw.http("PUT", f"/v1/jobs/{jid}/cancel", as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        self.assertEqual(self.wait_status(jid, TERMINAL, timeout=30)["status"], "CANCELLED")
        self.wait_gone_on_node(self.node_of(jid), jid)

    def test_connection_killed_mid_job(self):
        """The job's SSH connection dies (its sshd processes are SIGKILLed): gatewayd reconnects,
        follows the job from the last event it had, the job goes on — the same worker, one run —
        and ends with its result."""
        jid = self.submit("sleep", params={"sleep": 3})
        self.cancel_after(jid)
        self.wait_log(jid, "sleeping 3")
        node = self.node_of(jid)
        worker = node.worker_pid(jid)
        self.assertIsNotNone(worker)
        victims = session_processes(node.sshd.pid)
        self.assertTrue(victims)
        ups = self.gw.stderr_text().count(f"node 127.0.0.1:{node.port} is up")
        kill_all(victims)
        # The job goes on without its connection: the same worker holds its spool on the node.
        self.assertEqual(node.worker_pid(jid), worker)
        j = self.wait_status(jid, TERMINAL)
        self.assertEqual(j["status"], "SUCCEEDED", j)
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER).json, {"slept": 3})
        self.assertEqual(self.log(jid).count("sleeping 3"), 1)
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}/interim-results", as_user=users.USER).json,
                         [{"woke": True}])
        # It was started once: one start on a node, and the worker seen before the loss ran it.
        self.assertEqual(self.gw.stderr_text().count(f"Job {jid}: starting on node"), 1)
        # ... and gatewayd got the result over a new connection.
        self.assertGreater(self.gw.stderr_text().count(f"node 127.0.0.1:{node.port} is up"), ups)

    def test_gatewayd_killed_mid_job(self):
        jid = self.submit("sleep", params={"sleep": 4})
        self.cancel_after(jid)
        self.wait_log(jid, "sleeping 4")
        node = self.node_of(jid)
        worker = node.worker_pid(jid)
        self.gw.kill(signal.SIGKILL)
        self.assertEqual(node.worker_pid(jid), worker)   # the job outlives gatewayd
        self.gw.start()
        j = self.wait_status(jid, TERMINAL)
        self.assertEqual(j["status"], "SUCCEEDED", j)
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER).json, {"slept": 4})
        # Followed again from where the spool was: the log holds each line once.
        log = self.log(jid)
        self.assertEqual(log.count("sleeping 4"), 1, log)
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}/interim-results", as_user=users.USER).json,
                         [{"woke": True}])
        self.wait_gone_on_node(node, jid)


class RemoteFullNode(RemoteBase):
    """A node whose image directory is a 2 MiB tmpfs (mounted before gatewayd connects: serve
    and sftp-server hold the directory they started in)."""

    @classmethod
    def start_nodes(cls):
        super().start_nodes()
        uid, gid = sshnode.ensure_account()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=2m,mode=0755,uid={uid},gid={gid}", "tmpfs",
                        cls.nodes[1].images], check=True)
        cls.mounted = cls.nodes[1].images

    @classmethod
    def _cleanup_nodes(cls):
        if getattr(cls, "mounted", None):
            subprocess.run(["umount", "-l", cls.mounted])
        super()._cleanup_nodes()

    def test_transfer_to_full_node_fails(self):
        """The transfer to the full node fails: the pull ends FAILURE with a message naming the
        node and the full disk; nothing is left there under a final name; gatewayd serves on."""
        full = self.nodes[1]
        r = self.gw.http("POST", "/v1/images/pull", {"reference": f"{self.registry.host}/big:1.0"}, as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        image_id = r.json["id"]
        self.gw.http("GET", f"/v1/images/{image_id}/progress", as_user=users.USER)
        img = self.gw.http("GET", f"/v1/images/{image_id}", as_user=users.USER).json
        self.assertEqual(img["status"], "FAILURE", img)
        self.assertIn(f"node 127.0.0.1:{full.port}", img["message"])
        self.assertIn("full", img["message"])
        self.assertEqual([x for x in os.listdir(full.images) if x.startswith(image_id)], [])
        self.assertServing()


class RemoteSlotFreedAtSandboxEnd(RemoteBase):
    """One node with one slot, whose workers hold each fsync() of their main thread for
    FSYNC_DELAY seconds (harness/slowfsync.py): once a job's sandbox has ended (FINISHING), the
    node's slot goes to the next job while the first one's outcome is still being stored."""
    n_nodes = 1
    FSYNC_DELAY = 3

    @classmethod
    def start_nodes(cls):
        cls.wrap, path = slowfsync.worker(sshnode.worker_binary(), cls.FSYNC_DELAY)
        cls.node_args = RemoteBase.node_args + [f"--worker={path}"]
        super().start_nodes()

    @classmethod
    def _cleanup_nodes(cls):
        super()._cleanup_nodes()
        if getattr(cls, "wrap", None):
            cls.wrap.cleanup()

    def node_running(self):
        return self.gw.http("GET", "/v1/platforms/cluster", as_user=users.USER).json["nodes"][0]["running"]

    def test_next_job_starts_while_the_outcome_is_stored(self):
        # one after the other: two PENDING jobs may reach the node in either order
        first = self.submit("echo", data={"n": 1})
        self.wait_status(first, ("RUNNING",) + TERMINAL, timeout=60)
        second = self.submit("echo", data={"n": 2})
        self.wait_status(second, ("RUNNING",) + TERMINAL, timeout=60)
        self.assertEqual(self.job(first)["status"], "RUNNING",
                         "the second job started only once the first one's outcome was stored")
        self.assertLessEqual(self.node_running(), 1)
        for jid, n in ((first, 1), (second, 2)):
            self.assertEqual(self.wait_status(jid, TERMINAL, timeout=120)["status"], "SUCCEEDED")
            self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER).json, {"data": {"n": n}})
        self.assertEqual(self.node_running(), 0)


class RemoteAndLocal(RemoteBase):
    """A site with a local platform besides the SSH nodes: the same image pulled for both is two
    records, each READY on its platform (converted once, in the image directory they share; the
    nodes get the cluster's copy). Removing one platform's copy leaves the other's."""
    n_nodes = 1
    extra_platforms = {"local": {"accesstype": "local"}}

    def pull_ready(self, ref, platform):
        r = self.gw.http("POST", "/v1/images/pull", {"reference": ref, "platform": platform}, as_user=users.USER)
        self.assertIn(r.status, (200, 202), r.body)
        self.assertEqual(r.json["platform"], platform, r.body)
        image_id = r.json["id"]
        procs.wait_for(lambda: self.record(image_id, platform).get("status") in ("READY", "FAILURE"), timeout=60,
                       what=f"the pull for {platform} to end")
        self.assertEqual(self.record(image_id, platform)["status"], "READY")
        return image_id

    def record(self, image_id, platform):
        r = self.gw.http("GET", f"/v1/images/{image_id}?platform={platform}", as_user=users.USER)
        return r.json if r.status == 200 else {}

    def on_node(self, image_id):
        return sorted(x for x in os.listdir(self.nodes[0].images) if x.startswith(image_id))

    def test_same_image_for_local_and_nodes(self):
        ref = f"{self.registry.host}/transfer:1.0"
        image_id = self.pull_ready(ref, "local")
        self.assertEqual(self.on_node(image_id), [], "the local platform's pull deploys nothing")
        self.assertEqual(self.pull_ready(ref, "cluster"), image_id)
        self.assertEqual(self.on_node(image_id), [f"{image_id}.meta", f"{image_id}.squashfs"])
        log = self.gw.stderr_text()
        self.assertEqual(log.count(f"Image {image_id} ({ref}): CONVERSION"), 1, "converted once")
        self.assertIn(f"image {image_id} is on every node that is up", log)
        self.assertEqual(self.record(image_id, "local")["status"], "READY")
        local = os.path.join(self.gw.state_dir, "images", f"{image_id}.squashfs")

        # The nodes' copy goes with the cluster's record; the local one stays.
        r = self.gw.http("DELETE", f"/v1/images/{image_id}?platform=cluster", as_user=users.ADMIN)
        self.assertEqual(r.status, 204, r.body)
        procs.wait_for(lambda: not self.on_node(image_id), timeout=15, what="the image removed from the node")
        self.assertEqual(self.record(image_id, "cluster"), {})
        self.assertEqual(self.record(image_id, "local")["status"], "READY")
        self.assertTrue(os.path.exists(local))

        # Back on the nodes; then the local record goes, and the file the cluster uses stays.
        self.pull_ready(ref, "cluster")
        self.assertEqual(self.on_node(image_id), [f"{image_id}.meta", f"{image_id}.squashfs"])
        r = self.gw.http("DELETE", f"/v1/images/{image_id}?platform=local", as_user=users.ADMIN)
        self.assertEqual(r.status, 204, r.body)
        self.assertEqual(self.record(image_id, "local"), {})
        self.assertEqual(self.record(image_id, "cluster")["status"], "READY")
        self.assertTrue(os.path.exists(local))
        self.assertEqual(self.on_node(image_id), [f"{image_id}.meta", f"{image_id}.squashfs"])
        ups = self.gw.stderr_text().count(f"node 127.0.0.1:{self.nodes[0].port} is up")
        self.gw.restart()
        self.assertEqual(self.record(image_id, "cluster")["status"], "READY")
        self.assertEqual(self.record(image_id, "local"), {})
        # The class's end stops gatewayd: not in the middle of its SSH handshake with the node,
        # where Debian 12's libssh2 1.10 leaks (LeakSanitizer, libssh2's own allocations).
        procs.wait_for(lambda: self.gw.stderr_text().count(f"node 127.0.0.1:{self.nodes[0].port} is up") > ups,
                       timeout=30, what="the node to be up again")


    def test_concurrent_pulls_for_local_and_nodes(self):
        """Pulls of one image for both platforms at once: one conversion; the nodes get their copy
        of it, and a job runs there from it."""
        images.push_image(self.registry, "together", "1.0", images.busybox_image(labels={"for": "together"}))
        ref = f"{self.registry.host}/together:1.0"
        answers = {}
        workers = re.compile(r"Started worker \d+: \S+ pull$", re.M)
        before = len(workers.findall(self.gw.stderr_text()))

        def pull(platform):
            answers[platform] = self.gw.http("POST", "/v1/images/pull", {"reference": ref, "platform": platform},
                                             as_user=users.USER)
        threads = [threading.Thread(target=pull, args=(platform,)) for platform in ("local", "cluster")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for platform, r in answers.items():
            self.assertIn(r.status, (200, 202), r.body)
        image_id = answers["local"].json["id"]
        self.assertEqual(answers["cluster"].json["id"], image_id)
        for platform in ("local", "cluster"):
            procs.wait_for(lambda: self.record(image_id, platform).get("status") in ("READY", "FAILURE"), timeout=60,
                           what=f"the pull for {platform} to end")
            self.assertEqual(self.record(image_id, platform)["status"], "READY", platform)
        self.assertEqual(len(workers.findall(self.gw.stderr_text())) - before, 3, "two resolves, one conversion")
        self.assertEqual(self.gw.stderr_text().count(f"Image {image_id} ({ref}): CONVERSION"), 1, "converted once")
        self.assertEqual(self.on_node(image_id), [f"{image_id}.meta", f"{image_id}.squashfs"])
        svc = f"pssh-together-{os.getpid() % 10000}"
        r = self.gw.http("POST", "/v1/services", {"name": svc, "image": ref, "command": ["/bin/sh", "-c", ECHO]})
        self.assertEqual(r.status, 201, r.body)
        r = self.gw.http("POST", f"/v1/services/{svc}/jobs", {"data": {}}, as_user=users.USER)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(self.wait_status(r.json["id"], ("SUCCEEDED", "FAILED", "CANCELLED"))["status"], "SUCCEEDED")


class RemoteNodeLost(RemoteBase):
    def restart_sshd(self, n):
        config = os.path.join(n.dir, "sshd", "sshd_config")
        log = open(os.path.join(n.dir, "sshd2.log"), "wb")
        p = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config], stdout=subprocess.DEVNULL, stderr=log)

        def stop():
            kill_all(session_processes(p.pid))
            p.kill()
            p.wait()
            log.close()
        self.addCleanup(stop)
        procs.wait_for(lambda: b"Server listening" in open(log.name, "rb").read() or p.poll() is not None,
                       what="sshd to listen again")
        return p

    def test_node_lost(self):
        """A node that stays away longer than NodeLostTimeout: its job ends FAILED (NODE_LOST),
        the next job goes to the other node; when it comes back it is used again."""
        first = self.submit("sleep", params={"sleep": 60})
        second = self.submit("sleep", params={"sleep": 60})
        self.cancel_after(first)
        self.wait_log(first, "sleeping 60")
        self.wait_log(second, "sleeping 60")
        lost = self.node_of(second)
        kept = self.node_of(first)
        self.assertIsNot(lost, kept)
        worker = lost.worker_pid(second)
        sessions = session_processes(lost.sshd.pid)
        lost.sshd.kill()
        lost.sshd.wait()
        kill_all(sessions)
        j = self.wait_status(second, TERMINAL, timeout=30)
        self.assertEqual(j["status"], "FAILED", j)
        self.assertEqual(j["error"]["code"], "NODE_LOST", j)
        self.assertIn("NodeLostTimeout", j["error"]["message"])
        self.assertIn(f"127.0.0.1:{lost.port}", j["error"]["message"])
        # The kept node's job is not touched; once its slot is free, new jobs run there.
        self.assertEqual(self.job(first)["status"], "RUNNING")
        self.gw.http("PUT", f"/v1/jobs/{first}/cancel", as_user=users.USER)
        self.wait_status(first, TERMINAL, timeout=30)
        nxt = self.submit("echo", data={"n": 1})
        self.assertEqual(self.wait_status(nxt, TERMINAL)["status"], "SUCCEEDED")
        self.assertIs(self.node_of(nxt), kept)
        # An image pulled while the node is away goes to the nodes that are up ...
        r = self.gw.http("POST", "/v1/images/pull", {"reference": f"{self.registry.host}/transfer:1.0"},
                         as_user=users.USER)
        image_id = r.json["id"]
        self.gw.http("GET", f"/v1/images/{image_id}/progress", as_user=users.USER)
        self.assertEqual(self.gw.http("GET", f"/v1/images/{image_id}", as_user=users.USER).json["status"], "READY")
        self.assertIn(f"{image_id}.meta", os.listdir(kept.images))
        self.assertNotIn(f"{image_id}.meta", os.listdir(lost.images))
        # ... and so does a program uploaded meanwhile
        title = f"pssh-away-{os.getpid() % 10000}"
        r = self.gw.http("POST", "/v1/programs?" + urllib.parse.urlencode({"title": title, "entrypoint": "run.sh"}),
                         program_tar(1), as_user=users.USER, content_type="application/gzip")
        self.assertEqual(r.status, 201, r.body)
        self.addCleanup(lambda: self.gw.alive() and self.gw.http("DELETE", f"/v1/programs/{title}", as_user=users.USER))
        (layer,) = [os.path.basename(p) for p in glob.glob(os.path.join(self.gw.state_dir, "programs", "*", "*.squashfs"))]
        procs.wait_for(lambda: layer in os.listdir(kept.images), timeout=30, what="the program layer on the node that is up")
        self.assertNotIn(layer, os.listdir(lost.images))
        # The lost node comes back: the job gatewayd gave up on is stopped there, not finished,
        # and the node is brought up to date with the image and the program.
        self.restart_sshd(lost)
        procs.wait_for(lambda: f"{image_id}.meta" in os.listdir(lost.images), timeout=30,
                       what="the image to reach the node that came back")
        procs.wait_for(lambda: layer in os.listdir(lost.images), timeout=30,
                       what="the program layer to reach the node that came back")
        # (It would sleep for a minute: gone within 30 s, it was stopped, then removed.)
        self.assertIsNotNone(worker)
        self.wait_gone_on_node(lost, second)
        self.assertFalse(os.path.exists(f"/proc/{worker}/stat") and lost.worker_pid(second) == worker)


class RemoteNodeAway(RemoteBase):
    n_nodes = 1

    def test_save_result_while_node_away(self):
        """gatewayd's own save route for a job whose node cannot be reached: 503 at once (no
        waiting for the node), gatewayd keeps serving; once the job is given up (NODE_LOST), 409."""
        jid, token = self.start_waiting_saver(8)
        (node,) = self.nodes
        sessions = session_processes(node.sshd.pid)
        node.sshd.kill()
        node.sshd.wait()
        kill_all(sessions)
        answers = []
        procs.wait_for(lambda: answers.append(save_via_gatewayd(self.gw, jid, token, {"x": 1})) or answers[-1][0] != 200,
                       timeout=10, what="gatewayd to notice the node is away")
        self.assertEqual(answers[-1], (503, {"message": "The job's node cannot be reached now: try again, "
                                                        "or save the result from inside the job."}))
        j = self.wait_status(jid, TERMINAL, timeout=30)
        self.assertEqual(j["error"]["code"], "NODE_LOST", j)
        self.assertEqual(save_via_gatewayd(self.gw, jid, token, {"x": 1})[0], 409)
        self.assertEqual(self.gw.http("GET", "/v1/jobs", as_user=users.USER).status, 200)


class RemoteNodeSilent(RemoteBase):
    n_nodes = 1

    def test_save_result_node_does_not_answer(self):
        """gatewayd's own save route for a job whose node holds its connection but does not answer
        (its serve process stopped): 504 after the save's timeout, not a wait until the node is
        given up; gatewayd serves meanwhile, and the node's late answer is taken quietly."""
        jid, token = self.start_waiting_saver(40)
        (node,) = self.nodes
        serves = [pid for pid in descendants(node.activate.pid) if cmdline(pid).split(b"\0")[1:2] == [b"serve"]]
        self.assertTrue(serves, "the node's serve process")
        for pid in serves:
            os.kill(pid, signal.SIGSTOP)
        try:
            result = {}
            saver = threading.Thread(target=lambda: result.update(answer=save_via_gatewayd(self.gw, jid, token, {"x": 1})))
            t0 = time.monotonic()
            saver.start()
            self.assertEqual(self.gw.http("GET", "/v1/status").status, 200)
            saver.join(60)
            waited = time.monotonic() - t0
            self.assertEqual(result.get("answer"), (504, {"message": "The job's node did not answer in time: try again, "
                                                                     "or save the result from inside the job."}))
            self.assertGreater(waited, 10)
        finally:
            for pid in serves:
                os.kill(pid, signal.SIGCONT)
        self.assertEqual(save_via_gatewayd(self.gw, jid, token, {"y": 2})[0], 200)
        self.gw.http("PUT", f"/v1/jobs/{jid}/cancel", as_user=users.USER)
        self.wait_status(jid, TERMINAL, timeout=30)
        self.assertEqual(self.gw.http("GET", "/v1/jobs", as_user=users.USER).status, 200)


class RemoteSystemdNode(RemoteBase):
    """A node booted with systemd and the real node units (harness SystemdNode): the job is the
    unit gateway-job-<id> of the node's service manager; it survives killing its SSH connection
    and gatewayd's kill -9, and its result arrives once."""
    n_nodes = 1

    @classmethod
    def start_nodes(cls):
        from harness.install import Destdir
        if not shutil.which("systemd-nspawn"):
            raise unittest.SkipTest("systemd-nspawn not installed")
        cls.dest = Destdir()
        cls.nodes.append(sshnode.SystemdNode("sd", cls.key, cls.dest.path).start())

    @classmethod
    def _cleanup_nodes(cls):
        try:
            super()._cleanup_nodes()
        finally:
            if getattr(cls, "dest", None):
                cls.dest.cleanup()

    def unit_state(self, job):
        return self.nodes[0].run(["systemctl", "is-active", f"gateway-job-{job}.service"], check=False).stdout.strip()

    def kill_connections(self):
        """SIGKILL to the per-connection processes of the node's sshd (children of its main pid)."""
        node = self.nodes[0]
        main = node.run(["systemctl", "show", "-P", "MainPID", "gwnode-sshd.service"]).stdout.strip()
        kids = node.run(["sh", "-c", f"cat /proc/{main}/task/*/children"]).stdout.split()
        self.assertTrue(kids)
        node.run(["kill", "-9"] + kids)

    def test_job_survives_connection_and_gatewayd(self):
        jid = self.submit("sleep", params={"sleep": 5})
        self.cancel_after(jid)
        self.wait_log(jid, "sleeping 5")
        self.assertEqual(self.unit_state(jid), "active")
        self.kill_connections()
        self.gw.kill(signal.SIGKILL)
        self.assertEqual(self.unit_state(jid), "active")
        self.gw.start()
        j = self.wait_status(jid, TERMINAL)
        self.assertEqual(j["status"], "SUCCEEDED", j)
        self.assertEqual(self.gw.http("GET", f"/v1/jobs/{jid}/result", as_user=users.USER).json, {"slept": 5})
        self.assertEqual(self.log(jid).count("sleeping 5"), 1)
        # Removed on the node once collected; the unit was collected when it ended.
        self.wait_gone_on_node(self.nodes[0], jid)
        self.assertIn(self.unit_state(jid), ("inactive", "unknown"))


class RemoteWrongHostKey(RemoteBase):
    n_nodes = 1
    wrong_host_key = True

    def test_node_refused(self):
        """The node presents a host key that ssh.knownHosts does not list for it: refused with a
        clear log line, not logged in to (sshd saw no authentication), and jobs wait PENDING."""
        n = self.nodes[0]
        procs.wait_for(lambda: "refused" in self.gw.stderr_text(), timeout=15, what="the node to be refused")
        err = self.gw.stderr_text()
        self.assertIn(f"127.0.0.1:{n.port}", err)
        self.assertIn("HOST KEY MISMATCH", err)
        jid = self.submit("echo")
        self.cancel_after(jid)
        # The image is pulled here; then the job waits for a node it may use.
        procs.wait_for(lambda: [i for i in self.gw.http("GET", "/v1/images", as_user=users.USER).json["images"]
                                if i["status"] == "READY"], timeout=30, what="the image to be READY")
        procs.wait_for(lambda: f"Job {jid}: waiting for a free slot" in self.gw.stderr_text(), timeout=15,
                       what="the job to wait for a node")
        self.assertEqual(self.job(jid)["status"], "PENDING")
        with open(n.sshd_log_path, "rb") as f:
            self.assertNotIn(b"Accepted publickey", f.read())


if __name__ == "__main__":
    unittest.main()
