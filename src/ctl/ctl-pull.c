/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "ctl-bus.h"
#include "ctl-images.h"
#include "ctl-polkit-agent.h"
#include "ctl-table.h"
#include "ctl-util.h"
#include "ctl.h"
#include "json-util.h"
#include "log.h"

/* "gatewayctl pull": PullImage(), then the image object's PropertiesChanged signals until the
 * image is READY or has failed, shown as a progress bar on a terminal and as plain lines
 * elsewhere (like importctl pull-tar, which follows importd's Transfer objects). */

#define IMAGE_INTERFACE "org.gatewayd.Gateway1.Image"
#define IMAGE_PATH_PREFIX GATEWAY_OBJECT_PATH "/image"
#define CREDENTIALS_MAX ((size_t) 64 * 1024)
/* PullImage() answers once the worker has resolved the reference at the registry, which a
 * slow registry may take a while to allow. */
#define PULL_CALL_TIMEOUT_USEC (UINT64_C(5) * 60 * 1000000)
/* The signals say everything; the state is read again now and then all the same, so that a
 * daemon that did not announce a change (an older gatewayd sent no signals for private
 * images) cannot leave gatewayctl waiting forever. */
#define REREAD_USEC (UINT64_C(5) * 1000000)

char *arg_pull_platform = NULL;
char *arg_pull_credentials_file = NULL;
bool arg_pull_force = false;

void images_args_done(void) {
        arg_pull_platform = mfree(arg_pull_platform);
        arg_pull_credentials_file = mfree(arg_pull_credentials_file);
}

/* The Image object's properties that a pull shows. */
typedef struct ImageState {
        char *id, *status, *status_message;
        double progress;
        uint64_t bytes_done, bytes_total, size;
        uint32_t layers_done, layers_total;
} ImageState;

typedef struct PullWatch {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *reread;    /* a GetAll() under way */
        const char *reference;
        char *path;             /* the image object PullImage() answered with */
        char *owner;            /* gatewayd's unique bus name */
        uint64_t cookie;        /* serial of the newest message the state was read from */
        ImageState state;
        char *failure;          /* why the pull ended without READY */

        bool tty;               /* redraw one line in place on stderr */
        char *shown_status;     /* what the last progress line said */
        int shown_decile;
        uint32_t shown_layers;
        bool line_open;         /* a redrawn line is on the terminal without a newline */
} PullWatch;

static void pull_watch_done(PullWatch *w) {
        sd_bus_slot_unref(w->reread);
        free(w->path);
        free(w->owner);
        free(w->state.id);
        free(w->state.status);
        free(w->state.status_message);
        free(w->failure);
        free(w->shown_status);
}

static void sd_event_unrefp_(sd_event **e) {
        sd_event_unref(*e);
}

static void sd_bus_slot_unrefp_(sd_bus_slot **s) {
        sd_bus_slot_unref(*s);
}

/* -- reading the image's properties ------------------------------------------------------- */

static int image_state_read_property(sd_bus_message *m, const char *name, const char *type, ImageState *s) {
        static const struct {
                const char *name, *type;
                size_t offset;
        } fields[] = {
                { "Id", "s", offsetof(ImageState, id) },
                { "Status", "s", offsetof(ImageState, status) },
                { "StatusMessage", "s", offsetof(ImageState, status_message) },
                { "Progress", "d", offsetof(ImageState, progress) },
                { "BytesDone", "t", offsetof(ImageState, bytes_done) },
                { "BytesTotal", "t", offsetof(ImageState, bytes_total) },
                { "LayersDone", "u", offsetof(ImageState, layers_done) },
                { "LayersTotal", "u", offsetof(ImageState, layers_total) },
                { "Size", "t", offsetof(ImageState, size) },
        };

        for (size_t k = 0; k < ELEMENTSOF(fields); k++) {
                void *p = (char *) s + fields[k].offset;
                const char *v;
                int r;

                if (!streq(fields[k].name, name) || !streq(fields[k].type, type))
                        continue;
                if (type[0] != 's')
                        return sd_bus_message_read_basic(m, type[0], p);
                r = sd_bus_message_read_basic(m, 's', &v);
                if (r < 0)
                        return r;
                return free_and_strdup(p, v);
        }
        /* Properties gatewayctl does not show, or of a type it does not expect. */
        return sd_bus_message_skip(m, type);
}

