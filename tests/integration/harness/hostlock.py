"""Host-wide state that tests change (a compiled-in system path, the host's IP forwarding) while
the plain and the ASan suites run at the same time: the classes that change it take turns, each
holding an exclusive flock from before its check until after it has put things back."""
import fcntl


class HostLock:
    def __init__(self, name):
        self.f = open(f"/run/lock/gatewayd-test-{name}.lock", "w")
        fcntl.flock(self.f, fcntl.LOCK_EX)

    def release(self):
        if self.f:
            fcntl.flock(self.f, fcntl.LOCK_UN)
            self.f.close()
            self.f = None
