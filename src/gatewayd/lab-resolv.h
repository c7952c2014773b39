/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* The /etc/resolv.conf of the members of an outbound lab instance (docs/labs.md "Network").
 *
 * The instance's namespace has no name service of its own, and the host's own services are
 * what its firewall drops: a loopback name server in the host's file (systemd-resolved's stub
 * 127.0.0.53, a local dnsmasq or unbound) would be the member's own loopback, where nothing
 * answers. So the members get the host's *upstream* IPv4 name servers: those of
 * /etc/resolv.conf that are not loopback, or, if it has none, those of systemd-resolved's
 * /run/systemd/resolve/resolv.conf (the servers resolved itself asks), with the search and
 * options lines of the same file. "LabNameServers" replaces all of it. IPv6 servers are left out:
 * instances have IPv4 only. */

#define LAB_RESOLV_HOST "/etc/resolv.conf"
#define LAB_RESOLV_UPSTREAM "/run/systemd/resolve/resolv.conf"
/* glibc and musl ask no more than three */
#define LAB_NAME_SERVERS_MAX 3

/* An IPv4 address in dotted-decimal form that a lab member can reach as a name server: not
 * loopback, "this network" (0/8), multicast or reserved. */
bool lab_name_server_is_valid(const char *s);

/* Makes the text of a member's resolv.conf: servers (LabNameServers; NULL: the host's, read
 * from host_path, else upstream_path). Returns 1 if it names a name server, 0 if there is none
 * to name (the text then says why in a comment, *ret_reason says it for the log), negative
 * errno on failure. */
int lab_resolv_conf_make(char * const *servers, const char *host_path, const char *upstream_path,
                         char **ret_text, char **ret_reason);
