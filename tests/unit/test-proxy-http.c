/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "http-head.h"
#include "macro.h"
#include "test-main.h"
#include "websocket.h"

/* gateway-proxy's parsers of what strangers send: request heads (strict, bounded) and WebSocket
 * frames (masked, sizes, control frames), and the handshake's accept key (RFC 6455's example). */

START_TEST(test_head_complete) {
        static const char req[] = "GET /tok.en/desk/vnc.html?x=1 HTTP/1.1\r\nHost: lab\r\n"
                                  "Upgrade:  websocket \r\nConnection: keep-alive, Upgrade\r\n\r\nBODY";
        _cleanup_(http_head_freep) HttpHead *h = NULL;

        ck_assert_int_eq(http_head_parse(req, strlen(req), &h), (int) strlen(req) - 4);
        ck_assert_str_eq(h->method, "GET");
        ck_assert_str_eq(h->target, "/tok.en/desk/vnc.html?x=1");
        ck_assert_str_eq(h->version, "HTTP/1.1");
        ck_assert_str_eq(http_head_get(h, "upgrade"), "websocket");
        ck_assert(http_head_has_token(h, "Connection", "upgrade"));
        ck_assert(!http_head_has_token(h, "Connection", "close"));
        ck_assert(http_head_is_websocket(h));
}
END_TEST

START_TEST(test_head_incomplete_and_bad) {
        static const char *const bad[] = {
                "GET /x HTTP/1.1\nHost: a\r\n\r\n",           /* bare LF */
                "GET /x HTTP/2.0\r\n\r\n",
                "GET http://evil/ HTTP/1.1\r\n\r\n",           /* absolute form: not a forward proxy */
                "GET  /x HTTP/1.1\r\n\r\n",
                "G(T /x HTTP/1.1\r\n\r\n",
                "GET /x HTTP/1.1\r\nBad Name: v\r\n\r\n",
                "GET /x HTTP/1.1\r\nName : v\r\n\r\n",
                "GET /x HTTP/1.1\r\nName: a\rb\r\n\r\n",
                "GET /x HTTP/1.1\r\n folded\r\n\r\n",
                "GET /a\tb HTTP/1.1\r\n\r\n",
        };
        HttpHead *h = NULL;
        char *big;

        ck_assert_int_eq(http_head_parse("GET /x HTTP/1.1\r\nHost: a\r\n", 26, &h), 0);
        ck_assert_ptr_null(h);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(http_head_parse(bad[i], strlen(bad[i]), &h) == -EBADMSG, "accepted: %s", bad[i]);
        ck_assert_int_eq(http_head_parse("GET /x\0 HTTP/1.1\r\n\r\n", 21, &h), -EBADMSG);

        big = malloc(HTTP_HEAD_MAX + 10);
        memcpy(big, "GET /x HTTP/1.1\r\nA: ", 20);
        memset(big + 20, 'a', HTTP_HEAD_MAX - 10);
        ck_assert_int_eq(http_head_parse(big, HTTP_HEAD_MAX + 10, &h), -E2BIG);
        free(big);
}
END_TEST

START_TEST(test_head_too_many_fields) {
        char buf[4096] = "GET / HTTP/1.1\r\n";
        HttpHead *h = NULL;

        for (unsigned i = 0; i <= HTTP_HEAD_FIELDS_MAX; i++)
                strcat(buf, "A: b\r\n");
        strcat(buf, "\r\n");
        ck_assert_int_eq(http_head_parse(buf, strlen(buf), &h), -E2BIG);
}
END_TEST

