/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "auth-source.h"
#include "bus-manager.h"
#include "db.h"
#include "fs-util.h"
#include "http-api.h"
#include "http-server.h"
#include "image-registry.h"
#include "lab-access.h"
#include "job-registry.h"
#include "lingering-mounts.h"
#include "log.h"
#include "fsync-pool.h"
#include "manager.h"
#include "platform.h"
#include "polkit.h"
#include "polkit-grants.h"
#include "program-registry.h"
#include "registry-events.h"
#include "lab-instance.h"
#include "lab-registry.h"
#include "service-registry.h"

#define BUS_NAME "org.gatewayd.Gateway1"

int manager_new(const ManagerOptions *o, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return log_oom();

        m->runtime_dir = strdup(o->runtime_dir);
        m->services = hashmap_new();
        m->jobs = hashmap_new();
        m->programs = hashmap_new();
        if (!m->runtime_dir || !m->services || !m->jobs || !m->programs)
                return log_oom();
        m->idle_timeout_usec = o->idle_timeout_usec;

        r = config_load(o->config_path, /* missing_ok= */ !o->config_path_explicit, &m->config, &error);
        if (r >= 0)
                r = config_verify_files(m->config, &error);
        if (r < 0)
                return log_error_errno(r, "Failed to load configuration %s: %s", o->config_path, strna(error));

        /* The configuration is read before anything touches the state directory, so that
         * "StateDirectory" and "LogLevel" apply; the command line still wins. */
        log_set_max_level(config_log_level(m->config, o->log_level, log_get_max_level()));
        m->state_dir = strdup(config_state_directory(m->config, o->state_dir, o->state_dir_default));
        if (!m->state_dir)
                return log_oom();
        /* Before the platforms: remote ones connect to their nodes on it. */
        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m");
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &m->start_usec);
        r = platforms_load(m, &image_platform_hooks);
        if (r < 0)
                return r;
        if (o->state_dir && m->config->state_directory && !streq(o->state_dir, m->config->state_directory))
                log_warning("StateDirectory %s in %s is overridden by --state-dir=%s.",
                            m->config->state_directory, o->config_path, o->state_dir);

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        /* Submissions whose input is being flushed stage their rows first. */
        m->fsync_pool = fsync_pool_free(m->fsync_pool);
        /* What is staged for the next group commit is committed and announced while all is there. */
        db_batch_teardown(m->db);
        /* Refuse what still waits for polkit while requests and the bus can still be answered. */
        polkit_queries_cancel(m);
        polkit_grants_free(m);
        /* The HTTP server goes first: its requests may point into everything else. */
        m->http = http_server_free(m->http);
        auth_sources_done(m);
        sd_event_source_disable_unref(m->idle_timer);
        sd_bus_slot_unref(m->name_owner_slot);
        image_registry_free(m);
        job_registry_free(m);
        program_registry_free(m);
        lingering_mounts_done(m);  /* nothing of ours stays mounted: running jobs keep theirs */
        platforms_free(m);
        sd_bus_flush_close_unref(m->bus);
        service_registry_free(m);
        lab_instances_free(m);
        lab_access_done(m);
        lab_registry_free(m);
        http_image_streams_free(m);
        registry_subscribers_free(m);
        db_close(m->db);
        config_free(m->config);
        sd_event_unref(m->event);
        free(m->state_dir);
        free(m->runtime_dir);
        free(m);
        return NULL;
}

void manager_update_status(Manager *m) {
        if (m->exiting)
                return;
        (void) sd_notifyf(false, "STATUS=Serving %zu services.", hashmap_size(m->services));
}

void manager_touch(Manager *m) {
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &m->last_activity_usec);
}

void manager_busy_ref(Manager *m) {
        m->n_busy++;
}

void manager_busy_unref(Manager *m) {
        if (m->n_busy > 0)
                m->n_busy--;
        manager_touch(m);
}

static int on_bus_message(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        manager_touch(userdata);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        /* Everything sent to our name before it was released has been queued ahead of this
         * signal and handled by now; later callers will activate a fresh instance. */
        log_info("Bus name released; exiting.");
        return sd_event_exit(m->event, 0);
}

static int manager_begin_exit(Manager *m) {
        int r;

        m->exiting = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Exiting after idle timeout.");
        log_info("Idle for %llu s, exiting.", (unsigned long long) (m->idle_timeout_usec / 1000000));

        if (!m->bus)
                return sd_event_exit(m->event, 0);

        /* No new HTTP connections from now on: with socket activation they wait in the listen
         * queue for the next instance instead of being cut off by our exit. */
        http_server_quiesce(m->http);

        r = sd_bus_add_match_async(m->bus, &m->name_owner_slot,
                                   "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                   "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" BUS_NAME "'",
                                   on_name_owner_changed, NULL, m);
        if (r < 0)
                return sd_event_exit(m->event, 0);
        r = sd_bus_release_name_async(m->bus, NULL, BUS_NAME, NULL, NULL);
        if (r < 0) {
                log_warning_errno(r, "Failed to release bus name: %m");
                return sd_event_exit(m->event, 0);
        }
        return 0;
}

static bool manager_is_idle(Manager *m) {
        return m->n_busy == 0 && http_server_n_connections(m->http) == 0;
}

