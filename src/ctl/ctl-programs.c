/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gatewayctl program …: users' programs (docs/programs.md). These verbs speak gatewayd's HTTP API
 * on its unix socket (identity from the peer credentials, as on the bus): an upload is a file of
 * up to ProgramArtifactMax, which the bus is not made for. A program's job is an ordinary job,
 * so "run --wait" follows it on the bus like "submit --wait". */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl-jobs.h"
#include "ctl-programs.h"
#include "ctl-services.h"
#include "ctl-table.h"
#include "ctl-util.h"
#include "ctl.h"
#include "log.h"

#define DEFAULT_HTTP_SOCKET "/run/gatewayd/http.sock"
#define REPLY_MAX (16 * 1024 * 1024)

ProgramArgs arg_program = {};

void program_args_done(ProgramArgs *a) {
        a->entrypoint = mfree(a->entrypoint);
        a->title = mfree(a->title);
        a->provider = mfree(a->provider);
        json_object_put(a->arguments);
        a->arguments = NULL;
}

/* The whole text as one JSON value (numbers, true, "x", [1], {}), else the text as a string. */
static json_object *json_parse_scalar_or_text(const char *text) {
        struct json_tokener *tok = json_tokener_new();
        json_object *v = NULL;
        size_t n = strlen(text);

        if (tok && n > 0 && n < INT_MAX) {
                /* with the NUL: a number at the end of the text is complete there */
                v = json_tokener_parse_ex(tok, text, (int) n + 1);
                if (json_tokener_get_error(tok) != json_tokener_success || json_tokener_get_parse_end(tok) < n) {
                        json_object_put(v);
                        v = NULL;
                }
        }
        json_tokener_free(tok);
        return v ?: json_object_new_string(text);
}

/* --arg=KEY=VALUE: VALUE as JSON if it is JSON (2, true, "x", [1]), else as a string. */
int program_args_add_argument(ProgramArgs *a, const char *kv) {
        const char *eq = strchr(kv, '=');
        _cleanup_free_ char *key = NULL;
        json_object *v;

        if (!eq || eq == kv)
                return log_error_errno(EINVAL, "Invalid --arg= value '%s': expected KEY=VALUE.", kv);
        key = strndup(kv, (size_t) (eq - kv));
        if (!key)
                return log_oom();
        v = json_parse_scalar_or_text(eq + 1);
        if (!a->arguments)
                a->arguments = json_object_new_object();
        if (!a->arguments || !v)
                return log_oom();
        json_object_object_add(a->arguments, key, v);
        return 0;
}

typedef struct Reply {
        char *data;
        size_t size;
} Reply;

static size_t on_data(char *p, size_t size, size_t n, void *userdata) {
        Reply *r = userdata;
        size_t k = size * n;
        char *d;

        if (r->size + k > REPLY_MAX)
                return 0;
        d = realloc(r->data, r->size + k + 1);
        if (!d)
                return 0;
        memcpy(d + r->size, p, k);
        r->data = d;
        r->size += k;
        r->data[r->size] = 0;
        return k;
}

/* One request on the unix socket. body_file (with its size) is streamed; else body_json is sent.
 * Returns the HTTP status and the parsed reply (NULL if empty), or < 0 (logged). */
static int http_call(const char *method, const char *path, FILE *body_file, curl_off_t body_size,
                     const char *content_type, json_object *body_json, json_object **ret) {
        const char *socket_path = getenv("GATEWAYD_HTTP_SOCKET") ?: DEFAULT_HTTP_SOCKET;
        _cleanup_free_ char *url = NULL, *ct = NULL, *msg = NULL;
        struct curl_slist *headers = NULL;
        Reply reply = {};
        CURL *c;
        CURLcode cc;
        long status = 0;
        int r;

        if (asprintf(&url, "http://localhost%s", path) < 0 || asprintf(&ct, "Content-Type: %s", content_type) < 0)
                return log_oom();
        c = curl_easy_init();
        if (!c)
                return log_oom();
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        headers = curl_slist_append(headers, "Expect:");
        if (body_file || body_json)
                headers = curl_slist_append(headers, ct);
        if (body_file) {
                curl_easy_setopt(c, CURLOPT_POST, 1L);
                curl_easy_setopt(c, CURLOPT_READDATA, body_file);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, body_size);
        } else if (body_json)
                curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, json_object_to_json_string_ext(body_json, JSON_C_TO_STRING_PLAIN));
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        cc = curl_easy_perform(c);
        if (cc == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        curl_slist_free_all(headers);
        if (cc != CURLE_OK) {
                free(reply.data);
                return log_error_errno(EIO, "Cannot talk to gatewayd at %s: %s", socket_path, curl_easy_strerror(cc));
        }
        *ret = NULL;
        if (reply.size > 0 && json_parse_text(reply.data, ret, &msg) < 0)
                *ret = NULL;
        free(reply.data);
        r = (int) status;
        return r;
}

