/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's program methods: the D-Bus side of /v1/programs (program-registry.c). A program
 * exists only for its owner: anyone else's title is NotFound, as over HTTP. A provider's program
 * (RunProviderProgram, RemoveProviderProgram) exists for the provider's admins and users. */
#include "bus-program.h"
#include "bus-util.h"
#include "job-registry.h"
#include "json-util.h"
#include "manager.h"
#include "program-provider.h"
#include "program-registry.h"

#define ACTION_SUBMIT_JOB "org.gatewayd.submit-job"

static int no_such_program(const char *title, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        gw_error_set(&e, GW_ERROR_NOT_FOUND, "No program '%s'.", title);
        return gw_error_to_bus(&e, error);
}

int bus_method_list_programs(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ Program **l = NULL;
        json_object *a;
        Caller c;
        int r;

        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;
        l = program_registry_list(userdata, &c, NULL);
        a = l ? json_object_new_array() : NULL;
        if (!a)
                return -ENOMEM;
        for (Program **p = l; *p; p++)
                json_object_array_add(a, program_to_json(*p));
        return bus_reply_json(message, a);
}

static int parse_argument(const char *text, const char *what, json_object **ret, GwError *e) {
        *ret = NULL;
        if (!*text)
                return 0;  /* "" is none */
        return bus_parse_json_argument(text, what, ret, e);
}

/* RunProgram (sss) and RunProviderProgram (ssss: the provider first; "" is the caller's own). */
static int run_program_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *arguments = NULL, *env = NULL, *merged = NULL;
        const char *provider = "", *title, *arguments_text, *env_text;
        Program *p;
        Caller c;
        Job *j;
        int r;

        if (sd_bus_message_has_signature(message, "ssss"))
                r = sd_bus_message_read(message, "ssss", &provider, &title, &arguments_text, &env_text);
        else
                r = sd_bus_message_read(message, "sss", &title, &arguments_text, &env_text);
        if (r < 0)
                return r;
        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;
        p = program_registry_lookup(m, &c, provider[0] ? provider : NULL, title);
        if (!p)
                return no_such_program(title, error);
        if (strlen(arguments_text) + strlen(env_text) > m->config->max_request_body) {
                gw_error_set(&e, GW_ERROR_PAYLOAD_TOO_LARGE, "arguments and env exceed the limit of %llu bytes (MaxRequestBody).",
                             (unsigned long long) m->config->max_request_body);
                return gw_error_to_bus(&e, error);
        }
        if (parse_argument(arguments_text, "arguments", &arguments, &e) < 0 ||
            parse_argument(env_text, "env", &env, &e) < 0 ||
            program_run_arguments(p, arguments, env, &merged, &e) < 0 ||
            job_registry_submit_program(m, &c, p, merged, env, &j, &e) < 0)
                return gw_error_to_bus(&e, error);
        return sd_bus_reply_method_return(message, "o", j->object_path);
}

int bus_method_run_program(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_SUBMIT_JOB, run_program_authorized, error);
}

int bus_method_run_provider_program(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_SUBMIT_JOB, run_program_authorized, error);
}

/* RemoveProgram (s) and RemoveProviderProgram (ss: the provider first; only its admins). */
int bus_method_remove_program(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *provider = "", *title;
        Program *p;
        Caller c;
        int r;

        if (sd_bus_message_has_signature(message, "ss"))
                r = sd_bus_message_read(message, "ss", &provider, &title);
        else
                r = sd_bus_message_read(message, "s", &title);
        if (r < 0)
                return r;
        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;
        p = program_registry_lookup(userdata, &c, provider[0] ? provider : NULL, title);
        if (!p)
                return no_such_program(title, error);
        if (program_check_manage(userdata, &c, p, &e) < 0 || program_registry_remove(userdata, p, &e) < 0)
                return gw_error_to_bus(&e, error);
        return sd_bus_reply_method_return(message, NULL);
}

/* ---- UploadProgram: a program on an image of its own (no artifact travels over the bus) ---- */

static void on_uploaded(Manager *m, Program *p, const GwError *e, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *message = userdata;

        if (!p) {
                gw_error_to_bus(e, &error);
                (void) sd_bus_reply_method_error(message, &error);
        } else
                (void) bus_reply_json(message, program_to_json(p));
        sd_bus_message_unref(message);
}

static int metadata_take_provider(json_object *meta, char **ret, GwError *e) {
        json_object *v;

        *ret = NULL;
        if (!json_object_object_get_ex(meta, "provider", &v))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "provider: expected a string");
        if (json_object_get_string(v)[0] && !(*ret = strdup(json_object_get_string(v))))
                return -ENOMEM;
        json_object_object_del(meta, "provider");
        return 0;
}

static int upload_program_authorized(Manager *m, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *meta = NULL;
        _cleanup_free_ char *provider = NULL;
        Program *p = NULL;
        const char *text;
        Caller c;
        int replace, r;

        r = sd_bus_message_read(message, "sb", &text, &replace);
        if (r < 0)
                return r;
        r = bus_get_caller(message, &c);
        if (r < 0)
                return r;
        if (strlen(text) > m->config->max_request_body) {
                gw_error_set(&e, GW_ERROR_PAYLOAD_TOO_LARGE, "metadata exceeds the limit of %llu bytes (MaxRequestBody).",
                             (unsigned long long) m->config->max_request_body);
                return gw_error_to_bus(&e, error);
        }
        if (bus_parse_json_argument(text, "metadata", &meta, &e) < 0)
                return gw_error_to_bus(&e, error);
        if (!json_object_is_type(meta, json_type_object)) {
                gw_error_set(&e, GW_ERROR_INVALID_ARGUMENT, "metadata: expected a JSON object");
                return gw_error_to_bus(&e, error);
        }
        /* "provider": a provider's program ("" or none: the caller's own), as ?provider= over HTTP */
        r = metadata_take_provider(meta, &provider, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || program_from_metadata(meta, &p, &e) < 0)
                return gw_error_to_bus(&e, error);
        p->provider = TAKE_PTR(provider);
        /* the registry takes p; the reply comes from its callback */
        sd_bus_message_ref(message);
        r = program_registry_upload(m, &c, p, /* artifact_path= */ NULL, replace, on_uploaded, message, &e);
        if (r < 0) {
                sd_bus_message_unref(message);
                return gw_error_to_bus(&e, error);
        }
        return 1;
}

int bus_method_upload_program(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_verify_polkit_then(userdata, message, ACTION_SUBMIT_JOB, upload_program_authorized, error);
}
