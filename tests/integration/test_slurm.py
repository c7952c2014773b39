"""A real one-node Slurm cluster (harness/slurm.py): slurmrestd with JWT auth runs batch jobs as
the token's user, and gatewayd's slurmrestd client (src/gatewayd/slurm-rest.c, driven through
the test helper slurm-rest-cli on an sd-event loop) submits, follows and cancels jobs, retries
while slurmrestd is away and reports refused tokens clearly. Needs root and the Slurm packages."""
import json
import os
import subprocess
import time
import unittest

from harness import procs, slurm, users

V = "/slurm/v0.0.38"


def cli_binary():
    return os.path.join(procs.build_dir(), "tests", "helpers", "slurm-rest-cli")


@unittest.skipUnless(slurm.available(), "Slurm is not installed (scripts/install-deps)")
class SlurmTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.uids = users.ensure_test_users()
        cls.cluster = slurm.SlurmCluster()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()

    def run(self, result=None):
        r = super().run(result)
        if result is not None and not result.wasSuccessful() and getattr(self, "cluster", None):
            print(self.cluster.logs())
        return r

    def job_body(self, script, name="gwtest", **job):
        body = {"name": name, "environment": {"PATH": "/bin:/usr/bin"},
                "current_working_directory": self.cluster.jobs_dir,
                "standard_output": os.path.join(self.cluster.jobs_dir, f"{name}.out"),
                "no_requeue": True}
        body.update(job)
        return {"script": script, "job": body}


class Smoke(SlurmTestCase):
    def test_batch_job_runs_as_the_token_user(self):
        c = self.cluster
        out = os.path.join(c.jobs_dir, "smoke.out")
        status, answer = c.rest("POST", f"{V}/job/submit", self.job_body("#!/bin/sh\nid -u\n", name="smoke"),
                                user=users.USER)
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer["errors"], [])
        job = c.wait_job_state(answer["job_id"], ("COMPLETED", "FAILED", "CANCELLED"))
        self.assertEqual(job["job_state"], "COMPLETED")
        self.assertEqual(job["user_name"], users.USER)
        with open(out) as f:
            self.assertEqual(f.read().strip(), str(self.uids[users.USER]))

    def test_forged_token_is_refused(self):
        forged = slurm.mint_jwt(b"not the key" * 3, users.USER)
        status, answer = self.cluster.rest("POST", f"{V}/job/submit", self.job_body("#!/bin/sh\ntrue\n"),
                                           user=users.USER, token=forged)
        self.assertEqual(status, 500)
        self.assertEqual(answer["errors"][0]["error_code"], 5005)
