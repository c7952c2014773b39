"""Image tags outlive re-pulls and restarts (issue 8 §1). An image row used to be saved with
INSERT OR REPLACE, whose implicit delete cascaded to image_tags: after a re-pull and a restart
every tag of the image was gone, lookups by reference answered 404 and jobs of a service naming
the image by tag failed with IMAGE_PULL_FAILED as soon as the registry was unreachable."""
import json

from harness import images, users

from test_jobs import ECHO, TERMINAL, JobsBase


class TagsSurvive(JobsBase):
    def test_tags_survive_repull_restart_and_registry_outage(self):
        repo = self.name("tags")
        image = images.busybox_image(labels={"repo": repo})  # a digest of its own
        digest, _ = images.push_image(self.registry, repo, "one", image)
        digest2, _ = images.push_image(self.registry, repo, "two", image)
        self.assertEqual(digest, digest2, "both tags name one digest")
        one, two = f"{self.registry.host}/{repo}:one", f"{self.registry.host}/{repo}:two"

        first = self.gw.http("POST", "/v1/images/pull", {"reference": one})
        self.assertIn(first.status, (200, 202), first.body)
        image_id = first.json["id"]
        done = self.gw.http("GET", f"/v1/images/{image_id}/progress", timeout=120)
        self.assertEqual(json.loads(done.body.splitlines()[-1])["status"], "READY", done.body[-500:])
        for ref in (two, one):
            # The second tag, then a re-pull of the first (force: past PullUpdateTimeout's
            # shortcut, so the image record is written again).
            r = self.gw.http("POST", "/v1/images/pull", {"reference": ref, "force": True})
            self.assertEqual((r.status, r.json["id"], r.json["status"]), (200, image_id, "READY"), r.body)

        svc = self.name("tagged")
        r = self.gw.http("POST", "/v1/services", {"name": svc, "image": two, "command": ["/bin/sh", "-c", ECHO]})
        self.assertEqual(r.status, 201, r.body)

        self.gw.restart()
        self.registry.stop()
        self.addCleanup(self.registry.start, self.registry.port)

        for ref in (one, two):
            r = self.gw.http("GET", f"/v1/images/{ref}")
            self.assertEqual(r.status, 200, f"{ref}: {r.body}")
            self.assertEqual((r.json["id"], r.json["status"]), (image_id, "READY"), r.body)

        job = self.gw.http("POST", f"/v1/services/{svc}/jobs", {"data": {"n": 1}}, as_user=users.USER)
        self.assertEqual(job.status, 201, job.body)
        end = self.wait_status(job.json["id"], TERMINAL)
        self.assertEqual(end["status"], "SUCCEEDED", end)
