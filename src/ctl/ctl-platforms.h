/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* gatewayctl platforms, platform show, nodes, node drain|resume: the platforms of gatewayd's
 * configuration and their nodes. */
int verb_platforms(int argc, char *argv[], char *tail[]);
int verb_platform_show(int argc, char *argv[], char *tail[]);
int verb_nodes(int argc, char *argv[], char *tail[]);
int verb_node_drain(int argc, char *argv[], char *tail[]);
int verb_node_resume(int argc, char *argv[], char *tail[]);
