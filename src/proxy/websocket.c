/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>

#include "websocket.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int ws_accept_key(const char *client_key, char ret[static WS_ACCEPT_KEY_SIZE]) {
        unsigned char digest[SHA_DIGEST_LENGTH];
        char buf[24 + sizeof(WS_GUID)];

        /* 16 random bytes, base64: 24 characters ending in "==" (RFC 6455 §4.1). */
        if (strlen(client_key) != 24 || strspn(client_key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != 24)
                return -EINVAL;
        memcpy(buf, client_key, 24);
        memcpy(buf + 24, WS_GUID, sizeof(WS_GUID));
        SHA1((const unsigned char *) buf, strlen(buf), digest);
        return EVP_EncodeBlock((unsigned char *) ret, digest, sizeof(digest)) == WS_ACCEPT_KEY_SIZE - 1 ? 0 : -EIO;
}

int ws_frame_parse(uint8_t *data, size_t size, WsFrame *ret) {
        size_t need = 2, len;
        uint8_t *mask;
        unsigned opcode;

        if (size < 2)
                return 0;
        opcode = data[0] & 0x0f;
        if (data[0] & 0x70)
                return -EBADMSG;        /* no extension was negotiated */
        if (!(data[1] & 0x80))
                return -EBADMSG;        /* clients must mask (RFC 6455 §5.1) */
        if (opcode > WS_BINARY && opcode != WS_CLOSE && opcode != WS_PING && opcode != WS_PONG)
                return -EBADMSG;
        len = data[1] & 0x7f;
        if (opcode >= WS_CLOSE && (len > 125 || !(data[0] & 0x80)))
                return -EBADMSG;
        if (len == 126) {
                need = 4;
                if (size < need)
                        return 0;
                len = (size_t) data[2] << 8 | data[3];
        } else if (len == 127) {
                uint64_t l = 0;
                need = 10;
                if (size < need)
                        return 0;
                for (unsigned i = 0; i < 8; i++)
                        l = l << 8 | data[2 + i];
                if (l > WS_PAYLOAD_MAX)
                        return -E2BIG;
                len = (size_t) l;
        }
        if (len > WS_PAYLOAD_MAX)
                return -E2BIG;
        need += 4;
        if (size < need + len)
                return 0;
        mask = data + need - 4;
        for (size_t i = 0; i < len; i++)
                data[need + i] ^= mask[i % 4];
        *ret = (WsFrame) {
                .opcode = opcode,
                .fin = data[0] & 0x80,
                .header_size = need,
                .payload_size = len,
        };
        return (int) (need + len);
}

size_t ws_frame_header(uint8_t out[static 10], WsOpcode opcode, size_t payload_size) {
        out[0] = 0x80 | (uint8_t) opcode;
        if (payload_size < 126) {
                out[1] = (uint8_t) payload_size;
                return 2;
        }
        if (payload_size <= 0xffff) {
                out[1] = 126;
                out[2] = (uint8_t) (payload_size >> 8);
                out[3] = (uint8_t) payload_size;
                return 4;
        }
        out[1] = 127;
        for (unsigned i = 0; i < 8; i++)
                out[2 + i] = (uint8_t) ((uint64_t) payload_size >> (56 - 8 * i));
        return 10;
}
