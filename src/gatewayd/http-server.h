/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <microhttpd.h>
#include <stdbool.h>

#include "caller.h"
#include "gw-error.h"
#include "http-router.h"

typedef struct Manager Manager;
typedef struct Config Config;
typedef struct HttpServer HttpServer;
typedef struct HttpListener HttpListener;
typedef struct HttpPeer HttpPeer;
typedef struct AuthSource AuthSource;

/* The sockets gatewayd serves HTTP on, told apart by FileDescriptorName= under socket activation
 * ("http", "tcp", "tls") or configured with "Listen". */
typedef enum HttpListenerKind {
        HTTP_LISTENER_UNIX,     /* "http": the local socket, identity from peer credentials */
        HTTP_LISTENER_TCP,      /* "tcp": plain HTTP, identities from credentials (auth-source.h) */
        HTTP_LISTENER_TLS,      /* "tls": HTTPS, likewise */
        _HTTP_LISTENER_KIND_MAX,
} HttpListenerKind;

/* One HTTP request. Handlers answer with one of the http_request_reply*() calls, either before
 * they return or later (after http_request_suspend()), e.g. when polkit has answered. */
typedef struct HttpRequest {
        HttpServer *server;
        HttpListener *listener;
        Manager *manager;
        struct MHD_Connection *connection;
        HttpPeer *peer;
        const char *method;
        const char *url;

        char *body;
        size_t body_size;
        bool body_too_large;
        /* HTTP_ROUTE_BODY_FILE routes: the body went to this file (removed with the request
         * unless a handler took it: then it sets body_path to NULL), body_size counts it. */
        char *body_path;
        int body_fd;
        uint64_t body_max;
        /* HTTP_ROUTE_BODY_FORM routes with a multipart/form-data body: the form as it was
         * received (its file part is what body_path holds); NULL if the Content-Type is not one. */
        struct FormUpload *form;

        bool dispatched;
        bool suspended;
        struct MHD_Response *response;
        unsigned status;

        /* Suspended requests are listed so that shutdown can answer them (libmicrohttpd must not
         * be stopped with suspended connections). */
        struct HttpRequest *suspended_prev, *suspended_next;

        /* TCP/TLS: the identity the request proved (auth-source.h); identity_name backs
         * identity.name. auth_source is set while a source verifies the credential, auth_data is
         * that source's state meanwhile. */
        Caller identity;
        char *identity_name;
        char *identity_subject;         /* backs identity.subject */
        bool authenticated;
        const AuthSource *auth_source;
        void *auth_data;
        /* Registry logins the credential carried (shifterimg login, registry-logins.h), or NULL;
         * wiped with the request. */
        struct RegistryLogins *registry_logins;

        /* State a handler keeps across suspension; freed with the request. */
        void *userdata;
        void (*free_userdata)(void *userdata);
} HttpRequest;

int http_server_new(Manager *m, const HttpRoute *routes, size_t n_routes, HttpServer **ret);
/* Serves on listen_fd (taken over, also on failure). For HTTP_LISTENER_TLS the configured
 * certificate and key are loaded first; failing to load them fails this. */
int http_server_add_listener(HttpServer *s, HttpListenerKind kind, int listen_fd);
HttpServer *http_server_free(HttpServer *s);
unsigned http_server_n_connections(HttpServer *s);
/* Stops accepting connections; those already open are still served. */
void http_server_quiesce(HttpServer *s);
/* SIGHUP: rereads the TLS certificate and key; new connections get the new ones. On failure the
 * old ones stay. */
int http_server_reload(HttpServer *s);

typedef struct HttpListenFds {
        int fd[_HTTP_LISTENER_KIND_MAX];         /* -1: no such listener */
        bool activated[_HTTP_LISTENER_KIND_MAX]; /* passed by the service manager */
} HttpListenFds;

/* Opens the listening sockets: those passed by systemd, by FileDescriptorName ("http", "tcp",
 * "tls"); the unix socket at path if none was passed; TCP/TLS sockets from "Listen" where
 * configured and none was passed. */
