"""gateway-worker run against real squashfs loop mounts, bubblewrap sandboxes and cgroups.

Images are busybox-static root file systems plus static C payloads (harness/rootfs.py), jobs are
spool directories as gatewayd prepares them. Needs root (mounts, sandboxes, test user)."""
import fcntl
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
import unittest

from harness import images, procs, rootfs, users
from harness.smallfs import SmallFs
from harness.registry import Registry

# Run by /usr/bin/python3 as a user (the interpreter running the tests may live where the user
# cannot reach it): keyctl(KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", argv[1]); prints FOUND
# (and unlinks the key again) or the errno's name.
FIND_USER_KEY = """
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_keyctl, KEYCTL_SEARCH, KEYCTL_UNLINK, KEY_SPEC_USER_KEYRING = 250, 10, 9, -4
k = libc.syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, b"user", sys.argv[1].encode(), 0)
if k >= 0:
    libc.syscall(SYS_keyctl, KEYCTL_UNLINK, k, KEY_SPEC_USER_KEYRING)
print("FOUND" if k >= 0 else errno.errorcode[ctypes.get_errno()])
"""


def worker_binary():
    return os.path.join(procs.build_dir(), "src", "worker", "gateway-worker")


def worker_run_binary():
    """gateway-worker-run: the run verb alone (no pull libraries), what gatewayd starts."""
    return os.path.join(procs.build_dir(), "src", "worker", "gateway-worker-run")


class Outcome:
    def __init__(self, spool, rc, events):
        self.rc = rc
        self.events = events
        self.spool = spool

        def read(name, parse=True):
            p = os.path.join(spool, name)
            if not os.path.exists(p):
                return None
            with open(p, "rb") as f:
                data = f.read()
            return json.loads(data) if parse else data.decode(errors="replace")

        self.exit = read("exit.json")
        self.result = read("result.json")
        self.log = read("log", parse=False)
        interim = read("interim.jsonl", parse=False)
        self.interim = [json.loads(line) for line in interim.splitlines()] if interim else []

    @property
    def status(self):
        return self.exit["status"]

    @property
    def error_code(self):
        return (self.exit.get("error") or {}).get("code")

    def of(self, kind):
        return [e for e in self.events if e["event"] == kind]


