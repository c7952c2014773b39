/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "worker-events.h"

static const char * const kind_table[_WORKER_EVENT_KIND_MAX] = {
        [WORKER_EVENT_PROGRESS] = "progress",
        [WORKER_EVENT_STATUS]   = "status",
        [WORKER_EVENT_INTERIM]  = "interim",
        [WORKER_EVENT_LOG]      = "log",
        [WORKER_EVENT_DONE]     = "done",
};

const char *worker_event_kind_to_string(WorkerEventKind k) {
        if (k < 0 || k >= _WORKER_EVENT_KIND_MAX)
                return NULL;
        return kind_table[k];
}

WorkerEventKind worker_event_kind_from_string(const char *s) {
        if (!s)
                return _WORKER_EVENT_KIND_INVALID;
        for (int k = 0; k < _WORKER_EVENT_KIND_MAX; k++)
                if (streq(kind_table[k], s))
                        return (WorkerEventKind) k;
        return _WORKER_EVENT_KIND_INVALID;
}

static bool get_bool(json_object *o, const char *key) {
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

int worker_event_parse(const char *line, WorkerEvent *ret) {
        /* Deep: an interim result may be nested as deep as the worker accepts (json-c's
         * default of 32 levels would drop it). */
        json_object *o = json_parse_deep(line, NULL), *v;
        const char *kind;
        WorkerEvent e = {};

        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        kind = json_get_string(o, "event");
        if (!kind) {
                json_object_put(o);
                return -EBADMSG;
        }
        e.object = o;
        e.kind = worker_event_kind_from_string(kind);
        e.time_usec = json_get_u64(o, "time");

        switch (e.kind) {
        case WORKER_EVENT_PROGRESS:
                e.progress.bytes_done = json_get_u64(o, "bytesDone");
                e.progress.bytes_total = json_get_u64(o, "bytesTotal");
                e.progress.layers_done = (unsigned) json_get_u64(o, "layersDone");
                e.progress.layers_applied = (unsigned) json_get_u64(o, "layersApplied");
                e.progress.layers_total = (unsigned) json_get_u64(o, "layersTotal");
                break;
        case WORKER_EVENT_STATUS:
                e.status.status = json_get_string(o, "status");
                e.status.message = json_get_string(o, "message");
                e.status.started_usec = json_object_object_get_ex(o, "startedAt", &v) ? (uint64_t) json_object_get_int64(v) : 0;
                break;
        case WORKER_EVENT_INTERIM:
                e.interim.index = json_object_object_get_ex(o, "index", &v) ? (unsigned) json_object_get_int(v) : 0;
                (void) json_object_object_get_ex(o, "result", &e.interim.result);
                break;
        case WORKER_EVENT_LOG:
                e.log.level = json_get_string(o, "level");
                e.log.message = json_get_string(o, "message");
                e.log.stream = json_get_string(o, "stream");
                e.log.line = json_get_string(o, "line");
                e.log.truncated = get_bool(o, "truncated");
                break;
        default:
                break;
        }
        *ret = e;
        return 0;
}

void worker_event_done(WorkerEvent *e) {
        json_object_put(e->object);
        e->object = NULL;
}

int worker_event_format(WorkerEventKind kind, json_object *fields, uint64_t time_usec, char **ret_line,
                        size_t *ret_len) {
        const char *name = worker_event_kind_to_string(kind), *s;
        char *line;
        size_t len;

        if (!fields)
                fields = json_object_new_object();
        if (!fields || !name) {
                json_object_put(fields);
                return fields ? -EINVAL : -ENOMEM;
        }
        json_object_object_add(fields, "event", json_object_new_string(name));
        json_object_object_add(fields, "time", json_object_new_int64((int64_t) time_usec));

        s = json_object_to_json_string_ext(fields, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        len = strlen(s);
        line = malloc(len + 2);
        if (!line) {
                json_object_put(fields);
                return -ENOMEM;
        }
        memcpy(line, s, len);
        line[len] = '\n';
        line[len + 1] = 0;
        json_object_put(fields);
        *ret_line = line;
        *ret_len = len + 1;
        return 0;
}