/* Reads an a{sv} (GetAll()'s reply, or PropertiesChanged's changed properties). */
static int image_state_read(sd_bus_message *m, ImageState *s) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *type;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, NULL, &type);
                if (r < 0)
                        return r;
                r = sd_bus_message_enter_container(m, 'v', type);
                if (r < 0)
                        return r;
                r = image_state_read_property(m, name, type, s);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* gatewayd numbers its messages in the order it sends them. A signal numbered below the reply
 * the state was read from was sent before that reply: it is older than what we know, and
 * applying it would move the progress backwards. Signals from anyone but gatewayd's
 * connection are not gatewayd's word at all. */
static bool message_is_news(PullWatch *w, sd_bus_message *m) {
        const char *sender = sd_bus_message_get_sender(m);
        uint64_t cookie;

        if (!w->path || !w->owner || !sender || !streq(sender, w->owner))
                return false;
        if (sd_bus_message_get_cookie(m, &cookie) < 0 || cookie <= w->cookie)
                return false;
        w->cookie = cookie;
        return true;
}

/* -- showing progress --------------------------------------------------------------------- */

static size_t stderr_columns(void) {
        const char *e = getenv("COLUMNS");
        struct winsize ws = {};

        if (e) {
                char *end;
                unsigned long v = strtoul(e, &end, 10);
                if (*e && !*end && v > 0 && v < 100000)
                        return v;
        }
        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) >= 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 80;
}

static bool stderr_is_terminal(void) {
        const char *term = getenv("TERM");
        return isatty(STDERR_FILENO) && !(term && streq(term, "dumb"));
}

static int state_percent(const ImageState *s) {
        double p = s->progress;

        if (!isfinite(p) || p < 0)
                return 0;
        return p >= 1 ? 100 : (int) floor(p * 100);
}

/* "  38%  45.2M/120.0M  layers 1/4": what follows the status (and the bar). */
static void format_counts(const ImageState *s, char *buf, size_t size) {
        char done[FORMAT_BYTES_MAX], total[FORMAT_BYTES_MAX], sq[FORMAT_BYTES_MAX];
        size_t l;

        l = (size_t) snprintf(buf, size, " %3d%%", state_percent(s));
        if (s->bytes_total > 0 && l < size)
                l += (size_t) snprintf(buf + l, size - l, "  %s/%s", format_bytes(done, sizeof(done), s->bytes_done),
                                       format_bytes(total, sizeof(total), s->bytes_total));
        if (s->layers_total > 0 && l < size)
                l += (size_t) snprintf(buf + l, size - l, "  layers %" PRIu32 "/%" PRIu32, s->layers_done,
                                       s->layers_total);
        if (s->status && streq(s->status, "READY") && s->size > 0 && l < size)
                (void) snprintf(buf + l, size - l, "  squashfs %s", format_bytes(sq, sizeof(sq), s->size));
}

/* One line, redrawn in place: "PULLING     [#######.............]  38%  45.2M/120.0M  layers 1/4".
 * It never reaches the last column, so that the terminal does not wrap it and \r still
 * returns to its start. */
