/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "lab-token.h"

/* gateway-proxy (docs/labs.md): the access proxy of lab instances. Every new connection names a
 * lab access token and a member in its request target (/<token>/<member>/…); the token is
 * checked, gatewayd is asked where the instance is, and the connection is forwarded — HTTP and
 * WebSocket as they are, or, for a member's "vnc" and "tcp" ports, a WebSocket bridged to the
 * port's plain TCP (noVNC's console is served for "vnc"). */

typedef struct ProxyConnection ProxyConnection;

typedef struct Proxy {
        sd_event *event;
        char *state_dir;
        char *gatewayd_socket;
        char *novnc_dir;
        uint8_t key[LAB_TOKEN_KEY_SIZE];
        bool have_key;
        int own_netns_fd;               /* to come back after making a socket in an instance's */
        ProxyConnection *connections;
        unsigned n_connections;
} Proxy;

/* Whether the key is loaded; it is (re)read when it was not, since gatewayd makes it only when
 * the first token is minted. */
bool proxy_key_ready(Proxy *p);

int proxy_connection_new(Proxy *p, int fd);
ProxyConnection *proxy_connection_free(ProxyConnection *c);
void proxy_connections_free(Proxy *p);

/* noVNC's files (novnc.c). */
int novnc_respond(Proxy *p, const char *rest, const char *base, char **ret, size_t *ret_size);
