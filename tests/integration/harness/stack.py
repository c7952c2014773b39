"""The usual test stack: private system bus, polkitd with gatewayd's actions and the admin-group
rule, test users, and one gatewayd, shared by the tests of a class (each test uses its own
service names). Everything is stopped in tearDownClass; sanitizer reports in the daemon's
stderr fail the test during which they appeared (or the class teardown)."""
import itertools
import os

from . import users
from .bus import PrivateBus
from .gatewayd import Gatewayd, GatewaydTestCase, check_sanitizer_output
from .polkit import Polkit

_counter = itertools.count()


def spec(name, **kw):
    s = {"name": name, "image": "registry.example.org/demo/hello:1.0"}
    s.update(kw)
    return s


class StackTestCase(GatewaydTestCase):
    mode = "direct"
    with_polkit = True
    gatewayd_env = None     # extra environment of gatewayd (e.g. {"GATEWAYD_LOG_LEVEL": "debug"})
    idle_timeout = None
    config = None
    state_dir = None        # default: a temp dir of the Gatewayd
    listen = ()     # "socket" mode: further sockets, [(fdname, "HOST:PORT")]
    wrapper = ()    # argv prefix that execs gatewayd (Gatewayd's wrapper)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        users.ensure_test_users()
        cls.class_tracked = []
        cls.bus = cls.polkit = cls.gw = None
        try:
            cls.bus = PrivateBus().start()
            cls.class_tracked.append(cls.bus)
            if cls.with_polkit:
                cls.polkit = Polkit(cls.bus).start()
                cls.class_tracked.append(cls.polkit)
            cls.gw = Gatewayd(mode=cls.mode, bus=cls.bus, idle_timeout=cls.idle_timeout,
                              config=cls.config, state_dir=cls.state_dir, listen=cls.listen,
                              wrapper=cls.wrapper, env=cls.gatewayd_env)
            cls.class_tracked.append(cls.gw)
            cls.gw.start()
        except BaseException:
            if cls.gw is not None:
                print("\n----- gatewayd output -----\n" + cls.gw.stderr_text()[-20000:])
            cls._stop_stack(check=False)
            raise

    @classmethod
    def _stop_stack(cls, check=True):
        try:
            if cls.gw is not None:
                cls.gw.stop(check=check)
        finally:
            if cls.polkit is not None:
                cls.polkit.stop()
            if cls.bus is not None:
                cls.bus.stop()

    @classmethod
    def tearDownClass(cls):
        cls._stop_stack(check=True)
        super().tearDownClass()

    def tearDown(self):
        if self.gw is not None:
            check_sanitizer_output(self.gw.stderr_text())
        super().tearDown()

    def name(self, prefix="svc"):
        """A service name unique within this run."""
        return f"{prefix}-{os.getpid() % 10000}-{next(_counter)}"

    # Short-hands used by many tests.
    def create(self, name=None, as_user=None, **kw):
        name = name or self.name()
        r = self.gw.http("POST", "/v1/services", spec(name, **kw), as_user=as_user)
        self.assertEqual(r.status, 201, r.body)
        return r.json

    def exists(self, name):
        r = self.gw.http("GET", f"/v1/services/{name}")
        self.assertIn(r.status, (200, 404), r.body)
        return r.status == 200

    def assertError(self, r, status, code, field=None):
        """An HTTP error response: STATUS, {"error":{"code":CODE,"message":...}}, and the
        message naming FIELD if given."""
        self.assertEqual(r.status, status, f"expected {status} {code}, got {r.status}: {r.body}")
        self.assertIsInstance(r.json, dict, f"error body is JSON: {r.body!r}")
        self.assertIn("error", r.json, r.body)
        self.assertEqual(r.json["error"].get("code"), code, r.body)
        msg = r.json["error"].get("message")
        self.assertIsInstance(msg, str, r.body)
        self.assertTrue(msg, "error message is not empty")
        if field is not None:
            self.assertIn(field, msg, f"message names {field!r}: {msg!r}")

    def assertServing(self):
        r = self.gw.http("GET", "/v1/status")
        self.assertEqual(r.status, 200, r.body)