static void draw_tty_line(PullWatch *w, const char *status) {
        char counts[128], line[512];
        size_t width = MIN(stderr_columns(), sizeof(line)) - 1, l, bar;
        int percent = state_percent(&w->state);
        _cleanup_free_ char *cut = NULL;

        format_counts(&w->state, counts, sizeof(counts));
        l = (size_t) snprintf(line, sizeof(line), "%-11s", status);
        /* The bar takes what is left, within reason; on a narrow terminal there is none. */
        bar = width > l + strlen(counts) + 4 ? width - l - strlen(counts) - 3 : 0;
        bar = MIN(bar, (size_t) 40);
        if (bar >= 10 && l + bar + 2 < sizeof(line)) {
                size_t filled = bar * (size_t) percent / 100;
                line[l++] = '[';
                memset(line + l, '#', filled);
                memset(line + l + filled, '.', bar - filled);
                l += bar;
                line[l++] = ']';
                line[l] = 0;
        }
        (void) snprintf(line + l, sizeof(line) - l, "%s", counts);

        cut = ellipsize(line, width, "...");
        fprintf(stderr, "\r%s\x1b[K", cut ?: line);
        fflush(stderr);
        w->line_open = true;
}

/* Without a terminal: a line when the status changes, when a layer is done, and every 10%. */
static void print_plain_line(PullWatch *w, const char *status) {
        int decile = state_percent(&w->state) / 10;
        bool new_status = !w->shown_status || !streq(w->shown_status, status);
        char counts[128];

        if (!new_status && decile <= w->shown_decile && w->state.layers_done == w->shown_layers)
                return;
        format_counts(&w->state, counts, sizeof(counts));
        fprintf(stderr, "%s%s\n", status, counts);
        fflush(stderr);
        (void) free_and_strdup(&w->shown_status, status);
        w->shown_decile = decile;
        w->shown_layers = w->state.layers_done;
}

static void show_state(PullWatch *w) {
        _cleanup_free_ char *status = NULL;

        if (arg_quiet)
                return;
        /* The status comes from the daemon: keep control characters off the terminal. */
        status = escape_for_terminal(w->state.status ?: "PENDING");
        if (!status)
                return;
        if (w->tty)
                draw_tty_line(w, status);
        else
                print_plain_line(w, status);
}

static void end_line(PullWatch *w) {
        if (w->line_open) {
                fputc('\n', stderr);
                fflush(stderr);
                w->line_open = false;
        }
}

/* -- following the pull ------------------------------------------------------------------- */

static void pull_watch_finish(PullWatch *w, int code, const char *failure) {
        if (failure && !w->failure)
                w->failure = strdup(failure);
        (void) sd_event_exit(w->event, code);
}

/* Shows the state and ends the loop once it is final. Returns true when it is. */
static bool pull_watch_update(PullWatch *w) {
        const char *s = w->state.status;

        show_state(w);
        if (!s)
                return false;
        if (streq(s, "READY")) {
                pull_watch_finish(w, 0, NULL);
                return true;
        }
        if (streq(s, "FAILURE")) {
                pull_watch_finish(w, -EIO, w->state.status_message && *w->state.status_message
                                                   ? w->state.status_message
                                                   : "the pull failed (gatewayd gave no reason)");
                return true;
        }
        if (streq(s, "EXPIRED")) {
                pull_watch_finish(w, -ESTALE, "the image was expired while it was being pulled");
                return true;
        }
        return false;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PullWatch *w = userdata;
        const char *path = sd_bus_message_get_path(m), *interface;
        int r;

        if (!w->path || !path || !streq(path, w->path) || !message_is_news(w, m))
                return 0;
        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0 || !streq(interface, IMAGE_INTERFACE))
                return 0;
        r = image_state_read(m, &w->state);
        if (r < 0) {
                log_debug_errno(r, "Failed to parse PropertiesChanged of %s: %m", w->path);
                pull_watch_finish(w, r, "gatewayd sent a progress signal gatewayctl cannot read");
                return 0;
        }
        (void) pull_watch_update(w);
        return 0;
}

