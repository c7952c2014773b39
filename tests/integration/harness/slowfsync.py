"""A gateway-worker whose `run` holds every fsync() of its main thread (result.json, exit.json and
its directory) for a while, under strace's fault injection: the time between a job's sandbox
ending (its FINISHING status) and its outcome being stored, made long enough to watch."""
import os
import shutil

from . import procs


def worker(real_worker, delay_sec):
    """(TempDir, path): the TempDir holds `gateway-worker` (by that name: `serve --worker` then
    passes the verb to it), which runs real_worker for every verb, under strace for `run`. The
    caller cleans the TempDir up."""
    strace = shutil.which("strace")
    if not strace:
        raise RuntimeError("strace is needed (Debian: strace)")
    d = procs.TempDir(prefix="gatewayd-slow-fsync-worker-")
    os.chmod(d.path, 0o755)
    path = os.path.join(d.path, "gateway-worker")
    with open(path, "w") as f:
        f.write(f"""#!/bin/sh
if [ "$1" = run ]; then
        exec {strace} -qq -o /dev/null -e trace=fsync -e inject=fsync:delay_enter={int(delay_sec * 1000000)} \\
                {real_worker} "$@"
fi
exec {real_worker} "$@"
""")
    os.chmod(path, 0o755)
    return d, path