/* Logs the error of a reply ({"error": {"message"}}) and returns a negative errno for it. */
static int log_reply_error(int status, json_object *o, const char *what) {
        json_object *e, *m;
        const char *text = NULL;

        if (o && json_object_object_get_ex(o, "error", &e) && json_object_object_get_ex(e, "message", &m))
                text = json_object_get_string(m);
        return log_error_errno(status == 404 ? ENOENT : status == 403 ? EACCES : EINVAL, "Failed to %s: %s (HTTP %d)",
                               what, text ?: "no message", status);
}

/* tar -czf of DIR into an unlinked temporary file, owners as root: the daemon makes every file
 * the uploader's anyway. */
static int tar_directory(const char *dir, FILE **ret, curl_off_t *ret_size) {
        char tmpl[] = "/tmp/gatewayctl-program-XXXXXX";
        struct stat st;
        FILE *f;
        pid_t pid;
        int fd, status;

        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return log_error_errno(errno ?: ENOTDIR, "%s is not a directory.", dir);
        fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot create a temporary file: %m");
        (void) unlink(tmpl);
        pid = fork();
        if (pid < 0) {
                close(fd);
                return log_error_errno(errno, "Cannot fork: %m");
        }
        if (pid == 0) {
                if (dup2(fd, STDOUT_FILENO) < 0)
                        _exit(127);
                execlp("tar", "tar", "-C", dir, "--owner=0", "--group=0", "--numeric-owner", "-czf", "-", ".", (char *) NULL);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                close(fd);
                return log_error_errno(EIO, "tar of %s failed.", dir);
        }
        if (fstat(fd, &st) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
                close(fd);
                return log_error_errno(errno, "Cannot read the archive: %m");
        }
        f = fdopen(fd, "r");
        if (!f) {
                close(fd);
                return log_oom();
        }
        *ret = f;
        *ret_size = (curl_off_t) st.st_size;
        return 0;
}

static int append_query(char **q, const char *key, const char *value) {
        char *e = curl_easy_escape(NULL, value, 0);
        char *n = NULL;
        int r;

        if (!e)
                return log_oom();
        r = asprintf(&n, "%s%s%s=%s", strempty(*q), *q ? "&" : "?", key, e);
        curl_free(e);
        if (r < 0)
                return log_oom();
        free(*q);
        *q = n;
        return 0;
}

int verb_program_upload(int argc, char *argv[], char *tail[]) {
        _cleanup_free_ char *query = NULL, *path = NULL, *copy = argc > 0 ? strdup(argv[0]) : NULL;
        json_object *reply = NULL;
        curl_off_t size = 0;
        FILE *f = NULL;
        int r, status;

        if (argc > 0 && !copy)
                return log_oom();
        /* --image: the image's own entrypoint unless --entrypoint names one; DIR is optional */
        if (!arg_program.entrypoint && !arg_spec.image)
                return log_error_errno(EINVAL, "--entrypoint= is required: the file the program starts with "
                                       "(or --image= for a program on an image of its own).");
        if (argc == 0 && !arg_spec.image)
                return log_error_errno(EINVAL, "Expected DIR (only a program with --image= may have none).");
        if (argc == 0 && arg_program.entrypoint)
                return log_error_errno(EINVAL, "--entrypoint= names a file in DIR, but no DIR was given.");
        if (argc == 0 && !arg_program.title)
                return log_error_errno(EINVAL, "--title= is required without DIR.");
        r = append_query(&query, "title", arg_program.title ?: basename(copy));
        if (r >= 0 && arg_program.entrypoint)
                r = append_query(&query, "entrypoint", arg_program.entrypoint);
        if (r >= 0 && arg_spec.image)
                r = append_query(&query, "image", arg_spec.image);
        if (r >= 0 && arg_program.replace)
                r = append_query(&query, "replace", "true");
        if (r >= 0 && arg_program.provider)
                r = append_query(&query, "provider", arg_program.provider);
        if (r >= 0 && arg_program.arguments)
                r = append_query(&query, "arguments", json_object_to_json_string_ext(arg_program.arguments, JSON_C_TO_STRING_PLAIN));
        if (r < 0)
                return r;
        r = argc > 0 ? tar_directory(argv[0], &f, &size) : 0;
        if (r < 0)
                return r;
        if (asprintf(&path, "/v1/programs%s", query) < 0) {
                if (f)
                        fclose(f);
                return log_oom();
        }
        /* without DIR: no body */
        status = http_call("POST", path, f, size, "application/gzip", NULL, &reply);
        if (f)
                fclose(f);
        if (status < 0)
                return status;
        if (status != 201)
                r = log_reply_error(status, reply, "upload the program");
        else if (arg_json != JSON_OFF)
                r = json_print(reply, arg_json != JSON_SHORT, stdout);
        json_object_put(reply);
        return r;
}