static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PullWatch *w = userdata;
        const char *path;

        if (!message_is_news(w, m) || sd_bus_message_read(m, "o", &path) < 0 || !streq(path, w->path))
                return 0;
        pull_watch_finish(w, -ENOENT, "the image was removed while it was being pulled");
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PullWatch *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (w->owner && streq(old_owner, w->owner) && !streq(new_owner, old_owner))
                pull_watch_finish(w, -ECONNRESET, "gatewayd left the bus before the pull finished");
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        PullWatch *w = userdata;

        end_line(w);
        log_error("Interrupted. The pull goes on in gatewayd; 'gatewayctl image show %s' shows how far it got.",
                  w->state.id ?: w->reference);
        return sd_event_exit(w->event, -EINTR);
}

static int on_reread_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PullWatch *w = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        uint64_t cookie;
        int r;

        w->reread = sd_bus_slot_unref(w->reread);
        if (e) {
                /* A private image that is gone looks like one that never was. */
                if (sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                    sd_bus_error_has_name(e, SD_BUS_ERROR_UNKNOWN_INTERFACE))
                        pull_watch_finish(w, -ENOENT, "the image was removed while it was being pulled");
                else
                        log_debug("Failed to read the image's state again: %s", e->message);
                return 0;
        }
        /* The reply is in gatewayd's order too: only news if sent after what we know. */
        if (sd_bus_message_get_cookie(m, &cookie) < 0 || cookie <= w->cookie)
                return 0;
        r = image_state_read(m, &w->state);
        if (r < 0) {
                log_debug_errno(r, "Failed to parse the properties of %s: %m", w->path);
                return 0;
        }
        w->cookie = cookie;
        (void) pull_watch_update(w);
        return 0;
}

static int on_reread_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        PullWatch *w = userdata;
        int r;

        if (!w->reread) {
                r = sd_bus_call_method_async(w->bus, &w->reread, GATEWAY_BUS_NAME, w->path,
                                             "org.freedesktop.DBus.Properties", "GetAll", on_reread_reply, w, "s",
                                             IMAGE_INTERFACE);
                if (r < 0)
                        log_debug_errno(r, "Failed to read the image's state again: %m");
        }
        r = sd_event_source_set_time_relative(s, REREAD_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return r;
}

static int add_matches(sd_bus *bus, PullWatch *w, sd_bus_slot **slots) {
        /* No sender= in the rules: gatewayd may not be running yet (PullImage() may activate
         * it). The callbacks check the sender against the owner that answered instead. */
        static const char rule_changed[] =
                "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                "path_namespace='" IMAGE_PATH_PREFIX "',arg0='" IMAGE_INTERFACE "'";
        static const char rule_removed[] =
                "type='signal',interface='org.freedesktop.DBus.ObjectManager',member='InterfacesRemoved',"
                "path='" GATEWAY_OBJECT_PATH "'";
        static const char rule_owner[] =
                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" GATEWAY_BUS_NAME "'";
        int r;

        r = sd_bus_add_match(bus, &slots[0], rule_changed, on_properties_changed, w);
        if (r >= 0)
                r = sd_bus_add_match(bus, &slots[1], rule_removed, on_interfaces_removed, w);
        if (r >= 0)
                r = sd_bus_add_match(bus, &slots[2], rule_owner, on_name_owner_changed, w);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to the image's signals: %m");
        return 0;
}

/* -- the request -------------------------------------------------------------------------- */

/* The file's text holds the password: not left behind in freed memory. */
static void erase_and_freep(char **p) {
        if (*p) {
                explicit_bzero(*p, strlen(*p));
                free(*p);
        }
}

