/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What anyone who reaches gateway-proxy's port sends (src/proxy/http-head.c, websocket.c): a
 * request head, then, as if it had been a WebSocket upgrade, frames. Checks: a parsed head ends
 * with the empty line and lies within the input; every parsed frame lies within what is left. */
#include "fuzz.h"
#include "http-head.h"
#include "macro.h"
#include "websocket.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(http_head_freep) HttpHead *h = NULL;
        uint8_t *copy;
        size_t off = 0;
        int r;

        fuzz_quiet();
        r = http_head_parse((const char *) data, size, &h);
        if (r > 0) {
                if ((size_t) r > size || (size_t) r != h->size || memcmp(data + r - 4, "\r\n\r\n", 4) != 0)
                        abort();
                (void) http_head_is_websocket(h);
                (void) http_head_get(h, "Sec-WebSocket-Key");
                off = (size_t) r;
        }
        copy = malloc(size - off + 1);
        if (!copy)
                return 0;
        memcpy(copy, data + off, size - off);
        for (size_t at = 0; at < size - off;) {
                WsFrame f;
                int n = ws_frame_parse(copy + at, size - off - at, &f);
                if (n <= 0)
                        break;
                if ((size_t) n != f.header_size + f.payload_size || at + (size_t) n > size - off)
                        abort();
                at += (size_t) n;
        }
        free(copy);
        return 0;
}