START_TEST(test_accept_key) {
        char accept[WS_ACCEPT_KEY_SIZE];

        ck_assert_int_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", accept), 0);
        ck_assert_str_eq(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        ck_assert_int_eq(ws_accept_key("short", accept), -EINVAL);
        ck_assert_int_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=\n", accept), -EINVAL);
}
END_TEST

/* A masked client frame of payload p (RFC 6455 §5.7's "Hello" with its mask). */
static size_t client_frame(uint8_t *out, unsigned opcode, const char *p, size_t n) {
        static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
        size_t h = 2;

        out[0] = 0x80 | opcode;
        if (n < 126)
                out[1] = 0x80 | (uint8_t) n;
        else {
                out[1] = 0x80 | 126;
                out[2] = (uint8_t) (n >> 8);
                out[3] = (uint8_t) n;
                h = 4;
        }
        memcpy(out + h, mask, 4);
        for (size_t i = 0; i < n; i++)
                out[h + 4 + i] = (uint8_t) p[i] ^ mask[i % 4];
        return h + 4 + n;
}

START_TEST(test_frames) {
        static const uint8_t hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
        uint8_t buf[70000], copy[sizeof(hello)], header[10];
        char big[300];
        WsFrame f;
        size_t n;

        memcpy(copy, hello, sizeof(hello));
        ck_assert_int_eq(ws_frame_parse(copy, 5, &f), 0);
        ck_assert_int_eq(ws_frame_parse(copy, sizeof(copy), &f), (int) sizeof(hello));
        ck_assert_int_eq(f.opcode, WS_TEXT);
        ck_assert_uint_eq(f.payload_size, 5);
        ck_assert(memcmp(copy + f.header_size, "Hello", 5) == 0);

        memset(big, 'x', sizeof(big));
        n = client_frame(buf, WS_BINARY, big, sizeof(big));
        ck_assert_int_eq(ws_frame_parse(buf, n, &f), (int) n);
        ck_assert_uint_eq(f.payload_size, sizeof(big));

        /* unmasked, reserved bits, unknown opcode, long or fragmented control frames */
        buf[0] = 0x82; buf[1] = 0x01; buf[2] = 0;
        ck_assert_int_eq(ws_frame_parse(buf, 3, &f), -EBADMSG);
        n = client_frame(buf, WS_BINARY, "a", 1);
        buf[0] |= 0x40;
        ck_assert_int_eq(ws_frame_parse(buf, n, &f), -EBADMSG);
        n = client_frame(buf, 0x3, "a", 1);
        ck_assert_int_eq(ws_frame_parse(buf, n, &f), -EBADMSG);
        n = client_frame(buf, WS_PING, big, 126);
        ck_assert_int_eq(ws_frame_parse(buf, n, &f), -EBADMSG);
        n = client_frame(buf, WS_CLOSE, "", 0);
        buf[0] &= 0x7f;
        ck_assert_int_eq(ws_frame_parse(buf, n, &f), -EBADMSG);
        /* over the limit, announced in the 64-bit length */
        buf[0] = 0x82; buf[1] = 0x80 | 127;
        memset(buf + 2, 0, 8);
        buf[6] = 0x01;          /* 2^32 */
        ck_assert_int_eq(ws_frame_parse(buf, 14, &f), -E2BIG);

        ck_assert_uint_eq(ws_frame_header(header, WS_BINARY, 5), 2);
        ck_assert_uint_eq(header[0], 0x82);
        ck_assert_uint_eq(header[1], 5);
        ck_assert_uint_eq(ws_frame_header(header, WS_BINARY, 300), 4);
        ck_assert_uint_eq(header[1], 126);
        ck_assert_uint_eq(ws_frame_header(header, WS_BINARY, 70000), 10);
        ck_assert_uint_eq(header[1], 127);
}
END_TEST

int main(void) {
        Suite *s = suite_create("proxy-http");
        TCase *tc = tcase_create("proxy-http");

        tcase_add_test(tc, test_head_complete);
        tcase_add_test(tc, test_head_incomplete_and_bad);
        tcase_add_test(tc, test_head_too_many_fields);
        tcase_add_test(tc, test_accept_key);
        tcase_add_test(tc, test_frames);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