static int read_credentials(const char *path, json_object **ret) {
        _cleanup_(json_object_putp) json_object *file = NULL, *o = NULL;
        _cleanup_(erase_and_freep) char *text = NULL;
        _cleanup_free_ char *msg = NULL;
        const char *username, *password;
        int r;

        r = read_full_file(path, CREDENTIALS_MAX, &text, NULL);
        if (r == -EFBIG)
                return log_error_errno(r, "Credentials file '%s' is larger than %zu KiB.", path, CREDENTIALS_MAX / 1024);
        if (r < 0)
                return log_error_errno(r, "Failed to read credentials file '%s': %m", path);
        r = json_parse_text(text, &file, &msg);
        if (r < 0)
                return log_error_errno(r, "Credentials file '%s' is not valid JSON: %s", path, strna(msg));
        if (!json_object_is_type(file, json_type_object))
                return log_error_errno(EINVAL, "Credentials file '%s' must hold a JSON object "
                                       "{\"username\": ..., \"password\": ...}.", path);
        json_object_object_foreach(file, key, v) {
                (void) v;
                if (!streq(key, "username") && !streq(key, "password"))
                        return log_error_errno(EINVAL, "Credentials file '%s': unknown key '%s' (expected "
                                               "\"username\" and \"password\").", path, key);
        }
        username = json_get_string(file, "username");
        password = json_get_string(file, "password");
        if (!username || !*username)
                return log_error_errno(EINVAL, "Credentials file '%s': \"username\" must be a non-empty string.", path);
        if (!password)
                return log_error_errno(EINVAL, "Credentials file '%s': \"password\" must be a string.", path);

        o = json_object_new_object();
        if (!o || json_object_object_add(o, "username", json_object_new_string(username)) < 0 ||
            json_object_object_add(o, "password", json_object_new_string(password)) < 0)
                return log_oom();
        *ret = TAKE_PTR(o);
        return 0;
}

/* The options argument of PullImage(): {"platform", "force", "credentials"} as given. */
static int pull_options(json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        int r;

        if (!o)
                return log_oom();
        if (arg_pull_platform &&
            json_object_object_add(o, "platform", json_object_new_string(arg_pull_platform)) < 0)
                return log_oom();
        if (arg_pull_force && json_object_object_add(o, "force", json_object_new_boolean(true)) < 0)
                return log_oom();
        if (arg_pull_credentials_file) {
                json_object *c = NULL;

                r = read_credentials(arg_pull_credentials_file, &c);
                if (r < 0)
                        return r;
                if (json_object_object_add(o, "credentials", c) < 0) {
                        json_object_put(c);
                        return log_oom();
                }
        }
        *ret = TAKE_PTR(o);
        return 0;
}

static int call_pull_image(sd_bus *bus, const char *reference, json_object *options, PullWatch *w) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_polkit_agent_ pid_t agent = 0;
        const char *path;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, GATEWAY_BUS_NAME, GATEWAY_OBJECT_PATH,
                                           GATEWAY_MANAGER_INTERFACE, "PullImage");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", reference, json_text(options));
        if (r < 0)
                return log_error_errno(r, "Failed to build PullImage() call: %m");

        /* Pulling is open to everyone by default, but a site may ask for authentication. */
        agent = ctl_polkit_agent_open();
        r = sd_bus_call(bus, m, PULL_CALL_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return log_error_errno(r, "Failed to pull '%s': %s", reference, ctl_bus_error_message(&error, r));

        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return log_error_errno(r, "Failed to parse reply of PullImage(): %m");
        if (free_and_strdup(&w->path, path) < 0 || free_and_strdup(&w->owner, sd_bus_message_get_sender(reply)) < 0)
                return log_oom();
        return 0;
}

/* The image's state now. Signals queued meanwhile and older than this are ignored. */
static int read_current_state(sd_bus *bus, PullWatch *w) {
        _cleanup_bus_error_free_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_bus_message_unref_ sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, GATEWAY_BUS_NAME, w->path, "org.freedesktop.DBus.Properties", "GetAll", &error,
                               &reply, "s", IMAGE_INTERFACE);
        if (r < 0)
                return log_error_errno(r, "Failed to read the state of image %s: %s", w->path,
                                       ctl_bus_error_message(&error, r));
        r = image_state_read(reply, &w->state);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the properties of image %s: %m", w->path);
        if (sd_bus_message_get_cookie(reply, &w->cookie) < 0)
                w->cookie = 0;
        return 0;
}

