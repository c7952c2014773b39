/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Outbound network of lab instances, made with the host's own tools: "ip" (iproute2) for the veth
 * pair, addresses and route, "nft" (nftables) for the firewall table and masquerading. Both take
 * a script on stdin that is applied as one batch (nft: one atomic transaction), report errors in
 * words, and are on every Debian system (priority important). libnftables would parse the same
 * ruleset text in-process, for one more build dependency and nothing gained at one run per
 * instance start; rtnetlink by hand would be some hundred lines to get what one "ip" line says.
 * A user-mode stack (slirp4netns, passt) was not chosen: it connects from the host's own network
 * namespace as a host process, so the host's services on loopback and on its addresses are
 * reachable unless every one of them is filtered again in that program's own options; with a
 * veth the kernel's routing puts every packet to the host through the INPUT hook, where one rule
 * drops it.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "lab-network.h"
#include "log.h"
#include "manager.h"

#define IFNAME_PREFIX "gwl"
#define FORWARD_SYSCTL "/proc/sys/net/ipv4/ip_forward"
#define FORWARD_MARKER "labs/ip-forward-enabled"   /* below the runtime directory */

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static int write_string_file(const char *path, const char *value) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (write(fd, value, strlen(value)) < 0)
                return -errno;
        return 0;
}

static const char * const tool_path = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

unsigned lab_network_slots(Manager *m) {
        return 1U << (32 - 2 - m->config->lab_network_pool_prefix);
}

static uint32_t slot_net(Manager *m, unsigned slot) {
        return m->config->lab_network_pool + 4U * slot;
}