int http_listen_sockets(const Config *c, const char *path, HttpListenFds *ret);
HttpListenFds *http_listen_fds_free(HttpListenFds *f);

/* Who is asking: on the unix socket the peer (SO_PEERCRED; pidfd fetched on first use); on
 * TCP/TLS the identity the request proved, or an anonymous network caller. */
const Caller *http_request_caller(HttpRequest *req);
/* Whether the request came over TCP/TLS, and from which address ("127.0.0.1"). */
bool http_request_is_network(HttpRequest *req);
const char *http_request_address(HttpRequest *req);
/* Whether it came over the TLS listener (for URLs that point back). */
bool http_request_is_tls(HttpRequest *req);
/* A credential checked by a handler rather than an identity source (a PlanQK client's secret at
 * POST /token) was bad: counts for the per-address blocking like a failed authentication. */
void http_request_auth_failed(HttpRequest *req, const char *what, const char *message);
/* A request header, NULL if absent. */
const char *http_request_header(HttpRequest *req, const char *name);

/* Parses the body as JSON (json_parse_untrusted(): whole, valid UTF-8, no "\u0000"). Replies
 * 415 (not application/json) or 400 (malformed, or "null") itself and returns NULL then. */
json_object *http_request_json_body(HttpRequest *req);
/* The parsing part of it, on any buffer (tests/fuzz): a JSON document of size bytes, optionally
 * followed by white space. On failure sets e (BadRequest with the offset). */
int http_json_body_parse(const char *body, size_t size, json_object **ret, GwError *e);
/* JSON text inside a request (a query parameter, a form field, a string member holding JSON) is
 * the client's JSON like a body: the same parser, so "\u0000" is refused there too. what names
 * it in the error (InvalidArgument); *ret is NULL for the text "null". */
int http_json_text_parse(const char *what, const char *text, json_object **ret, GwError *e);

const char *http_request_query(HttpRequest *req, const char *key);

void http_request_suspend(HttpRequest *req);

/* Keeps a copy of s as the request's userdata (e.g. a name from the path, needed after a polkit
 * check). Replies 500 itself on failure. */
int http_request_keep_string(HttpRequest *req, const char *s);

void http_request_reply_json(HttpRequest *req, unsigned status, json_object *body);  /* takes ownership */
void http_request_reply_text(HttpRequest *req, unsigned status, const char *json_text);
void http_request_reply_empty(HttpRequest *req, unsigned status);
void http_request_reply_error(HttpRequest *req, const GwError *e);
void http_request_reply_errorf(HttpRequest *req, GwErrorCode code, const char *format, ...) _printf_(3, 4);
/* A body of any type (e.g. text/plain), copied. */
void http_request_reply_data(HttpRequest *req, unsigned status, const char *content_type, const char *data, size_t size);
/* The whole of regular file fd (size bytes), sent as it is read; takes fd. */
void http_request_reply_fd(HttpRequest *req, unsigned status, const char *content_type, int fd, uint64_t size);
/* A streamed reply (chunked, e.g. JSON lines or a log being followed): the request is answered
 * with status 200 at once and the returned stream carries the body. Write to it as data comes;
 * finish it to end the body. The stream is reference counted: the reply holds one reference, the
 * caller gets another and must drop it with http_stream_unref(). http_stream_is_closed() tells
 * when the client has gone away, so the producer can stop. */
typedef struct HttpStream HttpStream;
HttpStream *http_request_reply_stream(HttpRequest *req, const char *content_type);
int http_stream_write(HttpStream *s, const void *data, size_t size);
void http_stream_finish(HttpStream *s);
bool http_stream_is_closed(HttpStream *s);
HttpStream *http_stream_ref(HttpStream *s);
HttpStream *http_stream_unref(HttpStream *s);

/* Only after a reply was set. */
void http_request_add_header(HttpRequest *req, const char *name, const char *value);
