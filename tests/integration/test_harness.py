"""The harness itself: it must notice sanitizer reports, parse what curl prints, and leave
nothing behind (processes, polkit files, environment)."""
import os
import unittest

from harness import polkit as polkit_mod
from harness.bus import PrivateBus, _alive
from harness.gatewayd import check_sanitizer_output, parse_curl_output
from harness.polkit import Polkit


class Harness(unittest.TestCase):
    def test_sanitizer_reports_fail(self):
        for text in ("==12==ERROR: AddressSanitizer: heap-use-after-free on address",
                     "==12==ERROR: LeakSanitizer: detected memory leaks",
                     "src/gatewayd/db.c:12:5: runtime error: signed integer overflow"):
            with self.subTest(text=text):
                with self.assertRaises(AssertionError):
                    check_sanitizer_output("gatewayd: starting\n" + text + "\n")
        check_sanitizer_output("gatewayd: Loaded 3 services.\ngatewayd: error: no such service\n")

    def test_curl_output_parsing(self):
        raw = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nAllow: GET\r\n\r\n"
               b'{"error":{}}')
        status, headers, body = parse_curl_output(raw)
        self.assertEqual(status, 413)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(body, b'{"error":{}}')

    def test_private_bus_cleans_up(self):
        before = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        bus = PrivateBus().start()
        pid = bus.proc.pid
        self.assertTrue(os.path.exists(bus.socket_path))
        self.assertEqual(os.environ["DBUS_SYSTEM_BUS_ADDRESS"], bus.address)
        bus.stop()
        self.assertFalse(_alive(pid))
        self.assertFalse(os.path.exists(bus.tmp.path))
        self.assertEqual(os.environ.get("DBUS_SYSTEM_BUS_ADDRESS"), before)

    def test_polkit_files_removed_even_if_start_fails(self):
        bus = PrivateBus().start()
        self.addCleanup(bus.stop)
        pk = Polkit(bus)
        saved = polkit_mod.POLKITD
        polkit_mod.POLKITD = "/bin/false"  # exits at once: the name never appears
        try:
            with self.assertRaises(Exception):
                pk.start()
        finally:
            polkit_mod.POLKITD = saved
        self.assertFalse(os.path.exists(pk.installed_policy))
        self.assertFalse(os.path.exists(pk.installed_rules))


if __name__ == "__main__":
    unittest.main()
