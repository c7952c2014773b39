"""gatewayctl's bash completion (completion/gatewayctl.bash) in a real bash with
bash-completion loaded, as readline calls it (COMP_WORDS split at COMP_WORDBREAKS, COMP_LINE,
COMP_POINT), against a running gatewayd: verbs, options and option values, and the services,
images and jobs the typing user may see."""
import json
import os
import re
import shutil
import subprocess
import unittest

from harness import procs, users
from harness.gatewayd import gatewayctl_binary
from test_images import ImageStack

SCRIPT = os.path.join(procs.source_dir(), "completion", "gatewayctl.bash")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"

DRIVER = r"""
source "$BASH_COMPLETION"
source "$SCRIPT"
complete_line() {
        COMP_LINE=$1
        COMP_POINT=${#COMP_LINE}
        shift
        COMP_WORDS=("$@")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMPREPLY=()
        _gatewayctl gatewayctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\0' "${COMPREPLY[@]}"
        printf '\n'
}
"""


def readline_words(line):
    """COMP_WORDS as readline makes them: split at blanks, and the word-break characters
    = and : are words of their own; an empty last word when the line ends in a blank."""
    words = re.findall(r"[^\s=:]+|[=:]", line)
    if line.endswith(" ") or not words:
        words.append("")
    # Readline keeps a word ending at the cursor even if it is a break character.
    return words


def bash_quote(w):
    return "'" + w.replace("'", "'\\''") + "'"


