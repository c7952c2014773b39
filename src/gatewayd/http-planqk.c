/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The PlanQK-compatible service API (docs/openapi-planqk.yaml): one asynchronous API per service
 * under /planqk/{service}/, so that clients written for managed PlanQK services work unchanged. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "http-api.h"
#include "http-jobs.h"
#include "job-registry.h"
#include "json-util.h"
#include "manager.h"
#include "service-registry.h"
#include "spool-layout.h"

void http_planqk_health(HttpRequest *req, char **captures) {
        if (!service_registry_get(req->manager, captures[0]))
                return http_request_reply_errorf(req, GW_ERROR_NO_SUCH_SERVICE, "No service '%s'.", captures[0]);
        http_request_reply_text(req, MHD_HTTP_OK, "{\"status\":\"Service is up and running\"}");
}

void http_planqk_submit(HttpRequest *req, char **captures) {
        http_submit_job(req, captures[0], true);
}

static void get_job_found(HttpRequest *req, Job *j) {
        http_request_reply_json(req, MHD_HTTP_OK, job_to_planqk_json(j));
}

void http_planqk_get_job(HttpRequest *req, char **captures) {
        http_with_job(req, captures[1], captures[0], get_job_found);
}

/* The job's result files (PlanQK's newer service API): regular files in the spool's output/
 * directory. The directory is opened without following links; names are single path segments. */
static int result_files_open(const Job *j) {
        _cleanup_free_ char *path = spool_path(j->spool_dir, SPOOL_OUTPUT_DIR);
        int fd;

        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 ? -errno : fd;
}

/* A file name as one URL path segment: everything but RFC 3986's unreserved characters as %HH
 * (the server decodes them again before routing). */
static char *url_segment_escape(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(strlen(s) * 3 + 1), *w = out;

        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (isascii(*p) && (isalnum(*p) || strchr("-._~", *p)))
                        *w++ = (char) *p;
                else {
                        *w++ = '%';
                        *w++ = hex[*p >> 4];
                        *w++ = hex[*p & 15];
                }
        *w = 0;
        return out;
}

static json_object *href(const char *service, const char *id, const char *suffix, const char *file) {
        _cleanup_free_ char *url = NULL, *escaped = NULL;
        json_object *o;

        if (file && !(escaped = url_segment_escape(file)))
                return NULL;
        if (asprintf(&url, "/planqk/%s/%s%s%s", service, id, suffix, escaped ?: "") < 0)
                return NULL;
        o = json_object_new_object();
        if (o)
                json_object_object_add(o, "href", json_object_new_string(url));
        return o;
}

/* HAL links of a result: "self", "status" (the job) and one per result file, which SDK 2.x
 * lists as the result's files. */
static json_object *result_links(const Job *j) {
        _cleanup_close_ int dfd = result_files_open(j);
        json_object *links = json_object_new_object();
        DIR *d;

        if (!links)
                return NULL;
        json_object_object_add(links, "self", href(j->service, j->id, "/result", NULL));
        json_object_object_add(links, "status", href(j->service, j->id, "", NULL));
        if (dfd < 0 || !(d = fdopendir(dfd)))
                return links;
        TAKE_FD(dfd);
        for (struct dirent *de; (de = readdir(d));) {
                struct stat st;

                if (de->d_name[0] == '.' || streq(de->d_name, "self") || streq(de->d_name, "status"))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                json_object_object_add(links, de->d_name, href(j->service, j->id, "/result/", de->d_name));
        }
        closedir(d);
        return links;
}

/* The result as both SDK generations read it: the service's result object as it is (SDK 1.x),
 * with PlanQK's HAL "_links" and "_embedded.status" added (SDK 2.x). Results that are not
 * objects are answered unchanged. */
static void get_result_found(HttpRequest *req, Job *j) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o = NULL, *embedded;

        if (job_result_json(j, &o, &e) < 0)
                return http_request_reply_error(req, &e);
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return http_reply_job_result(req, j);
        }
        embedded = json_object_new_object();
        if (embedded)
                json_object_object_add(embedded, "status", job_to_planqk_json(j));
        json_object_object_add(o, "_links", result_links(j));
        json_object_object_add(o, "_embedded", embedded);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_planqk_get_result(HttpRequest *req, char **captures) {
        http_with_job(req, captures[1], captures[0], get_result_found);
}

static void get_result_file_found(HttpRequest *req, Job *j) {
        _cleanup_close_ int dfd = -1, fd = -1;
        _cleanup_free_ char *url = strdup(req->url);
        const char *name;
        struct stat st;
        size_t n;

        /* The file is the URL's last segment (the route's third capture; http_with_job() keeps
         * the request's userdata, so it is taken from the URL again). */
        if (!url)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        n = strlen(url);
        if (n > 1 && url[n - 1] == '/')
                url[n - 1] = 0;
        name = strrchr(url, '/') + 1;
        if (name[0] == '.')
                return http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "No result file '%s'.", name);
        dfd = result_files_open(j);
        if (dfd >= 0)
                fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "No result file '%s'.", name);
        http_request_reply_fd(req, MHD_HTTP_OK, "application/octet-stream", TAKE_FD(fd), (uint64_t) st.st_size);
}

void http_planqk_get_result_file(HttpRequest *req, char **captures) {
        http_with_job(req, captures[1], captures[0], get_result_file_found);
}

/* GET /{id}/log (SDK 2.x): the job's log so far as a list of lines. */
static void get_log_found(HttpRequest *req, Job *j) {
        _cleanup_free_ char *path = spool_path(j->spool_dir, SPOOL_LOG), *buf = NULL;
        _cleanup_close_ int fd = -1;
        json_object *a;
        struct stat st;
        ssize_t n = 0;

        if (!path)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno != ENOENT)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Cannot read the log: %m");
        if (fd >= 0) {
                if (fstat(fd, &st) < 0)
                        return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Cannot read the log: %m");
                buf = malloc((size_t) st.st_size + 1);
                if (!buf)
                        return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                n = pread(fd, buf, (size_t) st.st_size, 0);
                if (n < 0)
                        return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Cannot read the log: %m");
        }
        a = json_object_new_array();
        for (size_t pos = 0; a && pos < (size_t) n;) {
                const char *nl = memchr(buf + pos, '\n', (size_t) n - pos);
                size_t len = nl ? (size_t) (nl - buf - pos) : (size_t) n - pos;

                json_object_array_add(a, json_new_string_utf8_lossy(buf + pos, len));
                pos += len + 1;
        }
        http_request_reply_json(req, MHD_HTTP_OK, a);
}

void http_planqk_get_log(HttpRequest *req, char **captures) {
        http_with_job(req, captures[1], captures[0], get_log_found);
}

void http_planqk_get_interim_results(HttpRequest *req, char **captures) {
        http_with_job(req, captures[1], captures[0], http_reply_job_interim);
}

static void cancel_found(HttpRequest *req, Job *j) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        if (job_registry_cancel(j, &e) < 0 && gw_error_is_set(&e))
                return http_request_reply_error(req, &e);
        http_request_reply_json(req, MHD_HTTP_OK, job_to_planqk_json(j));
}

void http_planqk_cancel(HttpRequest *req, char **captures) {
        http_with_job(req, captures[1], captures[0], cancel_found);
}
