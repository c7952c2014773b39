/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The WebSocket protocol (RFC 6455) as far as gateway-proxy speaks it itself: the handshake's
 * accept key, and frames, to bridge a browser's WebSocket (noVNC) to a member's plain TCP port
 * (VNC, or a "tcp" port). Frames from browsers are masked; ours are not. */

#define WS_ACCEPT_KEY_SIZE 29           /* base64 of a SHA-1, NUL included */
#define WS_PAYLOAD_MAX (1024U * 1024U)  /* per frame from the browser */

typedef enum WsOpcode {
        WS_CONTINUATION = 0x0,
        WS_TEXT = 0x1,
        WS_BINARY = 0x2,
        WS_CLOSE = 0x8,
        WS_PING = 0x9,
        WS_PONG = 0xa,
} WsOpcode;

typedef struct WsFrame {
        WsOpcode opcode;
        bool fin;
        size_t header_size;
        size_t payload_size;            /* payload at data + header_size, unmasked in place */
} WsFrame;

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (which must be 24 base64 characters). */
int ws_accept_key(const char *client_key, char ret[static WS_ACCEPT_KEY_SIZE]);

/* One frame from a client at the start of data: > 0 its total size (the payload is unmasked in
 * place and described in *ret), 0 incomplete, -EBADMSG a protocol error (unmasked, reserved
 * bits or opcodes, a fragmented or oversized control frame), -E2BIG over WS_PAYLOAD_MAX. */
int ws_frame_parse(uint8_t *data, size_t size, WsFrame *ret);

/* The header of an unmasked server frame with fin set: its size (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[static 10], WsOpcode opcode, size_t payload_size);
