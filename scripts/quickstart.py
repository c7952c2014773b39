#!/usr/bin/python3
"""The quick start's main job, on the embedded default: a private system bus, a local
docker-registry with a sample image, and gatewayd with a temporary state directory. Registers a
service over HTTP and with gatewayctl, pulls its image, runs jobs (gatewayctl and the
PlanQK-compatible HTTP API) and prints their results.
Everything it starts is stopped at the end."""
import json
import os
import subprocess
import sys

top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(top, "tests", "integration"))

from harness import images                      # noqa: E402
from harness.bus import PrivateBus               # noqa: E402
from harness.gatewayd import Gatewayd, gatewayctl_binary  # noqa: E402
from harness.procs import Processes, TempDir     # noqa: E402
from harness.registry import Registry            # noqa: E402

SAMPLE = """#!/bin/sh
# A sample service: reads its input and prints a result the PlanQK way.
echo "PlanQK:Job:InterimResult: {\\"step\\": 1}"
echo "PlanQK:Job:Result: {\\"greeting\\": \\"hello from gatewayd\\", \\"input\\": $(cat /var/input/data.json)}"
"""


def step(title):
    print(f"\n\033[1m==> {title}\033[0m", flush=True)


def show(argv, **kw):
    print("$ " + " ".join(a if " " not in a else repr(a) for a in argv), flush=True)
    p = subprocess.run(argv, text=True, capture_output=True, **kw)
    out = (p.stdout + p.stderr).rstrip()
    if out:
        print(out, flush=True)
    if p.returncode != 0:
        raise SystemExit(f"command failed with status {p.returncode}")
    return p.stdout


def main():
    procs, tmp = Processes(), TempDir(prefix="gatewayd-quickstart-")
    bus = gw = None
    try:
        step("Starting a private system bus and a local registry with a sample image")
        bus = PrivateBus().start()
        registry = Registry(procs, tmp.path).start()
        layer = images.Layer().busybox().file("usr/bin/hello", SAMPLE, mode=0o755)
        image = images.Image([(layer, "gzip")], entrypoint=["/usr/bin/hello"])
        digest, _ = images.push_image(registry, "demo/hello", "latest", image)
        ref = f"{registry.host}/demo/hello:latest"
        print(f"registry at {registry.host}, image {ref} ({digest})")

        step("Starting gatewayd (local platform, temporary state directory)")
        config = {"DefaultImageLocation": registry.host,
                  "Locations": {registry.host: {"remotetype": "dockerv2", "authentication": "http", "insecure": True}}}
        gw = Gatewayd(mode="direct", bus=bus, config=config).start()
        env = bus.env()
        curl = ["curl", "-sS", "--unix-socket", gw.socket_path]
        ctl = [gatewayctl_binary()]
        print(f"state in {gw.state_dir}, HTTP on {gw.socket_path}")
        show(ctl + ["status"], env=env)

        step("Registering services over HTTP and with gatewayctl")
        show(curl + ["-X", "POST", "-H", "Content-Type: application/json",
                     "-d", json.dumps({"name": "hello", "image": ref, "description": "sample service"}),
                     "http://localhost/v1/services"])
        print()
        show(ctl + ["service", "create", "hello-ctl", "--image", ref, "--description", "the same, via D-Bus"], env=env)
        show(curl + ["http://localhost/v1/services"])
        print()
        show(ctl + ["services"], env=env)

        step("Pulling the image and converting it to squashfs")
        pulled = json.loads(show(curl + ["-X", "POST", "-H", "Content-Type: application/json",
                                         "-d", json.dumps({"reference": ref}), "http://localhost/v1/images/pull"]))
        print()
        show(curl + [f"http://localhost/v1/images/{pulled['id']}/progress"])
        show(ctl + ["images"], env=env)

        step("Submitting a job with sample data and waiting for its result")
        data = os.path.join(tmp.path, "data.json")
        with open(data, "w") as f:
            json.dump({"numbers": [1, 2, 3]}, f)
        show(ctl + ["submit", "hello", f"--data={data}", "--wait"], env=env)
        job = json.loads(show(curl + ["-X", "POST", "-H", "Content-Type: application/json",
                                      "-d", json.dumps({"data": {"via": "http"}}),
                                      "http://localhost/planqk/hello/"]))
        print()
        # The PlanQK API is asynchronous: follow the job's log until it ends, then fetch the result.
        show(ctl + ["logs", "-f", job["id"]], env=env)
        show(curl + [f"http://localhost/planqk/hello/{job['id']}"])
        print()
        show(curl + [f"http://localhost/planqk/hello/{job['id']}/result"])
        print()
    finally:
        if gw is not None:
            gw.stop(check=False)
        if bus is not None:
            bus.stop()
        procs.stop_all()
        tmp.cleanup()
    step("Done; everything it started has been stopped")


if __name__ == "__main__":
    main()