static void format_addr(uint32_t a, char buf[static INET_ADDRSTRLEN]) {
        snprintf(buf, INET_ADDRSTRLEN, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static void slot_ifname(Manager *m, unsigned slot, char buf[static IFNAMSIZ]) {
        snprintf(buf, IFNAMSIZ, IFNAME_PREFIX "%08x", slot_net(m, slot) + 1);
}

/* Our table: one per pool, so that gatewayds with different pools on one host keep theirs. */
static void table_name(Manager *m, char buf[static 64]) {
        snprintf(buf, 64, "gatewayd_labs_%08x_%u", m->config->lab_network_pool, m->config->lab_network_pool_prefix);
}

/* Runs tool (argv[0], searched in the system's sbin/bin) with script on stdin, inside the
 * network namespace at netns_path if given. On failure, *ret_error gets its stderr. */
static int run_tool(char * const argv[], const char *script, const char *netns_path, char **ret_error) {
        _cleanup_close_ int in = -1, err = -1, ns = -1;
        char * const envp[] = { (char *) tool_path, NULL };
        int status;
        pid_t pid;

        in = memfd_create("gatewayd-lab-net-in", MFD_CLOEXEC);
        err = memfd_create("gatewayd-lab-net-err", MFD_CLOEXEC);
        if (in < 0 || err < 0)
                return -errno;
        if (write(in, script, strlen(script)) != (ssize_t) strlen(script) || lseek(in, 0, SEEK_SET) < 0)
                return -EIO;
        if (netns_path) {
                ns = open(netns_path, O_RDONLY | O_CLOEXEC);
                if (ns < 0)
                        return -errno;
        }
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if ((ns >= 0 && setns(ns, CLONE_NEWNET) < 0) ||
                    dup2(in, STDIN_FILENO) < 0 || dup2(err, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
                        _exit(126);
                execvpe(argv[0], argv, envp);
                dprintf(STDERR_FILENO, "cannot execute %s: %m", argv[0]);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (ret_error) {
                char buf[512] = {};
                ssize_t n = pread(err, buf, sizeof(buf) - 1, 0);

                buf[n > 0 ? n : 0] = 0;
                buf[strcspn(buf, "\n")] = 0;    /* the first line says it */
                *ret_error = strdup(n > 0 ? buf : "failed");
        }
        return -EIO;
}

static int run_ip(const char *script, const char *netns_path, char **ret_error) {
        return run_tool((char * const[]) { (char *) "ip", (char *) "-batch", (char *) "-", NULL }, script, netns_path,
                        ret_error);
}

static int run_nft(const char *script, char **ret_error) {
        return run_tool((char * const[]) { (char *) "nft", (char *) "-f", (char *) "-", NULL }, script, NULL, ret_error);
}

static int forward_marker_path(Manager *m, char **ret) {
        return asprintf(ret, "%s/" FORWARD_MARKER, m->runtime_dir) < 0 ? -ENOMEM : 0;
}

static bool forward_marker_exists(Manager *m) {
        _cleanup_free_ char *p = NULL;

        return forward_marker_path(m, &p) >= 0 && access(p, F_OK) >= 0;
}

static bool forwarding_is_on(void) {
        char c = 0;
        int fd;

        fd = open(FORWARD_SYSCTL, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                (void) !read(fd, &c, 1);
                close(fd);
        }
        return c == '1';
}

/* What the administrator has to do: under systemd, ProtectKernelTunables=yes makes /proc/sys
 * read-only for us (EROFS), and that is the usual case. */
static int forwarding_error(int r, char **ret_error) {
        if (asprintf(ret_error, "IPv4 forwarding is off and gatewayd cannot turn it on (%s%s); set "
                     "net.ipv4.ip_forward=1 on the host (/etc/sysctl.d/) for outbound labs, see docs/labs.md, \"Network\"",
                     strerror(-r), r == -EROFS ? ": /proc/sys is read-only, as under ProtectKernelTunables=yes" : "") < 0)
                *ret_error = NULL;
        return r;
}

int lab_network_check(Manager *m, char **ret_error) {
        _cleanup_close_ int fd = -1;

        *ret_error = NULL;
        if (forwarding_is_on())
                return 0;
        /* Opened for writing, nothing written: whether forwarding_enable() could. */
        fd = open(FORWARD_SYSCTL, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return forwarding_error(-errno, ret_error);
        return 0;
}

/* IPv4 forwarding is host-wide. If it is off, we turn it on (and leave a marker in the runtime
 * directory: it is ours to turn off again, also after a crash); if it is on, it was the
 * administrator's doing and stays as it is. */
static int forwarding_enable(Manager *m, char **ret_error) {
        _cleanup_free_ char *marker = NULL;
        int fd, r;

        if (forwarding_is_on())
                return 0;
        r = forward_marker_path(m, &marker);
        if (r < 0)
                return r;
        fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);  /* first: a crash in between still undoes it */
        if (fd >= 0)
                close(fd);
        r = write_string_file(FORWARD_SYSCTL, "1");
        if (r < 0) {
                (void) unlink(marker);
                return forwarding_error(r, ret_error);
        }
        log_info("Labs: turned IPv4 forwarding on (net.ipv4.ip_forward=1) for outbound instances.");
        return 0;
}

static void forwarding_restore(Manager *m) {
        _cleanup_free_ char *marker = NULL;
        int r;

        if (forward_marker_path(m, &marker) < 0 || access(marker, F_OK) < 0)
                return;
        r = write_string_file(FORWARD_SYSCTL, "0");
        if (r < 0)
                log_warning_errno(r, "Labs: cannot turn IPv4 forwarding off again: %m");
        else
                log_info("Labs: turned IPv4 forwarding off again (no outbound instance left).");
        (void) unlink(marker);
}

/* The whole table, loaded as one transaction ("add" then "delete" so that an existing one is
 * replaced, not doubled). Lab veths are matched by name prefix: a packet from any lab veth (of
 * any gatewayd) to the host itself or to another lab veth is dropped, and so is anything new
 * towards a lab veth, forwarded or from the host: only answers reach the members. With the
 * forwarding that we turned on ourselves the host forwards nothing else. */
static int firewall_load(Manager *m, char **ret_error) {
        _cleanup_free_ char *script = NULL;
        char table[64], pool[INET_ADDRSTRLEN];

        table_name(m, table);
        format_addr(m->config->lab_network_pool, pool);
        if (asprintf(&script,
                     "add table inet %1$s\n"
                     "delete table inet %1$s\n"
                     "table inet %1$s {\n"
                     "  chain input {\n"
                     "    type filter hook input priority filter; policy accept;\n"
                     "    iifname \"" IFNAME_PREFIX "*\" drop\n"
                     "  }\n"
                     "  chain output {\n"
                     "    type filter hook output priority filter; policy accept;\n"
                     "    oifname \"" IFNAME_PREFIX "*\" drop\n"
                     "  }\n"
                     "  chain forward {\n"
                     "    type filter hook forward priority filter; policy accept;\n"
                     "    iifname \"" IFNAME_PREFIX "*\" oifname \"" IFNAME_PREFIX "*\" drop\n"
                     "    oifname \"" IFNAME_PREFIX "*\" ct state established,related accept\n"
                     "    oifname \"" IFNAME_PREFIX "*\" drop\n"
                     "    iifname \"" IFNAME_PREFIX "*\" meta nfproto ipv6 drop\n"
                     "    %4$s\n"
                     "  }\n"
                     "  chain postrouting {\n"
                     "    type nat hook postrouting priority srcnat; policy accept;\n"
                     "    ip saddr %2$s/%3$u oifname != \"" IFNAME_PREFIX "*\" masquerade\n"
                     "  }\n"
                     "}\n",
                     table, pool, m->config->lab_network_pool_prefix,
                     forward_marker_exists(m) ? "iifname != \"" IFNAME_PREFIX "*\" oifname != \"" IFNAME_PREFIX "*\" drop" : "") < 0)
                return -ENOMEM;
        return run_nft(script, ret_error);
}

static void prefix_error(char **error, const char *what) {
        char *s = NULL;

        if (asprintf(&s, "%s: %s", what, *error ?: "failed") < 0)
                return;
        free(*error);
        *error = s;
}

int lab_network_up(Manager *m, const char *netns_path, unsigned slot, char **ret_error) {
        _cleanup_free_ char *host = NULL, *inside = NULL;
        char ifname[IFNAMSIZ], a_host[INET_ADDRSTRLEN], a_inside[INET_ADDRSTRLEN];
        uint32_t net = slot_net(m, slot);
        int r;

        *ret_error = NULL;
        if (slot >= lab_network_slots(m))
                return -ERANGE;
        r = forwarding_enable(m, ret_error);
        if (r < 0)
                return r;
        r = firewall_load(m, ret_error);
        if (r < 0) {
                prefix_error(ret_error, "Cannot load the labs' nftables table");
                return r;
        }

        slot_ifname(m, slot, ifname);
        format_addr(net + 1, a_host);
        format_addr(net + 2, a_inside);
        if (asprintf(&host,
                     "link add %1$s type veth peer name eth0 netns %2$s\n"
                     "addr add %3$s/30 dev %1$s\n"
                     "link set %1$s up\n",
                     ifname, netns_path, a_host) < 0 ||
            asprintf(&inside,
                     "addr add %1$s/30 dev eth0\n"
                     "link set eth0 up\n"
                     "route add default via %2$s\n",
                     a_inside, a_host) < 0)
                return -ENOMEM;
        r = run_ip(host, NULL, ret_error);
        if (r >= 0)
                r = run_ip(inside, netns_path, ret_error);
        if (r < 0) {
                prefix_error(ret_error, "Cannot connect the instance's network namespace");
                lab_network_down(m, slot);
                return r;
        }
        log_debug("Labs: %s (%s) connects %s.", ifname, a_host, netns_path);
        return 0;
}

static void link_delete(const char *ifname) {
        _cleanup_free_ char *script = NULL, *error = NULL;
        char path[64];

        snprintf(path, sizeof(path), "/sys/class/net/%s", ifname);
        if (access(path, F_OK) < 0)
                return;         /* went with its namespace */
        if (asprintf(&script, "link del %s\n", ifname) < 0)
                return;
        if (run_ip(script, NULL, &error) < 0 && access(path, F_OK) >= 0)
                log_warning("Labs: cannot remove %s: %s", ifname, strna(error));
}

void lab_network_down(Manager *m, unsigned slot) {
        char ifname[IFNAMSIZ];

        slot_ifname(m, slot, ifname);
        link_delete(ifname);
}

void lab_network_idle(Manager *m) {
        _cleanup_free_ char *script = NULL, *error = NULL;
        char table[64];

        table_name(m, table);
        /* "add" first: deleting a table that is not there is an error. */
        if (asprintf(&script, "add table inet %1$s\ndelete table inet %1$s\n", table) >= 0 &&
            run_nft(script, &error) < 0)
                log_warning("Labs: cannot remove nftables table %s: %s", table, strna(error));
        forwarding_restore(m);
}

void lab_network_prune(Manager *m, bool (*in_use)(Manager *m, unsigned slot)) {
        _cleanup_(closedirp) DIR *d = opendir("/sys/class/net");
        uint32_t mask = UINT32_MAX << (32 - m->config->lab_network_pool_prefix);
        struct dirent *de;

        while (d && (de = readdir(d))) {
                unsigned addr;
                char tail;

                if (sscanf(de->d_name, IFNAME_PREFIX "%8x%c", &addr, &tail) != 1 || strlen(de->d_name) != 11)
                        continue;
                if ((addr & mask) != m->config->lab_network_pool || (addr & 3) != 1)
                        continue;       /* another pool's: another gatewayd's */
                if (in_use(m, (addr - m->config->lab_network_pool) / 4))
                        continue;
                log_info("Labs: removing %s, left behind by an instance that is gone.", de->d_name);
                link_delete(de->d_name);
        }
}