/* Ctrl-C leaves the pull to gatewayd, but first ends the progress line cleanly. Set up once
 * the pull has started and before any progress is shown; until then, Ctrl-C just ends
 * gatewayctl. */
static int watch_signals(PullWatch *w) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        r = sd_event_add_signal(w->event, NULL, SIGINT, on_signal, w);
        if (r >= 0)
                r = sd_event_add_signal(w->event, NULL, SIGTERM, on_signal, w);
        if (r < 0)
                return log_error_errno(r, "Failed to watch for signals: %m");
        return 0;
}

static int follow_pull(sd_bus *bus, PullWatch *w) {
        int r;

        r = sd_event_add_time_relative(w->event, NULL, CLOCK_MONOTONIC, REREAD_USEC, 0, on_reread_timer, w);
        if (r >= 0)
                r = sd_bus_attach_event(bus, w->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");

        r = sd_event_loop(w->event);
        (void) sd_bus_detach_event(bus);
        return r;
}

int verb_pull(int argc, char *argv[], char *tail[]) {
        _cleanup_bus_unref_ sd_bus *bus = NULL;
        _cleanup_(sd_event_unrefp_) sd_event *event = NULL;
        _cleanup_(json_object_putp) json_object *options = NULL, *record = NULL;
        _cleanup_(sd_bus_slot_unrefp_) sd_bus_slot *slot_changed = NULL;
        _cleanup_(sd_bus_slot_unrefp_) sd_bus_slot *slot_removed = NULL;
        _cleanup_(sd_bus_slot_unrefp_) sd_bus_slot *slot_owner = NULL;
        _cleanup_(pull_watch_done) PullWatch w = {
                .reference = argv[0],
                .tty = stderr_is_terminal(),
                .shown_decile = -1,
        };
        sd_bus_slot *slots[3] = {};
        int r;

        if (!*argv[0])
                return log_error_errno(EINVAL, "The image reference must not be empty.");
        r = pull_options(&options);
        if (r < 0)
                return r;

        r = sd_event_new(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m");
        w.event = event;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return r;
        w.bus = bus;

        /* Subscribe first, read the state second: a pull that ends in between is then seen
         * either in the state or in a signal, never in neither. */
        r = add_matches(bus, &w, slots);
        slot_changed = slots[0], slot_removed = slots[1], slot_owner = slots[2];
        if (r < 0)
                return r;

        r = call_pull_image(bus, argv[0], options, &w);
        if (r < 0)
                return r;
        r = watch_signals(&w);
        if (r < 0)
                return r;
        r = read_current_state(bus, &w);
        if (r < 0)
                return r;

        if (!pull_watch_update(&w)) {
                r = follow_pull(bus, &w);
        } else
                r = w.failure ? -EIO : 0;   /* finished already: nothing to wait for */
        if (w.state.status && streq(w.state.status, "FAILURE"))
                r = -EIO;
        end_line(&w);

        if (r == -EINTR)
                return r;   /* said so already */
        if (r < 0 || w.failure) {
                _cleanup_free_ char *why = escape_for_terminal(w.failure ?: "the pull did not finish");
                return log_error_errno(r < 0 ? r : EIO, "Failed to pull '%s': %s", argv[0], why ?: "?");
        }

        if (arg_json != JSON_OFF) {
                /* The event loop closes the connection it was attached to when it ends. */
                if (sd_bus_is_open(bus) <= 0) {
                        bus = sd_bus_unref(bus);
                        r = ctl_bus_connect(&bus);
                        if (r < 0)
                                return r;
                }
                r = image_get_json(bus, w.state.id ?: argv[0], &record);
                if (r < 0)
                        return r;
                return json_print(record, arg_json == JSON_PRETTY, stdout);
        }
        printf("%s\n", strna(w.state.id));
        return 0;
}