@unittest.skipUnless(os.path.exists(BASH_COMPLETION), "bash-completion not installed")
class Completion(ImageStack):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.ref = f"{cls.registry.host}/test/busybox:latest"
            r = cls.gw.http("POST", "/v1/images/pull", {"reference": cls.ref}, as_user=users.USER)
            assert r.status in (200, 201, 202), r.body
            cls.image_id = r.json["id"]
            r = cls.gw.http("GET", f"/v1/images/{cls.image_id}/progress", timeout=120)
            cls.svc = "compl-hello"
            r = cls.gw.http("POST", "/v1/services",
                            {"name": cls.svc, "image": cls.ref, "command": ["echo", "hi"]})
            assert r.status == 201, r.body
            r = cls.gw.http("POST", "/v1/services", {"name": "compl-other", "image": cls.ref})
            assert r.status == 201, r.body
            r = cls.gw.http("POST", f"/v1/services/{cls.svc}/jobs", {}, as_user=users.USER)
            assert r.status == 201, r.body
            cls.job_id = r.json["id"]
            r = cls.gw.http("POST", f"/v1/services/{cls.svc}/jobs", {}, as_user=users.OTHER)
            assert r.status == 201, r.body
            cls.other_job_id = r.json["id"]
        except BaseException:
            cls.tearDownClass()
            raise

    def complete(self, *lines, as_user=users.USER):
        """The candidates bash offers for each command line (the cursor at its end). The
        completion asks the gatewayctl that was typed: the one under test, by its full path."""
        script = [DRIVER]
        for line in lines:
            line = line.replace("gatewayctl", gatewayctl_binary(), 1)
            script.append("complete_line " + " ".join(bash_quote(w) for w in [line] + readline_words(line)))
        env = dict(self.bus.env(), BASH_COMPLETION=BASH_COMPLETION, SCRIPT=SCRIPT)
        p = users.run_as(as_user, ["bash", "--norc", "--noprofile", "-c", "\n".join(script)],
                         env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "", p.stderr)
        out = p.stdout.split("\n")
        self.assertEqual(len(out), len(lines) + 1, p.stdout)
        return [set(x for x in o.split("\0") if x) for o in out[:-1]]

    def test_verbs_and_subverbs(self):
        top, se, service, image, job, hl = self.complete(
            "gatewayctl ", "gatewayctl se", "gatewayctl service ", "gatewayctl --no-legend image ",
            "gatewayctl job ", "gatewayctl help ")
        for v in ("services", "service", "pull", "images", "image", "rmi", "submit", "jobs", "job",
                  "result", "logs", "cancel", "token", "program", "lab", "status", "help"):
            self.assertIn(v, top)
        token, token_opts, scope = self.complete("gatewayctl token ", "gatewayctl token create --",
                                                 "gatewayctl token create --scope=")
        self.assertEqual(token, {"create", "list", "revoke"})
        (lab,) = self.complete("gatewayctl lab ")
        self.assertEqual(lab, {"put", "list", "show", "rm", "start", "instances", "instance", "token", "stop"})
        self.assertTrue({"--expires-in=", "--scope=", "--quiet"} <= token_opts, token_opts)
        self.assertEqual(scope, {"read", "submit", "pull"})
        program, upload_opts, run_opts = self.complete("gatewayctl program ", "gatewayctl program upload d --",
                                                       "gatewayctl program run x --")
        self.assertEqual(program, {"upload", "list", "rm", "run"})
        self.assertTrue({"--entrypoint=", "--title=", "--arg=", "--image=", "--provider="} <= upload_opts, upload_opts)
        self.assertTrue({"--arg=", "--wait", "--provider="} <= run_opts, run_opts)
        self.assertEqual(se, {"services", "service"})
        self.assertEqual(service, {"list", "show", "create", "update", "rm", "remove"})
        self.assertEqual(image, {"pull", "list", "show", "rm", "expire"})
        self.assertEqual(job, {"show", "rm", "remove"})
        self.assertIn("submit", hl)

    def test_options(self):
        general, create, pull, logs, json_mode, network = self.complete(
            "gatewayctl --no-", "gatewayctl service create x --", "gatewayctl pull --",
            "gatewayctl logs -", "gatewayctl services --json=p", "gatewayctl service update x --network=")
        self.assertEqual(general, {"--no-legend", "--no-pager", "--no-ask-password"})
        for o in ("--image=", "--command=", "--env=", "--memory=", "--cpus=", "--timeout=", "--network",
                  "--file=", "--json"):
            self.assertIn(o, create)
        self.assertNotIn("--unset-env=", create)
        for o in ("--platform=", "--credentials-file=", "--force", "--quiet"):
            self.assertIn(o, pull)
        self.assertIn("--follow", logs)
        self.assertIn("-f", logs)
        # After "--json=" readline replaces only the value.
        self.assertEqual(json_mode, {"pretty"})
        self.assertEqual(network, {"yes", "no"})

    def test_services_from_daemon(self):
        show, submit, rm, second = self.complete(
            "gatewayctl service show compl-", "gatewayctl submit compl-h",
            "gatewayctl service rm compl-hello ", "gatewayctl service show compl-hello ")
        self.assertEqual(show, {"compl-hello", "compl-other"})
        self.assertEqual(submit, {"compl-hello"})
        self.assertIn("compl-other", rm)       # rm takes several
        self.assertEqual(second, set())        # show takes one

    def test_images_from_daemon(self):
        show, pull, image_opt = self.complete(
            "gatewayctl image show ", "gatewayctl pull ",
            f"gatewayctl service create x --image={self.registry.host.split(':')[0]}")
        self.assertIn(self.image_id[:12], show)
        # References contain ':' (a word-break character): the candidates are what readline
        # puts after the last ':' of the word.
        self.assertIn(self.ref, pull)
        self.assertIn(self.ref, image_opt)

    def test_jobs_from_daemon(self):
        mine, theirs = self.complete("gatewayctl job show ", "gatewayctl cancel "), \
            self.complete("gatewayctl logs ", as_user=users.OTHER)[0]
        self.assertIn(self.job_id, mine[0])
        self.assertNotIn(self.other_job_id, mine[0])  # only what the user may see
        self.assertIn(self.job_id, mine[1])
        self.assertEqual(theirs, {self.other_job_id})

    def test_platforms_from_daemon(self):
        platform, node, show, nodes, drain, drain_node, resume_node = self.complete(
            "gatewayctl platform ", "gatewayctl node ", "gatewayctl platform show ", "gatewayctl nodes ",
            "gatewayctl node drain ", "gatewayctl node drain local ", "gatewayctl node resume local ")
        self.assertEqual(platform, {"list", "show"})
        self.assertEqual(node, {"drain", "resume"})
        self.assertEqual(show, {"local"})
        self.assertEqual(nodes, {"local"})
        self.assertEqual(drain, {"local"})
        self.assertEqual(drain_node, {os.uname().nodename})
        self.assertEqual(resume_node, {os.uname().nodename})
        top = self.complete("gatewayctl ")[0]
        self.assertTrue({"platforms", "platform", "nodes", "node"} <= top, top)

    def test_no_daemon_no_candidates(self):
        """Without a reachable daemon nothing is offered and nothing is printed."""
        env_bus = self.bus.env()
        saved = self.bus.env
        self.bus.env = lambda: dict(env_bus, DBUS_SYSTEM_BUS_ADDRESS="unix:path=/nonexistent")
        try:
            (show,) = self.complete("gatewayctl service show ")
        finally:
            self.bus.env = saved
        self.assertEqual(show, set())


if __name__ == "__main__":
    unittest.main()
