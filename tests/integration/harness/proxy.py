"""One real gateway-proxy per test class, in front of the class's gatewayd (labs' access proxy)."""
import os
import socket

from . import procs
from .registry import free_port


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class WithProxy:
    """Mixin for a test class with a gatewayd in cls.gw (InstancesBase): start_proxy() in
    setUpClass sets cls.proxy_port; tearDownClass stops it before the rest."""

    @classmethod
    def start_proxy(cls, *extra_args):
        cls.proxy_port = free_port()
        cls.pprocs = procs.Processes()
        cls.pprocs.start(
            [os.path.join(procs.build_dir(), "src/proxy/gateway-proxy"), f"--listen=127.0.0.1:{cls.proxy_port}",
             f"--state-dir={cls.gw.state_dir}", f"--gatewayd-socket={cls.gw.socket_path}", *extra_args])
        procs.wait_for(lambda: _listening(cls.proxy_port), timeout=10, what="gateway-proxy to listen")

    @classmethod
    def tearDownClass(cls):
        try:
            if getattr(cls, "pprocs", None):
                cls.pprocs.stop_all()
        finally:
            super().tearDownClass()
