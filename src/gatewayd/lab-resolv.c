/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lab-resolv.h"
#include "macro.h"

/* What one resolv.conf of the host's says, as far as a lab member can use it. */
typedef struct ResolvFile {
        bool exists;
        char *servers[LAB_NAME_SERVERS_MAX];
        size_t n_servers;
        bool loopback;          /* it names a loopback server (the host's own service) */
        bool ipv6;              /* it names an IPv6 server */
        char *other;            /* its search, domain and options lines */
        size_t other_size;
} ResolvFile;

static void resolv_file_done(ResolvFile *f) {
        for (size_t i = 0; i < f->n_servers; i++)
                free(f->servers[i]);
        free(f->other);
}

static bool ipv4_parse(const char *s, uint32_t *ret) {
        struct in_addr a;

        if (inet_pton(AF_INET, s, &a) != 1)
                return false;
        *ret = ntohl(a.s_addr);
        return true;
}

bool lab_name_server_is_valid(const char *s) {
        uint32_t a;

        if (!ipv4_parse(s, &a))
                return false;
        /* 0/8 and 127/8 are the member's own namespace; 224/3 no unicast host. */
        return (a >> 24) != 0 && (a >> 24) != 127 && (a >> 24) < 224;
}

static bool is_loopback(const char *s) {
        uint32_t a;
        struct in6_addr a6;

        if (ipv4_parse(s, &a))
                return (a >> 24) == 127 || (a >> 24) == 0;
        return inet_pton(AF_INET6, s, &a6) == 1 && (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6));
}

static int resolv_file_read(const char *path, ResolvFile *ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        FILE *other;

        *ret = (ResolvFile) {};
        if (!f)
                return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
        ret->exists = true;
        other = open_memstream(&ret->other, &ret->other_size);
        if (!other)
                return -ENOMEM;
        while (getline(&line, &size, f) >= 0) {
                char *p = line + strspn(line, " \t"), *key, *value;

                p[strcspn(p, "\r\n")] = 0;
                if (!*p || *p == '#' || *p == ';')
                        continue;
                key = p;
                p += strcspn(p, " \t");
                if (*p)
                        *p++ = 0;
                p += strspn(p, " \t");
                if (streq(key, "search") || streq(key, "domain") || streq(key, "options")) {
                        fprintf(other, "%s %s\n", key, p);
                        continue;
                }
                if (!streq(key, "nameserver"))
                        continue;       /* sortlist and the like: of the host's networks */
                value = p;
                value[strcspn(value, " \t")] = 0;
                if (is_loopback(value))
                        ret->loopback = true;
                else if (strchr(value, ':'))
                        ret->ipv6 = true;       /* left out: lab instances have IPv4 only */
                else if (lab_name_server_is_valid(value) && ret->n_servers < LAB_NAME_SERVERS_MAX) {
                        ret->servers[ret->n_servers] = strdup(value);
                        if (!ret->servers[ret->n_servers]) {
                                fclose(other);
                                return -ENOMEM;
                        }
                        ret->n_servers++;
                }
        }
        return fclose(other) == 0 ? 0 : -ENOMEM;
}

/* Why path gave no server, for the member's file and the log. */
static int describe_none(const char *path, const ResolvFile *f, char **ret) {
        int r;

        if (!f->exists)
                r = asprintf(ret, "there is no %s", path);
        else if (f->loopback && f->ipv6)
                r = asprintf(ret, "%s names only loopback and IPv6 name servers (loopback ones are the host's own "
                             "services, which a lab cannot reach; labs have IPv4 only)", path);
        else if (f->loopback)
                r = asprintf(ret, "%s names only loopback name servers (the host's own services, which a lab cannot "
                             "reach)", path);
        else if (f->ipv6)
                r = asprintf(ret, "%s names only IPv6 name servers (labs have IPv4 only)", path);
        else
                r = asprintf(ret, "%s names no IPv4 name server", path);
        return r < 0 ? -ENOMEM : 0;
}

static void write_servers(FILE *out, char * const *servers, size_t n) {
        for (size_t i = 0; i < n; i++)
                fprintf(out, "nameserver %s\n", servers[i]);
}

int lab_resolv_conf_make(char * const *servers, const char *host_path, const char *upstream_path,
                         char **ret_text, char **ret_reason) {
        ResolvFile host = {}, upstream = {}, *used = &host;
        _cleanup_free_ char *text = NULL, *why_host = NULL, *why_upstream = NULL, *reason = NULL;
        const char *source = host_path;
        size_t size = 0;
        FILE *out;
        int r;

        *ret_reason = NULL;
        if (!servers) {
                r = resolv_file_read(host_path, &host);
                if (r >= 0 && host.n_servers == 0) {
                        r = resolv_file_read(upstream_path, &upstream);
                        used = &upstream;
                        source = upstream_path;
                }
                if (r < 0)
                        goto out;
                if (used->n_servers == 0) {
                        r = describe_none(host_path, &host, &why_host);
                        if (r >= 0)
                                r = describe_none(upstream_path, &upstream, &why_upstream);
                        if (r >= 0 && asprintf(&reason, "no name server for outbound lab members: %s, and %s; set "
                                               "LabNameServers (docs/labs.md, \"Network\")", why_host, why_upstream) < 0)
                                r = -ENOMEM;
                        if (r < 0)
                                goto out;
                }
        }

        out = open_memstream(&text, &size);
        if (!out) {
                r = -ENOMEM;
                goto out;
        }
        if (servers) {
                fputs("# gatewayd: the name servers of LabNameServers, for lab instance members.\n", out);
                write_servers(out, servers, strv_length(servers));
        } else if (reason) {
                fprintf(out, "# gatewayd: %s.\n", reason);
        } else {
                fprintf(out, "# gatewayd: the host's name servers (from %s), for lab instance members.\n", source);
                write_servers(out, used->servers, used->n_servers);
                if (used->other)
                        fputs(used->other, out);
        }
        if (fclose(out) != 0) {
                r = -ENOMEM;
                goto out;
        }
        *ret_text = TAKE_PTR(text);
        *ret_reason = TAKE_PTR(reason);
        r = *ret_reason ? 0 : 1;
out:
        resolv_file_done(&host);
        resolv_file_done(&upstream);
        return r;
}
