"""Test accounts, created idempotently, and running commands as them.

gwtest-admin   member of gatewayd-admin (an administrator through the polkit test rule)
gwtest-user    an ordinary user
gwtest-other   another ordinary user (for "someone else's object" tests)"""
import grp
import os
import pwd
import subprocess
import time

ADMIN_GROUP = "gatewayd-admin"
ADMIN = "gwtest-admin"
USER = "gwtest-user"
OTHER = "gwtest-other"


def _retry(argv, ok_codes):
    """useradd/groupadd take a lock on /etc/passwd; other test runs on this machine may hold
    it for a moment (exit status 10 for useradd, 10 for groupadd: 'cannot lock')."""
    for attempt in range(50):
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode in ok_codes:
            return p.returncode
        if p.returncode == 10 or "lock" in p.stderr:
            time.sleep(0.1)
            continue
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    raise RuntimeError(f"{' '.join(argv)}: passwd database stayed locked")


def ensure_group(name):
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    _retry(["groupadd", "--system", name], ok_codes=(0, 9))  # 9: exists already
    return grp.getgrnam(name).gr_gid


def ensure_user(name, groups=()):
    for g in groups:
        ensure_group(g)
    try:
        pwd.getpwnam(name)
    except KeyError:
        argv = ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh",
                "--user-group"]
        if groups:
            argv += ["--groups", ",".join(groups)]
        _retry(argv + [name], ok_codes=(0, 9))
    for g in groups:
        if name not in grp.getgrnam(g).gr_mem:
            _retry(["usermod", "--append", "--groups", g, name], ok_codes=(0,))
    return pwd.getpwnam(name).pw_uid


def remove_from_group(name, group):
    """Takes NAME out of GROUP's members (as an administrator would, while gatewayd runs)."""
    _retry(["gpasswd", "--delete", name, group], ok_codes=(0, 3))  # 3: not a member


def remove_group(group):
    _retry(["groupdel", group], ok_codes=(0, 6))  # 6: no such group


def ensure_test_users():
    """Creates the three test accounts (and the admin group); returns {name: uid}."""
    return {
        ADMIN: ensure_user(ADMIN, groups=(ADMIN_GROUP,)),
        USER: ensure_user(USER),
        OTHER: ensure_user(OTHER),
    }


def uid_of(name):
    return pwd.getpwnam(name).pw_uid


def as_user_argv(user, argv):
    """ARGV prefixed so that it runs as USER (with the user's groups, its login environment
    not loaded); USER None or 'root' runs it unchanged as ourselves (root)."""
    if user is None or user == "root":
        return list(argv)
    return ["runuser", "-u", user, "--"] + list(argv)


def run_as(user, argv, env=None, timeout=60, input=None, check=False):
    """Runs ARGV as USER and returns the CompletedProcess (text mode, output captured).
    runuser keeps the environment given, so DBUS_SYSTEM_BUS_ADDRESS reaches the child."""
    return subprocess.run(as_user_argv(user, argv), env=env if env is not None else os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout, input=input, check=check)
