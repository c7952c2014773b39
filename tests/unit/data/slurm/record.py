#!/usr/bin/python3
"""Records real slurmrestd answers (Debian 12, Slurm 22.05.8) into this directory for
tests/unit/test-slurm-rest.c: NAME.STATUS.json is the body of an answer with HTTP status STATUS.
Run as root from anywhere: /usr/bin/python3 tests/unit/data/slurm/record.py"""
import json
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "..", "integration"))
from harness import slurm, users  # noqa: E402

V = "/slurm/v0.0.38"


def save(name, status, answer):
    path = os.path.join(here, f"{name}.{status}.json")
    with open(path, "w") as f:
        f.write(json.dumps(answer, indent=1) if not isinstance(answer, str) else answer)
        f.write("\n")
    print(path, status)


def main():
    users.ensure_test_users()
    c = slurm.SlurmCluster()
    u = users.USER
    try:
        def body(script, **job):
            j = {"name": "gatewayd-rec", "environment": {"PATH": "/bin:/usr/bin"},
                 "current_working_directory": c.jobs_dir, "standard_output": "/dev/null", "no_requeue": True}
            j.update(job)
            return {"script": script, "job": j}

        save("ping", *c.rest("GET", f"{V}/ping", user=u))
        save("partitions", *c.rest("GET", f"{V}/partitions", user=u))
        save("nodes", *c.rest("GET", f"{V}/nodes", user=u))
        s, a = c.rest("POST", f"{V}/job/submit", body("#!/bin/sh\nsleep 30\n"), user=u)
        save("submit-ok", s, a)
        running = a["job_id"]
        c.wait_job_state(running, ("RUNNING",))
        save("job-running", *c.rest("GET", f"{V}/job/{running}", user=u))
        save("cancel-ok", *c.rest("DELETE", f"{V}/job/{running}", user=u))
        c.wait_job_state(running, ("CANCELLED",))
        save("job-cancelled", *c.rest("GET", f"{V}/job/{running}", user=u))
        s, a = c.rest("POST", f"{V}/job/submit", body("#!/bin/sh\ntrue\n"), user=u)
        c.wait_job_state(a["job_id"], ("COMPLETED",))
        save("job-completed", *c.rest("GET", f"{V}/job/{a['job_id']}", user=u))
        s, a = c.rest("POST", f"{V}/job/submit", body("#!/bin/sh\nexit 3\n"), user=u)
        c.wait_job_state(a["job_id"], ("FAILED",))
        save("job-failed", *c.rest("GET", f"{V}/job/{a['job_id']}", user=u))
        s, a = c.rest("POST", f"{V}/job/submit", body("#!/bin/sh\ntrue\n", cpus_per_task=99), user=u)
        save("submit-with-errors", s, a)
        c.rest("DELETE", f"{V}/job/{a['job_id']}", user=u)
        save("submit-bad-partition", *c.rest("POST", f"{V}/job/submit", body("#!/bin/sh\n", partition="nope"),
                                             user=u))
        save("jobs", *c.rest("GET", f"{V}/jobs", user=u))
        save("job-unknown", *c.rest("GET", f"{V}/job/999999", user=u))
        save("cancel-unknown", *c.rest("DELETE", f"{V}/job/999999", user=u))
        save("cancel-other-user", *c.rest("DELETE", f"{V}/job/{running}", user=users.OTHER))
        forged = slurm.mint_jwt(b"wrong key, 32 bytes long........", u)
        save("submit-forged-token", *c.rest("POST", f"{V}/job/submit", body("#!/bin/sh\n"), user=u, token=forged))
        save("job-forged-token", *c.rest("GET", f"{V}/job/{running}", user=u, token=forged))
        save("ping-forged-token", *c.rest("GET", f"{V}/ping", user=u, token=forged))
        expired = c.token(u, lifetime=10, now=int(time.time()) - 100)
        save("job-expired-token", *c.rest("GET", f"{V}/job/{running}", user=u, token=expired))
    finally:
        c.stop()


if __name__ == "__main__":
    main()
