/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

typedef struct Manager Manager;

/* Outbound network for lab instances whose lab says "network": "outbound" (docs/labs.md
 * "Network"). Each such instance gets slot k of the pool (LabNetworkPool): the /30 starting at
 * pool + 4k, a veth pair "gwl<hex of the host side's address>" on the host and "eth0" in the
 * instance's namespace, a default route through the host, which masquerades the instance's
 * traffic out. An nftables table of our own (one per pool) drops everything from a lab veth to
 * the host itself and to other lab veths, and everything new towards a lab veth. */

/* How many instances the pool holds. */
unsigned lab_network_slots(Manager *m);

/* Whether an outbound instance can be connected as far as the host allows: IPv4 forwarding is
 * on, or gatewayd may turn it on. Changes nothing. On failure *ret_error says what the
 * administrator has to do (net.ipv4.ip_forward=1). */
int lab_network_check(Manager *m, char **ret_error);

/* Connects the namespace at netns_path through slot: firewall table and IP forwarding first
 * (idempotent), then the veth pair, addresses and route. On failure *ret_error says why (for
 * the instance's error) and whatever was made of the veth pair is gone again. */
int lab_network_up(Manager *m, const char *netns_path, unsigned slot, char **ret_error);

/* Removes slot's veth pair (gone already: fine). */
void lab_network_down(Manager *m, unsigned slot);

/* No outbound instance is left: the table goes, and IP forwarding goes off again if it was
 * gatewayd that turned it on. */
void lab_network_idle(Manager *m);

/* At start: removes veth pairs of the pool that no live instance holds (left by a crash).
 * in_use(m, slot) says which are held. */
void lab_network_prune(Manager *m, bool (*in_use)(Manager *m, unsigned slot));