@unittest.skipUnless(os.geteuid() == 0, "gateway-worker run needs root")
class WorkerRunTest(unittest.TestCase):
    """gateway-worker run; WorkerRunOnlyTest repeats every test with gateway-worker-run."""

    @classmethod
    def run_argv(cls):
        return [worker_binary(), "run"]

    @classmethod
    def setUpClass(cls):
        cls.images = procs.TempDir(prefix="gatewayd-images-")
        cls.image = rootfs.busybox_image(cls.images.path)
        cls.worker_argv = cls.run_argv()
        # the shared ordinary test account (harness/users.py)
        cls.uid = users.ensure_user(users.USER)
        cls.gid = pwd.getpwnam(users.USER).pw_gid

    @classmethod
    def tearDownClass(cls):
        cls.images.cleanup()

    def setUp(self):
        self.tmp = procs.TempDir(prefix="gatewayd-run-")
        self.runtime = os.path.join(self.tmp.path, "runtime")
        self.procs = procs.Processes()
        self.n = 0

    def tearDown(self):
        self.procs.stop_all()
        left = rootfs.unmount_all_under(self.tmp.path)
        self.tmp.cleanup()
        self.assertEqual(left, [], "the worker left mounts behind")

    # -- helpers -------------------------------------------------------------------------------

    def spool(self, script=None, command=None, data=None, params=None, image=None, meta=None, **spec):
        """A spool dir for a job running 'sh -c script' (or command) as the test user."""
        self.n += 1
        d = os.path.join(self.tmp.path, f"job{self.n}")
        os.makedirs(os.path.join(d, "input"))
        job = {
            "id": f"test-{self.n}",
            "image": {"path": image or self.image,
                      "meta": meta if meta is not None else
                      {"env": ["IMAGE_VAR=from-image"], "cmd": ["/bin/sh", "-c", "echo image-default"],
                       "workdir": "/app"}},
            "uid": self.uid, "gid": self.gid,
        }
        if script is not None:
            job["command"] = ["/bin/sh", "-c", script]
        if command is not None:
            job["command"] = command
        job.update(spec)
        with open(os.path.join(d, "job.json"), "w") as f:
            json.dump(job, f)
        for name, value in (("data.json", data), ("params.json", params)):
            if value is not None:
                with open(os.path.join(d, "input", name), "w") as f:
                    f.write(value if isinstance(value, str) else json.dumps(value))
        return d

    def argv(self, spool, *args):
        return [*self.worker_argv, "--runtime-dir", self.runtime, *args, spool]

    def start(self, spool, *args, stdout=subprocess.PIPE):
        return self.procs.start(self.argv(spool, *args), stdout=stdout, stderr=subprocess.PIPE)

    def finish(self, p, spool, timeout=60):
        events = []
        if p.stdout:
            for line in p.stdout:
                events.append(json.loads(line))
        p.wait(timeout)
        self.procs.children.remove(p)
        o = Outcome(spool, p.returncode, events)
        o.stderr = p.stderr.read().decode() if p.stderr else ""
        # under -Db_sanitize=address,undefined a report must fail the test
        self.assertNotIn("Sanitizer", o.stderr)
        self.assertNotIn("runtime error:", o.stderr)
        return o

    def run_job(self, spool, *args, events=True, timeout=60):
        p = self.start(spool, *args, stdout=subprocess.PIPE if events else subprocess.DEVNULL)
        return self.finish(p, spool, timeout)

    def wait_event(self, p, predicate, timeout=20):
        """Reads events from a running worker until one matches; returns those read."""
        seen = []
        result = []

        def reader():
            for line in p.stdout:
                e = json.loads(line)
                seen.append(e)
                if predicate(e):
                    result.append(e)
                    return

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(timeout)
        if not result:
            raise TimeoutError(f"no matching event; saw {seen[-5:]}")
        return seen

    def assert_succeeded(self, o):
        self.assertEqual(o.exit["status"], "SUCCEEDED", f"{o.exit}\nlog:\n{o.log}")
        self.assertEqual(o.rc, 0)

    # -- results -------------------------------------------------------------------------------

    def test_single_line_result(self):
        o = self.run_job(self.spool('echo before; echo \'PlanQK:Job:Result: {"answer": 42}\'; echo after'))
        self.assert_succeeded(o)
        self.assertEqual(o.result, {"answer": 42})
        self.assertEqual(o.exit["exitCode"], 0)
        self.assertIsNone(o.exit["signal"])
        self.assertIsNone(o.exit["error"])
        self.assertTrue(o.exit["hasResult"])
        self.assertRegex(o.exit["startedAt"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertLessEqual(o.exit["startedAt"], o.exit["endedAt"])
        self.assertEqual(o.log, 'before\nPlanQK:Job:Result: {"answer": 42}\nafter\n')
        # events: RUNNING first, one log event per line, done last carrying exit.json
        self.assertEqual(o.events[0]["event"], "status")
        self.assertEqual(o.events[0]["status"], "RUNNING")
        self.assertEqual([e["line"] for e in o.of("log") if "stream" in e],
                         ["before", 'PlanQK:Job:Result: {"answer": 42}', "after"])
        self.assertEqual(o.events[-1]["event"], "done")
        self.assertEqual(o.events[-1]["status"], "SUCCEEDED")
        self.assertFalse(os.path.exists(os.path.join(o.spool, "worker.pid")))

    def test_multiline_result(self):
        o = self.run_job(self.spool(
            "echo PlanQK:Job:MultilineResult; printf '{\\n  \"a\": [1,\\r\\n   2]\\n}\\n';"
            "echo PlanQK:Job:MultilineResult"))
        self.assert_succeeded(o)
        self.assertEqual(o.result, {"a": [1, 2]})

    def test_first_result_wins(self):
        o = self.run_job(self.spool(
            "echo PlanQK:Job:MultilineResult; echo '\"first\"'; echo PlanQK:Job:MultilineResult;"
            "echo 'PlanQK:Job:Result: \"second\"'"))
        self.assert_succeeded(o)
        self.assertEqual(o.result, "first")
        self.assertIn("[gateway-worker] warning: Ignoring result on line 4: a result was already set on line 1.",
                      o.log)
        self.assertTrue(any(e.get("level") == "warning" for e in o.of("log")))

    def test_invalid_json_result_is_ignored(self):
        o = self.run_job(self.spool("echo 'PlanQK:Job:Result: {nope'; echo \"PlanQK:Job:Result: {'a': 1}\""))
        self.assert_succeeded(o)
        self.assertIsNone(o.result)
        self.assertFalse(o.exit["hasResult"])
        self.assertEqual(o.log.count("not valid JSON"), 2)

    def test_unterminated_block_is_ignored(self):
        o = self.run_job(self.spool("echo 'PlanQK:Job:Result: 1'; echo PlanQK:Job:MultilineResult; echo '[2]'"))
        self.assert_succeeded(o)
        self.assertEqual(o.result, 1)
        self.assertIn("Ignoring multiline result started on line 2: no closing marker", o.log)

    def test_interim_results(self):
        o = self.run_job(self.spool(
            "for i in 1 2 3; do echo \"PlanQK:Job:InterimResult: {\\\"step\\\": $i}\"; done;"
            "echo 'PlanQK:Job:InterimResult: broken'; echo 'PlanQK:Job:Result: \"done\"'"))
        self.assert_succeeded(o)
        self.assertEqual(o.interim, [{"step": 1}, {"step": 2}, {"step": 3}])
        self.assertEqual([(e["index"], e["result"]) for e in o.of("interim")],
                         [(0, {"step": 1}), (1, {"step": 2}), (2, {"step": 3})])
        self.assertEqual(o.exit["interimCount"], 3)
        self.assertEqual(o.result, "done")

    def test_interim_event_is_immediate(self):
        spool = self.spool("echo 'PlanQK:Job:InterimResult: {\"progress\": 0.5}'; sleep 30")
        p = self.start(spool)
        seen = self.wait_event(p, lambda e: e["event"] == "interim")
        self.assertEqual(seen[-1]["result"], {"progress": 0.5})
        with open(os.path.join(spool, "interim.jsonl")) as f:
            self.assertEqual(f.read(), '{"progress": 0.5}\n')   # on disk already, too
        self.assertFalse(os.path.exists(os.path.join(spool, "exit.json")))
        p.send_signal(signal.SIGTERM)
        o = self.finish(p, spool)
        self.assertEqual(o.status, "CANCELLED")
        self.assertEqual(o.interim, [{"progress": 0.5}])

    def test_interim_limits(self):
        o = self.run_job(self.spool(
            "i=0; while [ $i -lt 8 ]; do echo \"PlanQK:Job:InterimResult: $i\"; i=$((i+1)); done;"
            "echo 'PlanQK:Job:InterimResult: [\"this one is far too long\"]'",
        ), "--interim-count-max=5", "--interim-max=8")
        self.assert_succeeded(o)
        self.assertEqual(o.interim, [0, 1, 2, 3, 4])
        self.assertEqual(o.log.count("Interim result limit of 5 reached"), 1)

    def test_result_limit(self):
        o = self.run_job(self.spool(
            "echo \"PlanQK:Job:Result: \\\"$(yes x | head -c 3000 | tr -d '\\n')\\\"\"; echo 'PlanQK:Job:Result: 7'"),
            "--result-max=1K")
        self.assert_succeeded(o)
        self.assertEqual(o.result, 7)
        self.assertIn("larger than the limit of 1024 bytes", o.log)

    def test_no_result(self):
        o = self.run_job(self.spool("echo just logging"))
        self.assert_succeeded(o)
        self.assertIsNone(o.result)
        with open(os.path.join(o.spool, "result.json")) as f:
            self.assertEqual(f.read(), "null")

    def test_image_defaults_and_overrides(self):
        # no command: the image's cmd, env and workdir
        o = self.run_job(self.spool(meta={"env": ["IMAGE_VAR=x", "KEEP=1"],
                                          "cmd": ["/bin/sh", "-c", "echo \"PlanQK:Job:Result: [\\\"$IMAGE_VAR\\\", \\\"$KEEP\\\", \\\"$(pwd)\\\", \\\"$PATH\\\"]\""],
                                          "workdir": "/var/lib"}))
        self.assert_succeeded(o)
        self.assertEqual(o.result[:3], ["x", "1", "/var/lib"])
        self.assertIn("/usr/bin", o.result[3])
        # the service's env and workdir win
        o = self.run_job(self.spool("echo \"PlanQK:Job:Result: [\\\"$IMAGE_VAR\\\", \\\"$(pwd)\\\"]\"",
                                    env={"IMAGE_VAR": "service"}, workdir="/tmp"))
        self.assert_succeeded(o)
        self.assertEqual(o.result, ["service", "/tmp"])

    # -- failures ------------------------------------------------------------------------------

    def test_nonzero_exit(self):
        o = self.run_job(self.spool("echo 'PlanQK:Job:Result: 1'; for i in $(seq 1 30); do echo line$i; done;"
                                    "echo oops >&2; exit 3"))
        self.assertEqual(o.rc, 0)
        self.assertEqual(o.status, "FAILED")
        self.assertEqual(o.exit["exitCode"], 3)
        self.assertEqual(o.error_code, "EXIT_CODE")
        detail = o.exit["error"]["detail"]
        self.assertIn("Exited with code 3.", detail)
        self.assertIn("line30\noops", detail)
        self.assertNotIn("line5\n", detail)   # only the last lines
        self.assertEqual(o.result, 1)         # a result printed before failing is kept

    def test_killed_by_signal(self):
        o = self.run_job(self.spool("kill -SEGV $$"))
        self.assertEqual(o.status, "FAILED")
        self.assertEqual(o.error_code, "EXIT_CODE")
        self.assertIsNone(o.exit["exitCode"])
        self.assertEqual(o.exit["signal"], signal.SIGSEGV)
        self.assertIn("SIGSEGV", o.exit["error"]["detail"])

    def test_command_not_found(self):
        o = self.run_job(self.spool(command=["/no/such/program"]))
        self.assertEqual(o.status, "FAILED")
        self.assertEqual(o.exit["exitCode"], 127)
        self.assertIn("cannot execute '/no/such/program'", o.exit["error"]["detail"])

    def test_timeout(self):
        t0 = time.monotonic()
        o = self.run_job(self.spool("echo started; sleep 60", resources={"timeout": 1}), "--kill-grace=2")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(o.status, "FAILED")
        self.assertEqual(o.error_code, "TIMEOUT")
        self.assertIn("Time limit of 1 s exceeded", o.exit["error"]["detail"])
        self.assertIn("started", o.log)

    def test_timeout_ignoring_sigterm_is_killed(self):
        t0 = time.monotonic()
        o = self.run_job(self.spool("trap '' TERM; echo started; while :; do sleep 1; done",
                                    resources={"timeout": 0.5}), "--kill-grace=1")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(o.error_code, "TIMEOUT")
        self.assertEqual(o.exit["signal"], signal.SIGKILL)
        self.assertIn("did not end within the grace period", o.log)

    def test_memory_limit(self):
        o = self.run_job(self.spool(command=["/usr/local/bin/alloc", "256"], resources={"memory": 64 << 20}))
        self.assertEqual(o.status, "FAILED", o.log)
        self.assertEqual(o.error_code, "OUT_OF_MEMORY", o.exit)
        self.assertEqual(o.exit["signal"], signal.SIGKILL)
        # within the limit it runs
        o = self.run_job(self.spool(command=["/usr/local/bin/alloc", "16"], resources={"memory": 64 << 20}))
        self.assert_succeeded(o)
        self.assertEqual(o.result, {"allocatedMiB": 16})

    def test_tmp_is_half_the_memory_limit(self):
        # /tmp is a tmpfs charged to the job's memory; at half the limit, filling it fails with
        # ENOSPC instead of wedging the cgroup in an OOM that killing processes cannot resolve.
        o = self.run_job(self.spool("head -c 100000000 /dev/zero > /tmp/big || echo full; df -k /tmp | tail -1;"
                                    "echo 'PlanQK:Job:Result: \"survived\"'",
                                    resources={"memory": 64 << 20, "timeout": 30}))
        self.assert_succeeded(o)
        self.assertEqual(o.result, "survived")
        self.assertIn("full\n", o.log)     # the write failed (busybox says "I/O error")
        self.assertRegex(o.log, r"tmpfs\s+32768\s+32768\s+0 ")

    def test_dev_shm_private_and_writable(self):
        # Python's multiprocessing needs a writable /dev/shm: a tmpfs of the job's own (mode
        # 1777, nosuid, nodev), a quarter of the memory limit (its pages are charged to the
        # job, and /tmp already takes half).
        o = self.run_job(self.spool("echo hello > /dev/shm/file && cat /dev/shm/file;"
                                    "stat -c 'mode=%a owner=%u' /dev/shm; grep ' /dev/shm ' /proc/mounts;"
                                    "df -k /dev/shm | tail -1;"
                                    "head -c 100000000 /dev/zero > /dev/shm/big || echo full;"
                                    "echo 'PlanQK:Job:Result: \"survived\"'",
                                    resources={"memory": 64 << 20, "timeout": 30}))
        self.assert_succeeded(o)
        self.assertEqual(o.result, "survived")
        self.assertIn("hello\nmode=1777 owner=0\n", o.log)
        mount = [l for l in o.log.splitlines() if " /dev/shm " in l]
        self.assertEqual(len(mount), 1, o.log)
        self.assertEqual(mount[0].split()[2], "tmpfs")
        opts = mount[0].split()[3].split(",")
        for opt in ("rw", "nosuid", "nodev"):
            self.assertIn(opt, opts)
        self.assertRegex(o.log, r"tmpfs\s+16384\s+\d+\s+\d+ ")
        self.assertIn("full\n", o.log)

    def test_result_files_directory(self):
        # /var/runtime/output ($OUTPUT_DIRECTORY, PlanQK's): the job's own tmpfs (nosuid, nodev,
        # noexec, mode 0700, owned by the job's uid), within resources.outputMax (and a page)
        # and outputFiles; its regular files end up in the spool's output/, also when it fails.
        o = self.run_job(self.spool('o=$OUTPUT_DIRECTORY; echo "dir=$o"; stat -c "mode=%a owner=%u" $o;'
                                    "grep ' /var/runtime/output ' /proc/mounts; df -k $o | tail -1;"
                                    "echo one > $o/one.txt; echo two > /var/runtime/output/two.txt; exit 4",
                                    resources={"outputMax": 65536, "outputFiles": 5}))
        self.assertEqual(o.error_code, "EXIT_CODE")
        self.assertIn(f"dir=/var/runtime/output\nmode=700 owner={self.uid}\n", o.log)
        mount = [l for l in o.log.splitlines() if " /var/runtime/output " in l]
        self.assertEqual(len(mount), 1, o.log)
        opts = mount[0].split()[3].split(",")
        for opt in ("rw", "nosuid", "nodev", "noexec"):
            self.assertIn(opt, opts)
        self.assertIn("size=68k", opts)
        self.assertIn("nr_inodes=6", opts)
        self.assertRegex(o.log, r"gatewayd-output\s+68\s+\d+\s+\d+ ")
        out = os.path.join(o.spool, "output")
        self.assertEqual(sorted(os.listdir(out)), ["one.txt", "two.txt"])
        with open(os.path.join(out, "two.txt")) as f:
            self.assertEqual(f.read(), "two\n")
        self.assertEqual(rootfs.mounts_under(os.path.join(self.runtime, "output")), [])

    def test_result_files_off(self):
        # outputMax 0: no such directory, no variable, no output/ in the spool
        o = self.run_job(self.spool('echo "dir=${OUTPUT_DIRECTORY:-unset}"; ls -d /var/runtime/output || echo none',
                                    resources={"outputMax": 0}))
        self.assert_succeeded(o)
        self.assertIn("dir=unset\n", o.log)
        self.assertIn("none\n", o.log)
        self.assertFalse(os.path.exists(os.path.join(o.spool, "output")))

    def test_dev_shm_not_shared(self):
        # One job's /dev/shm is neither another's (running at the same time) nor the host's.
        marker = f"gatewayd-shm-{os.getpid()}-{time.monotonic_ns()}"
        first = self.spool(f"echo secret > /dev/shm/{marker} && echo ready; sleep 2; ls /dev/shm")
        p = self.start(first)
        self.wait_event(p, lambda e: e.get("line") == "ready")
        o = self.run_job(self.spool(f"ls -A /dev/shm; cat /dev/shm/{marker} 2>/dev/null || echo absent"))
        self.assert_succeeded(o)
        self.assertEqual(o.log, "absent\n")
        self.assertFalse(os.path.exists(f"/dev/shm/{marker}"))
        o = self.finish(p, first)
        self.assert_succeeded(o)
        self.assertFalse(os.path.exists(f"/dev/shm/{marker}"))

    def test_posix_semaphores_and_shared_memory(self):
        # sem_open() and shm_open() (what multiprocessing.Lock/Pool use) work, across fork().
        o = self.run_job(self.spool(command=["/usr/local/bin/shm"]))
        self.assert_succeeded(o)
        self.assertEqual(o.result, {"sem_open": "OK", "shm_open": "OK", "shared": 42})

    def test_memory_limit_rlimit_fallback(self):
        o = self.run_job(self.spool(command=["/usr/local/bin/alloc", "256"], resources={"memory": 64 << 20}),
                         "--no-cgroups")
        self.assertEqual(o.status, "FAILED")
        self.assertEqual(o.error_code, "EXIT_CODE")
        self.assertEqual(o.exit["exitCode"], 3)
        self.assertIn("allocation failed", o.log)

    def test_fork_bomb(self):
        o = self.run_job(self.spool(command=["/usr/local/bin/forkbomb"], resources={"pids": 20}))
        self.assert_succeeded(o)
        self.assertGreater(o.result["forked"], 5)
        self.assertLess(o.result["forked"], 20)
        self.assertIn("unavailable", o.result["error"])   # EAGAIN
        # without cgroups, RLIMIT_NPROC (per uid: the test user runs nothing else)
        o = self.run_job(self.spool(command=["/usr/local/bin/forkbomb"], resources={"pids": 20}), "--no-cgroups")
        self.assert_succeeded(o)
        self.assertGreater(o.result["forked"], 5)
        self.assertLess(o.result["forked"], 20)

    def test_huge_output(self):
        o = self.run_job(self.spool("seq 1 400000; echo 'PlanQK:Job:Result: \"end\"'"), "--log-max=64K",
                         events=False)
        self.assert_succeeded(o)
        self.assertEqual(o.result, "end")
        head, body = o.log.split("\n", 1)
        self.assertRegex(head, r"^\[gateway-worker\] Log truncated: the first \d+ bytes were dropped")
        # the limit bounds the whole file, notice included; at least the last segment (half) is kept
        self.assertLessEqual(len(o.log.encode()), 64 * 1024)
        self.assertGreater(len(body.encode()), 30 * 1024)
        self.assertTrue(body.endswith("399999\n400000\nPlanQK:Job:Result: \"end\"\n"))
        self.assertRegex(body, r"^\d+\n")    # cut on a line boundary
        self.assertGreater(o.exit["logDroppedBytes"], 2_000_000)
        self.assertFalse(os.path.exists(os.path.join(o.spool, "log.old")))

    def test_log_max_bounds_rotated_part(self):
        """--log-max bounds what the log takes of the disk while the job runs: "log" and the
        rotated "log.old" together, sampled throughout the run."""
        spool = self.spool("seq 1 600000")
        p = self.start(spool, "--log-max=64K", stdout=subprocess.DEVNULL)
        worst = samples = 0
        while p.poll() is None:
            total = 0
            for name in ("log", "log.old"):
                try:
                    total += os.stat(os.path.join(spool, name)).st_size
                except FileNotFoundError:
                    pass
            worst = max(worst, total)
            samples += 1
        o = self.finish(p, spool)
        self.assert_succeeded(o)
        self.assertGreater(samples, 20)
        self.assertLessEqual(worst, 64 * 1024, f"log + log.old reached {worst} bytes")
        self.assertLessEqual(len(o.log.encode()), 64 * 1024)

    # -- a full disk ---------------------------------------------------------------------------

    def small_spool(self, size, script, **kw):
        """A spool on a tmpfs of its own (unmounted after the test)."""
        fs = SmallFs(size)
        self.addCleanup(fs.cleanup)
        d = self.spool(script, **kw)
        dest = os.path.join(fs.path, "job")
        shutil.copytree(d, dest)
        return fs, dest

    def test_disk_full_stops_job(self):
        # Endless output, a log limit far beyond the file system: the disk fills, the job is
        # stopped, and exit.json is written all the same.
        fs, spool = self.small_spool("4m", 'yes "$(head -c 4000 /dev/zero | tr \'\\0\' x)"')
        start = time.monotonic()
        o = self.run_job(spool, "--log-max=1G", "--kill-grace=5", events=False, timeout=30)
        self.assertLess(time.monotonic() - start, 20)
        self.assertEqual(o.rc, 0, o.stderr)
        self.assertEqual(o.status, "FAILED", o.exit)
        self.assertEqual(o.error_code, "DISK_FULL", o.exit)
        self.assertIn("full", o.exit["error"]["detail"])
        self.assertFalse(os.path.exists(os.path.join(spool, ".exit.json.reserve")))
        self.assertLess(fs.free_bytes(), 64 * 1024)   # it really was full

    def test_disk_full_before_start(self):
        # gatewayd made the spool and its reserve, then the disk filled up: the job does not
        # start, and says why.
        fs, spool = self.small_spool("2m", "echo never")
        with open(os.path.join(spool, ".exit.json.reserve"), "wb") as f:
            os.posix_fallocate(f.fileno(), 0, 64 * 1024)
        fs.fill()
        o = self.run_job(spool)
        self.assertEqual(o.rc, 0, o.stderr)
        self.assertEqual(o.status, "FAILED", o.exit)
        self.assertEqual(o.error_code, "DISK_FULL", o.exit)
        self.assertIsNone(o.exit["startedAt"])
        self.assertNotIn("never", o.log or "")

    def test_disk_full_result_lost(self):
        # The job succeeds, but the disk filled up before its result could be stored: that is
        # not a success for its user.
        fs, spool = self.small_spool("2m", "echo 'PlanQK:Job:Result: {\"big\": 1}'; sleep 1")
        p = self.start(spool)
        self.wait_event(p, lambda e: e.get("line", "").startswith("PlanQK:Job:Result"))
        fs.fill()
        o = self.finish(p, spool)
        self.assertEqual(o.rc, 0, o.stderr)
        self.assertEqual(o.error_code, "DISK_FULL", o.exit)
        self.assertFalse(o.exit["hasResult"])
        self.assertIsNone(o.result)

    def test_disk_full_interim_results(self):
        # The log is bounded far below the file system (LogMax), interim results are not: the
        # write of interim.jsonl is the one that fails, and the job is stopped all the same.
        fs, spool = self.small_spool("4m", 'x="$(head -c 4000 /dev/zero | tr \'\\0\' x)";'
                                     'while :; do echo "PlanQK:Job:InterimResult: \\"$x\\""; done')
        o = self.run_job(spool, "--log-max=64K", "--kill-grace=5", events=False, timeout=30)
        self.assertEqual(o.rc, 0, o.stderr)
        self.assertEqual((o.status, o.error_code), ("FAILED", "DISK_FULL"), o.exit)
        self.assertIn("full", o.exit["error"]["detail"])
        self.assertLessEqual(len(o.log.encode()), 64 * 1024)
        # it was interim.jsonl that filled the file system
        self.assertGreater(os.path.getsize(os.path.join(spool, "interim.jsonl")), 3 << 20)
        self.assertGreater(o.exit["interimCount"], 700)
        self.assertLess(fs.free_bytes(), 256 * 1024)   # (the log's rotation and the reserve gave some back)
        self.assertFalse(os.path.exists(os.path.join(spool, ".exit.json.reserve")))

    def test_disk_full_result_files_lost(self):
        # The job succeeds and leaves a result file that the spool has no room for: the file is
        # lost like a result that could not be stored, so the job did not succeed for its user.
        fs, spool = self.small_spool("2m", "head -c 3000000 /dev/zero > /var/runtime/output/big;"
                                     "echo small > /var/runtime/output/small; echo 'PlanQK:Job:Result: 1'",
                                     resources={"outputMax": 8 << 20})
        o = self.run_job(spool)
        self.assertEqual(o.rc, 0, o.stderr)
        self.assertEqual((o.status, o.error_code), ("FAILED", "DISK_FULL"), o.exit)
        self.assertIn("result files", o.exit["error"]["detail"])
        self.assertIn("Result file 'big' not kept: the spool's file system is full.", o.log)
        self.assertFalse(os.path.exists(os.path.join(spool, "output", "big")))
        self.assertFalse(os.path.exists(os.path.join(spool, ".exit.json.reserve")))
        # what a job keeps within the spool's room stays a success
        fs, spool = self.small_spool("4m", "head -c 1000000 /dev/zero > /var/runtime/output/fits",
                                     resources={"outputMax": 8 << 20})
        o = self.run_job(spool)
        self.assert_succeeded(o)
        self.assertEqual(os.path.getsize(os.path.join(spool, "output", "fits")), 1000000)

    def test_long_line_is_not_fatal(self):
        o = self.run_job(self.spool("head -c 3000000 /dev/zero | tr '\\0' x; echo; echo 'PlanQK:Job:Result: 1'"),
                         "--result-max=1M")
        self.assert_succeeded(o)
        self.assertEqual(o.result, 1)
        long = [e for e in o.of("log") if e.get("stream") == "stdout"][0]
        self.assertTrue(long["truncated"])
        self.assertEqual(len(long["line"]), 64 * 1024)

    # -- the sandbox ---------------------------------------------------------------------------

    def test_reads_input_files(self):
        o = self.run_job(self.spool("echo \"PlanQK:Job:Result: [$(cat /var/input/data.json), $(cat /var/input/params.json)]\";"
                                    "ls /var/input",
                                    data={"values": [1, 2]}))
        self.assert_succeeded(o)
        self.assertEqual(o.result, [{"values": [1, 2]}, {}])
        self.assertTrue(o.log.endswith("data.json\nparams.json\n"))

    def test_runs_as_given_user(self):
        script = ("echo \"PlanQK:Job:Result: [$(id -u), $(id -g), \\\"$(id -G)\\\","
                  " \\\"$(awk '/CapEff/ {print $2}' /proc/self/status)\\\","
                  " \\\"$(awk '/CapBnd/ {print $2}' /proc/self/status)\\\","
                  " \\\"$(awk '/NoNewPrivs/ {print $2}' /proc/self/status)\\\"]\"")
        o = self.run_job(self.spool(script))
        self.assert_succeeded(o)
        self.assertEqual(o.result[:3], [self.uid, self.gid, str(self.gid)])
        self.assertEqual(o.result[3], "0000000000000000")
        self.assertEqual(o.result[4], "0000000000000000")
        self.assertEqual(o.result[5], "1")
        # root's jobs run as nobody
        o = self.run_job(self.spool(script, uid=0, gid=0))
        self.assert_succeeded(o)
        self.assertEqual(o.result[:2], [65534, 65534])

    def test_root_is_read_only(self):
        o = self.run_job(self.spool(
            "for p in /x /bin/x /usr/x /var/input/x /var/lib/x /tmp/x; do"
            "  if touch $p 2>/dev/null; then echo $p:writable; else echo $p:denied; fi; done;"
            "grep ' / ' /proc/mounts"))
        self.assert_succeeded(o)
        for p in ("/x", "/bin/x", "/usr/x", "/var/input/x", "/var/lib/x"):
            self.assertIn(f"{p}:denied", o.log)
        self.assertIn("/tmp/x:writable", o.log)
        # the image's sandbox root (sandbox-root.h), or bwrap's tmpfs where there is none
        self.assertRegex(o.log, r"(overlay / overlay|tmpfs / tmpfs) ro,nosuid,nodev")

    def test_image_mounted_nosuid_nodev(self):
        # the image's squashfs, or the sandbox root made from it (sandbox-root.h)
        o = self.run_job(self.spool("grep -E 'squashfs| / overlay ' /proc/mounts"))
        self.assert_succeeded(o)
        lines = [l for l in o.log.splitlines() if "squashfs" in l or " / overlay " in l]
        self.assertTrue(lines)
        for l in lines:
            opts = l.split()[3].split(",")
            self.assertIn("ro", opts)
            self.assertIn("nosuid", opts)
            self.assertIn("nodev", opts)

    def test_no_network(self):
        script = "ip -o link | cut -d: -f2 | tr -d ' '"
        o = self.run_job(self.spool(script))
        self.assert_succeeded(o)
        self.assertEqual(o.log.split(), ["lo"])
        host = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        if len(host.splitlines()) > 1:
            o = self.run_job(self.spool(script, network=True))
            self.assert_succeeded(o)
            self.assertGreater(len(o.log.split()), 1)

    def image_with_etc(self):
        """The busybox image plus an /etc/resolv.conf and /etc/hosts of its own, as an image built
        elsewhere carries them."""
        root = os.path.join(self.tmp.path, "etc-rootfs")
        shutil.copytree(os.path.join(os.path.dirname(self.image), "rootfs"), root, symlinks=True)
        with open(os.path.join(root, "etc", "resolv.conf"), "w") as f:
            f.write("nameserver 192.0.2.53\n")
        with open(os.path.join(root, "etc", "hosts"), "w") as f:
            f.write("192.0.2.1 built-here\n")
        return rootfs.make_squashfs(root, os.path.join(self.tmp.path, "etc.squashfs"))

    def etc_files(self, **spec):
        """The job's /etc/resolv.conf and /etc/hosts (None: it has none)."""
        script = ("for f in /etc/resolv.conf /etc/hosts; do"
                  "  if [ -e $f ]; then echo \"== $f\"; cat $f; else echo \"== $f none\"; fi; done")
        o = self.run_job(self.spool(script, **spec))
        self.assert_succeeded(o)
        parts = o.log.split("== ")[1:]
        files = {}
        for p in parts:
            head, _, body = p.partition("\n")
            files[head.split()[0]] = None if head.endswith(" none") else body
        return files

    @staticmethod
    def host_file(path):
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def test_network_gets_hosts_resolver(self):
        # The job shares the host's network namespace, so the host's resolver configuration
        # (its stub at 127.0.0.53 included) is right for it; an image's file names the servers of
        # wherever it was built, and one without falls back to 127.0.0.1.
        host = {"/etc/resolv.conf": self.host_file("/etc/resolv.conf"), "/etc/hosts": self.host_file("/etc/hosts")}
        self.assertIsNotNone(host["/etc/resolv.conf"], "the test needs a host /etc/resolv.conf")
        self.assertEqual(self.etc_files(network=True), host)
        self.assertEqual(self.etc_files(image=self.image_with_etc(), network=True), host)

    def test_no_network_keeps_images_resolver(self):
        self.assertEqual(self.etc_files(), {"/etc/resolv.conf": None, "/etc/hosts": None})
        self.assertEqual(self.etc_files(image=self.image_with_etc()),
                         {"/etc/resolv.conf": "nameserver 192.0.2.53\n", "/etc/hosts": "192.0.2.1 built-here\n"})

    # -- the sandbox's root (sandbox-root.h: one overlay per image mount, or the image's
    #    entries bound one by one): what a job sees of an image --------------------------------

    def odd_image(self, name, change):
        """The busybox image's tree changed by change(root), squashed."""
        root = os.path.join(self.tmp.path, f"{name}-rootfs")
        shutil.copytree(os.path.join(os.path.dirname(self.image), "rootfs"), root, symlinks=True)
        change(root)
        return rootfs.make_squashfs(root, os.path.join(self.tmp.path, f"{name}.squashfs"))

    def without_sandbox_root(self, image):
        """Makes the next job of image build its root entry by entry, as where overlayfs cannot be
        mounted: the mark of a failed attempt, which lives with the image's mount (the next job
        mounting the image tries again)."""
        st = os.stat(image)
        entry = os.path.join(self.runtime, "images", f"{st.st_dev:x}-{st.st_ino:x}")
        for name in os.listdir(os.path.join(self.runtime, "images")) if os.path.isdir(
                os.path.join(self.runtime, "images")) else []:
            self.assertEqual(rootfs.mounts_under(os.path.join(self.runtime, "images", name)), [])
        for flags in range(64):
            os.makedirs(os.path.join(entry, f"derived-sandbox-1-{flags:02x}"), exist_ok=True)
            open(os.path.join(entry, f"derived-sandbox-1-{flags:02x}", "failed"), "w").close()

    def seen_paths(self, paths, **spec):
        """{path: 'missing' | 'dir' | 'link' | 'file:CONTENT' | 'other'} as the job sees them,
        the same with the sandbox root made once for the image (sandbox-root.h) and with the
        image's entries bound one by one."""
        script = "; ".join(
            f"if [ -L {p} ]; then echo '{p} link'; elif [ -d {p} ]; then echo '{p} dir';"
            f" elif [ -f {p} ]; then echo \"{p} file:$(cat {p})\"; elif [ -e {p} ]; then echo '{p} other';"
            f" else echo '{p} missing'; fi" for p in paths)
        script += "; awk '$2 == \"/\" {print \"/ root:\" $3}' /proc/mounts"
        seen = []
        for fs in ("overlay", "tmpfs"):
            if fs == "tmpfs":
                self.without_sandbox_root(spec.get("image", self.image))
            o = self.run_job(self.spool(script, **spec))
            self.assert_succeeded(o)
            found = dict(line.split(" ", 1) for line in o.log.splitlines())
            self.assertEqual(found.pop("/"), f"root:{fs}")
            seen.append(found)
        self.assertEqual(seen[0], seen[1])
        return seen[0]

    def test_var_symlink_in_image(self):
        # An image whose /var is a symlink: the sandbox has a /var of its own for /var/input,
        # and nothing of the symlink's target shows there.
        def change(root):
            shutil.rmtree(os.path.join(root, "var"))
            os.makedirs(os.path.join(root, "srv", "var"))
            with open(os.path.join(root, "srv", "var", "secret"), "w") as f:
                f.write("image")
            os.symlink("srv/var", os.path.join(root, "var"))
        image = self.odd_image("varlink", change)
        seen = self.seen_paths(["/var", "/var/secret", "/var/input/data.json", "/srv/var/secret"],
                          image=image, data={"a": 1})
        self.assertEqual(seen, {"/var": "dir", "/var/secret": "missing", "/var/input/data.json": 'file:{"a": 1}',
                                "/srv/var/secret": "file:image"})

    def test_image_without_etc_or_var(self):
        def change(root):
            shutil.rmtree(os.path.join(root, "etc"))
            shutil.rmtree(os.path.join(root, "var"))
        image = self.odd_image("bare", change)
        seen = self.seen_paths(["/etc", "/var/input/data.json"], image=image, data={"b": 2})
        self.assertEqual(seen, {"/etc": "missing", "/var/input/data.json": 'file:{"b": 2}'})
        # a job with network gets an /etc of its own with the host's files
        self.assertEqual(self.etc_files(image=image, network=True),
                         {"/etc/resolv.conf": self.host_file("/etc/resolv.conf"), "/etc/hosts": self.host_file("/etc/hosts")})
        self.assertEqual(self.seen_paths(["/etc/passwd"], image=image, network=True), {"/etc/passwd": "missing"})

    def test_special_files_in_image(self):
        # Device nodes, fifos and sockets at the image's top level, in /var and (for a job with
        # its own /etc) in /etc are not in the sandbox; deeper ones are, but the root is nodev:
        # a device node never opens.
        def change(root):
            for d in ("", "var", "etc", "usr"):
                os.mknod(os.path.join(root, d, "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            os.mkfifo(os.path.join(root, "fifo"), 0o666)
            s = socket.socket(socket.AF_UNIX)
            s.bind(os.path.join(root, "sock"))
            s.close()
        image = self.odd_image("special", change)
        paths = ["/null", "/fifo", "/sock", "/var/null", "/etc/null", "/usr/null"]
        self.assertEqual(self.seen_paths(paths, image=image),
                         {"/null": "missing", "/fifo": "missing", "/sock": "missing", "/var/null": "missing",
                          "/etc/null": "other", "/usr/null": "other"})
        self.assertEqual(self.seen_paths(paths, image=image, network=True)["/etc/null"], "missing")
        o = self.run_job(self.spool("head -c1 /usr/null; echo rc=$?; head -c1 /etc/null; echo rc=$?",
                                    image=image, uid=0, gid=0))
        self.assertIn("Permission denied", o.log)
        self.assertEqual(o.log.count("rc=1"), 2, o.log)

    def test_root_whatever_the_umask(self):
        # The sandbox root's own directories and files have their modes whatever the umask of
        # the worker that made them (a Slurm job inherits its user's, 077 say): the job, not
        # root, can walk / and /var and read its input.
        spool = self.spool("ls -ld / /var /var/input | cut -c1-10; cat /var/input/data.json", data={"u": 1})
        p = self.procs.start(["sh", "-c", 'umask 077; exec "$0" "$@"', *self.argv(spool)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        o = self.finish(p, spool)
        self.assert_succeeded(o)
        self.assertEqual(o.log, "drwxr-xr-x\ndrwxr-xr-x\ndrwxr-xr-x\n{\"u\": 1}\n")

    def test_replaced_entries_of_image(self):
        # What the sandbox puts in place of the image's entries of the same names (the init,
        # /proc, /dev, /tmp, /var/input, /var/runtime, /program) shows nothing of the image's.
        def change(root):
            for d in ("program", "var/input", "var/runtime/output", "tmp", "dev", ".gatewayd-init", "var/lab"):
                os.makedirs(os.path.join(root, d), exist_ok=True)
                with open(os.path.join(root, d, "from-image"), "w") as f:
                    f.write("image")
        image = self.odd_image("replaced", change)
        paths = ["/program", "/var/input/from-image", "/var/runtime", "/var/runtime/from-image",
                 "/var/runtime/output/from-image", "/tmp/from-image", "/dev/from-image",
                 "/.gatewayd-init/from-image", "/var/lab/from-image"]
        self.assertEqual(self.seen_paths(paths, image=image),
                         {"/program": "missing", "/var/input/from-image": "missing", "/var/runtime": "dir",
                          "/var/runtime/from-image": "missing", "/var/runtime/output/from-image": "missing",
                          "/tmp/from-image": "missing", "/dev/from-image": "missing",
                          "/.gatewayd-init/from-image": "missing",
                          # not a lab member: the image's /var/lab is its own
                          "/var/lab/from-image": "file:image"})
        # without result files, no /var/runtime at all
        self.assertEqual(self.seen_paths(["/var/runtime"], image=image, resources={"outputFiles": 0}),
                         {"/var/runtime": "missing"})

    def test_own_pid_namespace(self):
        o = self.run_job(self.spool("echo \"PlanQK:Job:Result: [$$, $(ls /proc | grep -c '^[0-9]')]\""))
        self.assert_succeeded(o)
        pid, nprocs = o.result
        self.assertEqual(pid, 2)          # our init is 1
        # init, sh, the $(...) subshell, ls, grep: nothing of the host's
        self.assertLessEqual(nprocs, 6)
        self.assertGreater(len([p for p in os.listdir("/proc") if p.isdigit()]), 6)

    # -- the sealed sandbox: seccomp filter, private keyring ----------------------------------
    #
    # sandbox-probe (payloads/) calls what the filter denies with arguments that the kernel itself
    # would answer with something else than EPERM (or that succeed unprivileged), so an EPERM can
    # only come from the filter.

    def probe(self, *classes, env=None):
        o = self.run_job(self.spool(command=["/usr/local/bin/sandbox-probe", *classes], env=env or {}))
        self.assert_succeeded(o)
        return o.result

    def assert_denied(self, results, errno="EPERM"):
        self.assertEqual(results, {k: errno for k in results}, results)

    def probe_binary(self):
        """The payload as built on the host (the image's root file system is kept beside it)."""
        return os.path.join(os.path.dirname(self.image), "rootfs", "usr", "local", "bin", "sandbox-probe")

    def test_seccomp_filter_in_force(self):
        r = self.probe("status", "normal")
        self.assertEqual(r["status"], {"seccomp": 2})
        # what every program needs still works: fork, threads (glibc falls back from clone3
        # to clone), sockets
        self.assertEqual(r["normal"], {"fork": "OK", "thread": "OK", "socket-unix": "OK"})

    def test_no_namespaces(self):
        r = self.probe("namespaces")["namespaces"]
        # clone3's flags are behind a pointer the filter cannot read: ENOSYS makes libc use clone
        self.assertEqual(r.pop("clone3"), "ENOSYS")
        # also through the x32 and i386 entry points
        self.assert_denied(r)

    def test_no_keyring(self):
        key = f"gatewayd-probe-{os.getpid()}-{self.n}"
        r = self.probe("keyring", env={"PROBE_KEY": key})["keyring"]
        # the submitting user's own keyring on the host did not get the key (searched as the
        # user; a key found is unlinked again)
        found = subprocess.run(["/usr/bin/python3", "-c", FIND_USER_KEY, key], user=self.uid, group=self.gid,
                               extra_groups=[], capture_output=True, text=True)
        self.assertEqual(found.stdout.strip(), "ENOKEY", f"the job reached the user's keyring: {found}")
        self.assert_denied(r)

    def test_private_session_keyring(self):
        # The worker runs in a session keyring of its own; the job must neither possess it nor
        # any other keyring of the host's sessions (/proc/keys lists what the reader may view).
        name = f"gatewayd-test-ses-{os.getpid()}-{self.n}"
        spool = self.spool("cat /proc/keys")
        p = self.procs.start([self.probe_binary(), "session", name, "--", *self.argv(spool)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        o = self.finish(p, spool)
        self.assert_succeeded(o)
        self.assertNotIn(name, o.log)
        self.assertIn("_ses", o.log)     # its own, new session keyring

    def test_no_mount(self):
        self.assert_denied(self.probe("mount")["mount"])

    def test_no_bpf_perf_userfaultfd_io_uring(self):
        # and no AF_VSOCK socket, which would reach the host past the network namespace
        self.assert_denied(self.probe("kernel")["kernel"])

    def test_no_clock_changes(self):
        self.assert_denied(self.probe("clock")["clock"])

    def test_no_reboot_or_kexec(self):
        self.assert_denied(self.probe("reboot")["reboot"])

    def test_no_kernel_modules(self):
        self.assert_denied(self.probe("modules")["modules"])

    def test_no_process_inspection_calls(self):
        # kcmp, pidfd_getfd, process_madvise, open_by_handle_at: denied as by the container
        # profiles without CAP_SYS_PTRACE / CAP_DAC_READ_SEARCH (ptrace itself stays allowed)
        self.assert_denied(self.probe("ptrace")["ptrace"])

    # -- lifecycle -----------------------------------------------------------------------------

    def test_cancel(self):
        spool = self.spool("trap 'echo got-term; exit 5' TERM; echo ready; while :; do sleep 0.1; done")
        p = self.start(spool, "--kill-grace=5")
        self.wait_event(p, lambda e: e.get("line") == "ready")
        pidfile = os.path.join(spool, "worker.pid")
        with open(pidfile) as f:
            self.assertEqual(int(f.read()), p.pid)
        with open(pidfile) as f:
            with self.assertRaises(BlockingIOError):
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        p.send_signal(signal.SIGTERM)
        o = self.finish(p, spool)
        self.assertEqual(o.rc, 0)
        self.assertEqual(o.status, "CANCELLED")
        self.assertEqual(o.error_code, "CANCELLED")
        self.assertIn("got-term", o.log)       # it was asked nicely first
        self.assertEqual(o.exit["exitCode"], 5)

    def test_cancel_as_the_sandbox_starts(self):
        # The cancel comes as soon as the sandbox's pid is known, before its init took signals:
        # as pid 1 of the sandbox's pid namespace without a handler, the init would have the
        # kernel drop a SIGTERM then (the cancel waited the whole grace, 30 s here). The worker
        # holds it back until the init says it is ready.
        for _ in range(3):
            spool = self.spool("trap 'exit 5' TERM; echo ready; while :; do sleep 0.1; done")
            p = self.start(spool, "--kill-grace=30")
            self.wait_event(p, lambda e: e.get("event") == "status" and e.get("status") == "RUNNING")
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            o = self.finish(p, spool)
            self.assertLess(time.monotonic() - t0, 15, "the cancel waited for the kill grace")
            self.assertEqual(o.status, "CANCELLED")
            self.assertNotEqual(o.exit["signal"], signal.SIGKILL)

    def test_cancel_ignored_sigterm(self):
        spool = self.spool("trap '' TERM; echo ready; while :; do sleep 0.1; done")
        p = self.start(spool, "--kill-grace=0.5")
        self.wait_event(p, lambda e: e.get("line") == "ready")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        o = self.finish(p, spool)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(o.status, "CANCELLED")
        self.assertEqual(o.exit["signal"], signal.SIGKILL)

    def test_events_reader_goes_away(self):
        # The worker must finish the spool when nobody reads its events any more (gatewayd died).
        spool = self.spool("echo started; sleep 0.5; for i in $(seq 1 2000); do echo after-$i; done;"
                           "echo 'PlanQK:Job:InterimResult: 1'; echo 'PlanQK:Job:Result: \"finished\"'")
        r, w = os.pipe()
        p = self.procs.start(self.argv(spool), stdout=w, stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as events:
            for line in events:
                if json.loads(line).get("line") == "started":
                    break
        # the read end is closed now: writes get EPIPE
        p.wait(30)
        self.procs.children.remove(p)
        o = Outcome(spool, p.returncode, [])
        self.assertEqual(o.rc, 0)
        self.assert_succeeded(o)
        self.assertEqual(o.result, "finished")
        self.assertEqual(o.interim, [1])
        self.assertIn("after-2000\n", o.log)

    def test_events_reader_stops_reading(self):
        # A reader that is alive but reads nothing (gatewayd hanging) must not hold up the job,
        # its time limit, or the spool.
        spool = self.spool("seq 1 100000; echo 'PlanQK:Job:Result: \"done\"'")
        r, w = os.pipe()
        try:
            t0 = time.monotonic()
            p = self.procs.start(self.argv(spool, "--events-timeout=0.5"), stdout=w, stderr=subprocess.DEVNULL)
            p.wait(30)
            self.procs.children.remove(p)
            self.assertLess(time.monotonic() - t0, 10)
        finally:
            os.close(w)
            os.close(r)
        o = Outcome(spool, p.returncode, [])
        self.assert_succeeded(o)
        self.assertEqual(o.result, "done")
        self.assertIn("\n100000\n", o.log)

    def test_parent_process_dies(self):
        # gatewayd (here: a shell) starts the worker in its own session and dies at once.
        spool = self.spool("sleep 0.5; echo 'PlanQK:Job:Result: \"orphan\"'")
        sh = self.procs.start(["/bin/sh", "-c", 'setsid "$@" >/dev/null 2>&1 & echo $!', "sh", *self.argv(spool)],
                              stdout=subprocess.PIPE)
        worker_pid = int(sh.stdout.readline())
        sh.wait(10)
        self.procs.children.remove(sh)
        procs.wait_for(lambda: os.path.exists(os.path.join(spool, "exit.json")), 30, "exit.json")
        procs.wait_for(lambda: not os.path.exists(f"/proc/{worker_pid}") or
                       open(f"/proc/{worker_pid}/stat").read().split()[2] == "Z", 10, "worker exit")
        o = Outcome(spool, 0, [])
        self.assert_succeeded(o)
        self.assertEqual(o.result, "orphan")

    def test_concurrent_jobs_share_one_mount(self):
        spools = [self.spool("echo ready; sleep 2; echo 'PlanQK:Job:Result: 1'") for _ in range(3)]
        ps = [self.start(s) for s in spools]
        for p in ps:
            self.wait_event(p, lambda e: e.get("line") == "ready")
        # all three run now: one image mount and one sandbox root made from it, three references
        # (and a result files tmpfs each)
        mounts = rootfs.mounts_under(os.path.join(self.runtime, "images"))
        self.assertEqual(len(mounts), 2, mounts)
        entry = os.path.dirname(min(mounts, key=len))
        self.assertEqual(sorted(mounts), [os.path.join(entry, "derived-sandbox-1-20", "root"), os.path.join(entry, "root")])
        self.assertEqual(len(rootfs.mounts_under(os.path.join(self.runtime, "output"))), 3)
        self.assertEqual(len(os.listdir(os.path.join(entry, "refs"))), 3)
        outcomes = [self.finish(p, s) for p, s in zip(ps, spools)]
        for o in outcomes:
            self.assert_succeeded(o)
        self.assertEqual(rootfs.mounts_under(self.runtime), [])
        self.assertFalse(os.path.exists(entry))
        # the sandbox root went first, so its hold on the squashfs did not keep the loop device
        self.assertEqual(subprocess.run(["losetup", "-j", self.image], capture_output=True, text=True,
                                        check=True).stdout, "")

    def mount_ids(self):
        """{mount point: mount id} of the image mounts below the runtime dir."""
        images = os.path.realpath(os.path.join(self.runtime, "images"))
        found = {}
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4].startswith(images + "/"):
                    found[fields[4]] = fields[0]
        return found

    def test_image_mount_lingers(self):
        # --image-linger: the image stays mounted after its last job, and the next job of the
        # same image uses that mount (the same mount id, not a new one)
        s1 = self.spool("echo 'PlanQK:Job:Result: 1'")
        self.assert_succeeded(self.finish(self.start(s1, "--image-linger=30"), s1))
        # the image's mount and the sandbox root made from it linger
        first = self.mount_ids()
        self.assertEqual(len(first), 2, first)
        entry = os.path.dirname(min(first, key=len))
        self.assertTrue(os.path.exists(os.path.join(entry, "linger")))
        with open(os.path.join(entry, "source")) as f:
            self.assertEqual(f.read(), self.image)
        s2 = self.spool("echo 'PlanQK:Job:Result: 2'")
        self.assert_succeeded(self.finish(self.start(s2, "--image-linger=30"), s2))
        self.assertEqual(self.mount_ids(), first)
        # its file replaced (a re-pull): the next job mounts the new file, the stale mount goes
        replaced = os.path.join(self.tmp.path, "replaced.squashfs")
        shutil.copyfile(self.image, replaced)
        os.replace(replaced, self.image)
        s3 = self.spool("echo 'PlanQK:Job:Result: 3'")
        self.assert_succeeded(self.finish(self.start(s3), s3))   # without linger: unmounted at its end
        self.assertEqual(self.mount_ids(), {})
        self.assertFalse(os.path.exists(entry))

    def test_worker_killed_outright(self):
        # SIGKILL: the sandbox dies with the worker (PDEATHSIG, --die-with-parent); its image
        # reference and cgroups are left behind and cleaned up by the next job.
        spool = self.spool("echo ready; exec sleep 30")
        p = self.start(spool)
        self.wait_event(p, lambda e: e.get("line") == "ready")
        groups = [os.path.join(root, d) for root, dirs, _ in os.walk("/sys/fs/cgroup") for d in dirs
                  if d.startswith(f"gatewayd-job-test-{self.n}-{p.pid}")]
        if not groups:
            self.skipTest("no job cgroups on this host to watch the job's processes with")
        p.kill()
        p.wait()
        self.procs.children.remove(p)

        def job_processes():
            left = []
            for g in groups:
                with open(os.path.join(g, "cgroup.procs")) as f:
                    left += f.read().split()
            return left
        procs.wait_for(lambda: not job_processes(), 10, "the job to die with its worker")
        # its image mount (and the sandbox root made from it) and its result files tmpfs are
        # left behind
        self.assertEqual(len(rootfs.mounts_under(os.path.join(self.runtime, "images"))), 2)
        self.assertEqual(rootfs.mounts_under(os.path.join(self.runtime, "output")),
                         [os.path.join(os.path.realpath(self.runtime), "output", str(p.pid))])

        # the next job, even of another image (a copy: another inode, another mount), cleans up
        other = os.path.join(self.tmp.path, "other.squashfs")
        shutil.copy(self.image, other)
        o = self.run_job(self.spool("echo 'PlanQK:Job:Result: 2'", image=other))
        self.assert_succeeded(o)
        self.assertEqual(rootfs.mounts_under(self.runtime), [])
        for g in groups:
            self.assertFalse(os.path.exists(g), g)

    def test_binary_output(self):
        o = self.run_job(self.spool("printf 'caf\\303\\251 \\377\\376 nul:\\000:\\n'; exit 1"))
        self.assertEqual(o.error_code, "EXIT_CODE")
        self.assertIn("café ?? nul:", o.exit["error"]["detail"])   # exit.json stays UTF-8
        line = [e for e in o.of("log") if e.get("stream") == "stdout"][0]["line"]
        self.assertEqual(line, "café ?? nul:\x00:")
        with open(os.path.join(o.spool, "log"), "rb") as f:
            self.assertEqual(f.read(), b"caf\xc3\xa9 \xff\xfe nul:\x00:\n")   # the log has the bytes

    def test_no_cgroup_without_limit(self):
        # v1: a hierarchy whose limit the job does not have gets no job cgroup (each one costs an
        # RCU grace period to enter); the pids limit is always there (--default-pids).
        if not os.path.exists("/sys/fs/cgroup/cpu") or not os.path.exists("/sys/fs/cgroup/pids"):
            self.skipTest("no v1 cpu and pids hierarchies on this host")
        spool = self.spool("echo ready; sleep 30", resources={"pids": 50})
        p = self.start(spool)
        self.wait_event(p, lambda e: e.get("line") == "ready")
        groups = [os.path.relpath(os.path.join(root, d), "/sys/fs/cgroup") for root, dirs, _ in os.walk("/sys/fs/cgroup")
                  for d in dirs if d.startswith(f"gatewayd-job-test-{self.n}-{p.pid}")]
        self.assertTrue([g for g in groups if g.startswith("pids/")], groups)
        self.assertEqual([g for g in groups if g.startswith(("cpu/", "memory/"))], [])
        p.send_signal(signal.SIGTERM)
        o = self.finish(p, spool)
        self.assertEqual(o.status, "CANCELLED")

    def test_cgroups_removed(self):
        # The job cgroup lives below the worker's (= our) cgroup in each v1 hierarchy here.
        own = {}
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                for c in ctrls.split(","):
                    own[c] = path
        bases = [f"/sys/fs/cgroup/{c}{own[c]}".rstrip("/") for c in ("memory", "pids", "cpu")
                 if c in own and os.path.exists(f"/sys/fs/cgroup/{c}")]
        if not bases:
            self.skipTest("no v1 memory/pids hierarchy on this host")
        spool = self.spool("echo ready; sleep 30", resources={"memory": 64 << 20, "pids": 50, "cpus": 0.5})
        p = self.start(spool)
        self.wait_event(p, lambda e: e.get("line") == "ready")
        job_groups = [os.path.join(b, d) for b in bases for d in os.listdir(b)
                      if d.startswith(f"gatewayd-job-test-{self.n}-{p.pid}")]
        self.assertEqual(len(job_groups), len(bases), job_groups)
        mem = [g for g in job_groups if "/memory/" in g]
        if mem:
            with open(os.path.join(mem[0], "memory.limit_in_bytes")) as f:
                self.assertEqual(int(f.read()), 64 << 20)
        pids = [g for g in job_groups if "/pids/" in g]
        if pids:
            with open(os.path.join(pids[0], "pids.max")) as f:
                self.assertEqual(int(f.read()), 52)    # + bwrap and our init
        cpu = [g for g in job_groups if "/cpu/" in g]
        if cpu:
            with open(os.path.join(cpu[0], "cpu.cfs_quota_us")) as f:
                self.assertEqual(int(f.read()), 50000)
        p.send_signal(signal.SIGTERM)
        o = self.finish(p, spool)
        self.assertEqual(o.status, "CANCELLED")
        for g in job_groups:
            self.assertFalse(os.path.exists(g), g)

    # -- bad input -----------------------------------------------------------------------------

    def test_invalid_job_json(self):
        spool = self.spool("true", resources={"memroy": 1})
        o = self.run_job(spool)
        self.assertEqual(o.rc, 2)
        self.assertEqual(o.status, "FAILED")
        self.assertEqual(o.error_code, "INVALID_JOB")
        self.assertEqual(o.exit["error"]["detail"], "job.json: resources.memroy: unknown key")
        self.assertEqual(o.log, "[gateway-worker] error: job.json: resources.memroy: unknown key\n")
        self.assertEqual(o.events[-1]["event"], "done")

    def test_unparsable_job_json(self):
        spool = self.spool("true")
        with open(os.path.join(spool, "job.json"), "w") as f:
            f.write("{not json")
        o = self.run_job(spool)
        self.assertEqual(o.rc, 2)
        self.assertIn("job.json: not valid JSON", o.exit["error"]["detail"])

    def test_missing_image(self):
        o = self.run_job(self.spool("true", image="/nonexistent/image.squashfs"))
        self.assertEqual(o.status, "FAILED")
        self.assertEqual(o.error_code, "IMAGE_ERROR")
        self.assertIn("No such file", o.exit["error"]["detail"])
        self.assertIsNone(o.exit["startedAt"])

    def test_image_not_squashfs(self):
        bogus = os.path.join(self.tmp.path, "bogus.squashfs")
        with open(bogus, "wb") as f:
            f.write(b"\0" * 8192)
        o = self.run_job(self.spool("true", image=bogus))
        self.assertEqual(o.error_code, "IMAGE_ERROR")
        self.assertEqual(os.listdir(os.path.join(self.runtime, "images")), [])

    def test_missing_workdir(self):
        o = self.run_job(self.spool("true", workdir="/does/not/exist"))
        self.assertEqual(o.status, "FAILED")
        self.assertEqual(o.error_code, "SANDBOX_ERROR")
        self.assertIn("/does/not/exist", o.exit["error"]["detail"])
        self.assertIsNone(o.exit["exitCode"])

    def test_input_symlink_refused(self):
        spool = self.spool("cat /var/input/data.json")
        os.symlink("/etc/shadow", os.path.join(spool, "input", "data.json"))
        o = self.run_job(spool)
        self.assertEqual(o.status, "FAILED")
        self.assertEqual(o.error_code, "INVALID_JOB")
        self.assertNotIn("root:", o.log)

    def test_finished_spool_refused(self):
        spool = self.spool("echo 'PlanQK:Job:Result: 1'")
        self.assert_succeeded(self.run_job(spool))
        o = self.run_job(spool)
        self.assertEqual(o.rc, 1)
        self.assertIn("already has exit.json", o.stderr)
        self.assertEqual(o.result, 1)

    def test_locked_spool_refused(self):
        spool = self.spool("echo ready; sleep 30")
        p = self.start(spool)
        self.wait_event(p, lambda e: e.get("line") == "ready")
        o = self.run_job(spool)
        self.assertEqual(o.rc, 1)
        self.assertIn(f"in use by worker {p.pid}", o.stderr)
        self.procs.stop(p)

    def test_bad_arguments(self):
        for args, message in (([], "Expected exactly one argument"),
                              (["--log-max=lots", "/tmp"], "Invalid value for --log-max"),
                              (["--events-fd=99", "/tmp"], "not an open file descriptor"),
                              (["--bogus", "/tmp"], "unrecognized option"),
                              (["--runtime-dir", self.runtime, "/nonexistent"], "Cannot resolve spool directory")):
            r = subprocess.run([*self.worker_argv, *args], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(message, r.stderr, args)

    def test_events_fd_and_pid_file(self):
        spool = self.spool("echo 'PlanQK:Job:Result: 3'")
        pidfile = os.path.join(self.tmp.path, "elsewhere.pid")
        r, w = os.pipe()
        p = self.procs.start(self.argv(spool, f"--events-fd={w}", f"--pid-file={pidfile}"),
                             stdout=subprocess.PIPE, pass_fds=(w,))
        os.close(w)
        with os.fdopen(r) as f:
            events = [json.loads(line) for line in f]
        self.assertEqual(p.stdout.read(), b"")    # nothing on stdout
        p.wait(30)
        self.procs.children.remove(p)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(events[-1]["event"], "done")
        self.assertEqual(events[-1]["status"], "SUCCEEDED")
        self.assertFalse(os.path.exists(pidfile))
        self.assertFalse(os.path.exists(os.path.join(spool, "worker.pid")))

    def test_bad_input_files(self):
        spool = self.spool("true")
        os.mkdir(os.path.join(spool, "input", "params.json"))
        o = self.run_job(spool)
        self.assertEqual(o.error_code, "INVALID_JOB")
        self.assertIn("input", o.exit["error"]["detail"])
        o = self.run_job(self.spool("true", image=self.tmp.path))
        self.assertEqual(o.error_code, "IMAGE_ERROR")
        self.assertIn("not a regular file", o.exit["error"]["detail"])

    def test_not_root(self):
        spool = self.spool("true")
        os.chmod(self.tmp.path, 0o755)
        r = subprocess.run(["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--",
                            *self.argv(spool)], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("must run as root", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(spool, "exit.json")))

    def test_help(self):
        r = subprocess.run([*self.worker_argv, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("Usage: gateway-worker run [OPTIONS...] SPOOLDIR", r.stdout)
        self.assertIn("--kill-grace=SECONDS", r.stdout)


@unittest.skipUnless(os.geteuid() == 0, "gateway-worker run needs root")
class WorkerRunOnlyTest(WorkerRunTest):
    """The same tests against gateway-worker-run, which gatewayd's local platform prefers: it
    must behave exactly like "gateway-worker run"."""

    @classmethod
    def run_argv(cls):
        return [worker_run_binary()]

    def test_same_help_without_pull_libraries(self):
        mine = subprocess.run([worker_run_binary(), "--help"], capture_output=True, text=True)
        verb = subprocess.run([worker_binary(), "run", "--help"], capture_output=True, text=True)
        self.assertEqual((mine.returncode, mine.stdout), (verb.returncode, verb.stdout))
        libs = subprocess.run(["ldd", worker_run_binary()], capture_output=True, text=True).stdout
        for lib in ("libcurl", "libarchive", "libcrypto", "libisal"):
            self.assertNotIn(lib, libs)


@unittest.skipUnless(os.geteuid() == 0, "gateway-worker run needs root")
class PulledImageTest(unittest.TestCase):
    """The run verb on what the pull verb produces: a squashfs plus <id>.meta.json from a real
    registry, referenced from job.json by metaPath, as gatewayd will do."""

    def setUp(self):
        self.procs = procs.Processes()
        self.tmp = procs.TempDir(prefix="gatewayd-run-pulled-")
        self.addCleanup(self.tmp.cleanup)
        self.addCleanup(lambda: self.assertEqual(rootfs.unmount_all_under(self.tmp.path), []))
        self.addCleanup(self.procs.stop_all)
        self.registry = Registry(self.procs, self.tmp.path).start()

    def test_run_pulled_image(self):
        image = images.Image([(images.Layer().busybox(("sh", "echo", "cat", "pwd", "id")).dir("srv"), "gzip")],
                             entrypoint=["/bin/sh", "-c"],
                             cmd=['echo "PlanQK:Job:Result: [\\"$GREETING\\", \\"$(pwd)\\", $(cat /var/input/data.json)]"'],
                             env=["PATH=/bin", "GREETING=from-image"], workdir="/srv")
        images.push_image(self.registry, "service", "v1", image)
        image_dir = os.path.join(self.tmp.path, "images")
        subprocess.run([worker_binary(), "pull", "--image-dir", image_dir,
                        "--cache-dir", os.path.join(self.tmp.path, "cache"),
                        "--expand-dir", os.path.join(self.tmp.path, "expand"),
                        f"{self.registry.host}/service:v1"],
                       check=True, stdout=subprocess.DEVNULL, timeout=120)
        meta = [f for f in os.listdir(image_dir) if f.endswith(".meta.json")]
        self.assertEqual(len(meta), 1)
        squashfs = os.path.join(image_dir, meta[0][:-len(".meta.json")] + ".squashfs")

        spool = os.path.join(self.tmp.path, "job")
        os.makedirs(os.path.join(spool, "input"))
        with open(os.path.join(spool, "job.json"), "w") as f:
            json.dump({"id": "pulled", "image": {"path": squashfs, "metaPath": os.path.join(image_dir, meta[0])},
                       "uid": 65534, "gid": 65534}, f)
        with open(os.path.join(spool, "input", "data.json"), "w") as f:
            f.write('{"n": 1}')
        p = subprocess.run([worker_binary(), "run", "--runtime-dir", os.path.join(self.tmp.path, "runtime"), spool],
                           stdout=subprocess.DEVNULL, timeout=60)
        self.assertEqual(p.returncode, 0)
        with open(os.path.join(spool, "exit.json")) as f:
            self.assertEqual(json.load(f)["status"], "SUCCEEDED")
        with open(os.path.join(spool, "result.json")) as f:
            self.assertEqual(json.load(f), ["from-image", "/srv", {"n": 1}])


if __name__ == "__main__":
    unittest.main()