/* "?provider=NAME" for --provider, else nothing (the caller's own program). */
static int provider_query(char **q) {
        return arg_program.provider ? append_query(q, "provider", arg_program.provider) : 0;
}

int verb_program_list(int argc, char *argv[], char *tail[]) {
        _cleanup_free_ char *query = NULL, *path = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        json_object *reply = NULL, *a;
        int r, status;

        r = provider_query(&query);
        if (r < 0)
                return r;
        if (asprintf(&path, "/v1/programs%s", strempty(query)) < 0)
                return log_oom();
        status = http_call("GET", path, NULL, 0, NULL, NULL, &reply);
        if (status < 0)
                return status;
        if (status != 200 || !json_object_object_get_ex(reply, "programs", &a)) {
                r = log_reply_error(status, reply, "list programs");
                json_object_put(reply);
                return r;
        }
        if (arg_json != JSON_OFF) {
                r = json_print(a, arg_json != JSON_SHORT, stdout);
                json_object_put(reply);
                return r;
        }
        t = table_new("PROVIDER", "TITLE", "ENTRYPOINT", "VERSION", "DESCRIPTION", NULL);
        if (!t) {
                json_object_put(reply);
                return log_oom();
        }
        table_set_shrinkable(t, 4, 11);
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *p = json_object_array_get_idx(a, i), *v;
                const char *cells[5] = {};
                static const char * const keys[5] = { "provider", "title", "entrypoint", "version", "description" };

                for (size_t k = 0; k < 5; k++)
                        if (json_object_object_get_ex(p, keys[k], &v) && json_object_is_type(v, json_type_string))
                                cells[k] = json_object_get_string(v);
                r = table_add_row(t, cells[0] ?: "-", cells[1], cells[2], cells[3], cells[4]);
                if (r < 0)
                        break;
        }
        r = table_print_listing(t, arg_legend, "program", "programs");
        json_object_put(reply);
        return r;
}

int verb_program_remove(int argc, char *argv[], char *tail[]) {
        int ret = 0;

        for (int i = 0; i < argc; i++) {
                _cleanup_free_ char *path = NULL, *query = NULL, *e = curl_easy_escape(NULL, argv[i], 0);
                json_object *reply = NULL;
                int status;

                if (!e || provider_query(&query) < 0 || asprintf(&path, "/v1/programs/%s%s", e, strempty(query)) < 0)
                        return log_oom();
                status = http_call("DELETE", path, NULL, 0, NULL, NULL, &reply);
                if (status < 0)
                        ret = status;
                else if (status != 204)
                        ret = log_reply_error(status, reply, "remove the program");
                json_object_put(reply);
        }
        return ret;
}

int verb_program_run(int argc, char *argv[], char *tail[]) {
        _cleanup_free_ char *path = NULL, *query = NULL, *e = curl_easy_escape(NULL, argv[0], 0);
        json_object *reply = NULL, *body = json_object_new_object(), *id;
        int r, status;

        if (!e || !body || provider_query(&query) < 0 || asprintf(&path, "/v1/programs/%s/run%s", e, strempty(query)) < 0) {
                json_object_put(body);
                return log_oom();
        }
        if (arg_program.arguments)
                json_object_object_add(body, "arguments", json_object_get(arg_program.arguments));
        status = http_call("POST", path, NULL, 0, "application/json", body, &reply);
        json_object_put(body);
        if (status < 0)
                return status;
        if (status != 201 || !json_object_object_get_ex(reply, "id", &id)) {
                r = log_reply_error(status, reply, "run the program");
                json_object_put(reply);
                return r;
        }
        if (!arg_job.wait) {
                puts(json_object_get_string(id));
                json_object_put(reply);
                return 0;
        }
        r = ctl_job_wait_and_print(json_object_get_string(id));
        json_object_put(reply);
        return r;
}
