/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The text fields of the serverless gateway's POST /api/v1/programs/upload/ form (the multipart
 * parse itself is fuzz-multipart's): serverless_upload_metadata() (src/gatewayd/http-serverless.c),
 * which reads "arguments", "env_vars" and "dependencies" as JSON text and hands the rest to
 * program_from_metadata(). Input: NAME '\0' VALUE '\0' NAME … (form fields hold any byte but NUL,
 * form-upload.c refuses NUL). A refusal says why; an accepted program is shown as JSON that a
 * client can read (valid UTF-8 everywhere), and its stored spec loads again as the same. */
#include "config.h"
#include "fuzz.h"
#include "gw-error.h"
#include "http-serverless.h"
#include "json-util.h"
#include "program.h"

static json_object *fields_from(const uint8_t *data, size_t size) {
        json_object *fields = json_object_new_object();
        const char *p = (const char *) data, *end = p + size;

        fuzz_assert(fields);
        while (p < end) {
                const char *name = p, *nul = memchr(p, 0, (size_t) (end - p)), *value, *vend;

                if (!nul)
                        break;
                value = nul + 1;
                vend = memchr(value, 0, (size_t) (end - value)) ?: end;
                if (name[0])
                        json_object_object_add(fields, name, json_object_new_string_len(value, (int) (vend - value)));
                p = vend + 1;
        }
        return fields;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *fields = NULL, *shown = NULL, *back = NULL, *spec = NULL, *spec2 = NULL;
        _cleanup_(program_freep) Program *p = NULL, *q = NULL;
        _cleanup_free_ char *text = NULL;

        fuzz_quiet();
        fields = fields_from(data, size);
        if (serverless_upload_metadata(fields, &p, &e) < 0) {
                fuzz_assert(gw_error_is_set(&e) && e.message && e.message[0]);
                fuzz_assert(!p);
                return 0;
        }
        fuzz_assert(program_title_is_valid(p->title) && (p->entrypoint || p->image));
        fuzz_assert(!p->provider || config_program_provider_name_is_valid(p->provider));
        shown = program_to_json(p);
        fuzz_assert(shown);
        text = strdup(json_text(shown));
        fuzz_assert(text);
        fuzz_assert(json_parse_untrusted(text, strlen(text), &back, NULL, NULL) == 0);
        spec = program_spec_to_json(p);
        fuzz_assert(spec);
        q = calloc(1, sizeof(Program));
        fuzz_assert(q);
        q->image = p->image ? strdup(p->image) : NULL;   /* a column of its own */
        fuzz_assert(program_spec_apply(q, spec, &e) >= 0);
        spec2 = program_spec_to_json(q);
        fuzz_assert(spec2 && streq(json_text(spec), json_text(spec2)));
        return 0;
}