static int on_idle_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        usec_t now;

        if (m->exiting)
                return 0;
        (void) sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (manager_is_idle(m) && now >= m->last_activity_usec + m->idle_timeout_usec)
                return manager_begin_exit(m);

        /* Not idle yet: look again when the current quiet period would have run out. */
        (void) sd_event_source_set_time(s, MAX(now, m->last_activity_usec) + m->idle_timeout_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        m->exiting = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");
        log_info("Received SIG%s, exiting.", si->ssi_signo == SIGINT ? "INT" : "TERM");
        return sd_event_exit(m->event, 0);
}

static int manager_connect_bus(Manager *m) {
        int r;

        r = sd_bus_open_system_with_description(&m->bus, "gatewayd");
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = bus_subscribe_registries(m);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to the registries: %m");
        r = bus_manager_register(m);
        if (r < 0)
                return r;
        r = sd_bus_add_filter(m->bus, NULL, on_bus_message, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add bus filter: %m");
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach bus to event loop: %m");
        r = sd_bus_request_name(m->bus, BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire bus name %s: %m", BUS_NAME);
        return 0;
}

static int manager_open_state(Manager *m) {
        _cleanup_free_ char *path = NULL, *error = NULL;
        int r;

        r = mkdir_p(m->state_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m", m->state_dir);
        r = config_prepare_directories(m->config, m->state_dir, &error);
        if (r < 0)
                return log_error_errno(r, "Invalid configuration: %s", strna(error));
        if (asprintf(&path, "%s/state.db", m->state_dir) < 0)
                return log_oom();
        r = db_open(path, &m->db);
        if (r < 0 && db_reserve_release(path) > 0) {
                /* e.g. a full disk where the WAL's index must be created anew */
                log_warning("Retrying to open the state database with the space reserved for it.");
                r = db_open(path, &m->db);
        }
        if (r < 0)
                return r;
        r = db_batch_setup(m->db, m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to set up group commits: %m");
        r = service_registry_load(m);
        if (r < 0)
                return r;
        r = image_registry_load(m);
        if (r < 0)
                return r;
        platforms_set_layer_hooks(m, &program_layer_hooks);
        r = program_registry_load(m);
        if (r < 0)
                return r;
        r = lab_registry_load(m);
        if (r < 0)
                return r;
        r = lab_instances_load(m);
        if (r < 0)
                return r;
        return job_registry_load(m);
}

static int manager_start_http(Manager *m) {
        static const char *const what[_HTTP_LISTENER_KIND_MAX] = {
                [HTTP_LISTENER_UNIX] = "HTTP", [HTTP_LISTENER_TCP] = "HTTP over TCP", [HTTP_LISTENER_TLS] = "HTTPS",
        };
        _cleanup_free_ char *path = NULL;
        HttpListenFds fds;
        int r;

        r = mkdir_p(m->runtime_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create runtime directory %s: %m", m->runtime_dir);
        if (asprintf(&path, "%s/http.sock", m->runtime_dir) < 0)
                return log_oom();
        r = http_listen_sockets(m->config, path, &fds);
        if (r < 0)
                return r;
        r = http_images_subscribe(m);
        if (r < 0) {
                http_listen_fds_free(&fds);
                return log_error_errno(r, "Failed to subscribe progress streams: %m");
        }
        r = http_server_new(m, http_api_routes, http_api_n_routes, &m->http);
        if (r < 0) {
                http_listen_fds_free(&fds);
                return r;
        }
        for (size_t k = 0; k < _HTTP_LISTENER_KIND_MAX; k++) {
                int fd = TAKE_FD(fds.fd[k]);

                if (fd < 0)
                        continue;
                r = http_server_add_listener(m->http, k, fd);
                if (r < 0) {
                        http_listen_fds_free(&fds);
                        return r;
                }
                if (fds.activated[k])
                        log_info("Serving %s on a socket passed by the service manager.", what[k]);
                else if (k == HTTP_LISTENER_UNIX)
                        log_info("Serving %s on %s (bound by gatewayd).", what[k], path);
                else
                        log_info("Serving %s on %s (bound by gatewayd).", what[k],
                                 k == HTTP_LISTENER_TCP ? m->config->listen_tcp : m->config->listen_tls);
        }
        return 0;
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        (void) sd_notify(false, "RELOADING=1");
        (void) http_server_reload(m->http);
        (void) sd_notify(false, "READY=1");
        return 0;
}

int manager_startup(Manager *m) {
        sigset_t mask;
        int r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD); /* sd-event child sources for workers */
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_terminate, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_terminate, m);
        if (r >= 0)
                /* Rereads the TLS certificate (renewed certificates take effect without a restart). */
                r = sd_event_add_signal(m->event, NULL, SIGHUP, on_reload, m);
        if (r < 0)
                return log_error_errno(r, "Failed to install signal handlers: %m");
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable watchdog support: %m");

        r = manager_open_state(m);
        if (r < 0)
                return r;
        r = auth_sources_init(m);
        if (r < 0)
                return r;
        r = manager_start_http(m);
        if (r < 0)
                return r;
        r = manager_connect_bus(m);
        if (r < 0)
                return r;
        /* After the bus: recovery announces what it finds. */
        job_registry_start(m);

        r = image_registry_start_expiry(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up image expiry: %m");

        manager_touch(m);
        if (m->idle_timeout_usec > 0) {
                r = sd_event_add_time_relative(m->event, &m->idle_timer, CLOCK_MONOTONIC, m->idle_timeout_usec,
                                               0, on_idle_timer, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up idle timer: %m");
        }
        return 0;
}

int manager_run(Manager *m) {
        int r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %zu services.", hashmap_size(m->services));
        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
