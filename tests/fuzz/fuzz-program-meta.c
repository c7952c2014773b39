/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The metadata of POST /v1/programs (the query, gathered into a JSON object by http-programs.c)
 * and the body of POST /v1/programs/TITLE/run's arguments: program_from_metadata(), the stored
 * spec it makes (which must load again as the same program), the argument merge, and a program's
 * own image against ProgramImages patterns (config_program_image_permitted()). */
#include "config.h"
#include "fuzz.h"
#include "gw-error.h"
#include "http-server.h"
#include "json-util.h"
#include "program.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *meta = NULL, *spec = NULL, *spec2 = NULL, *merged = NULL;
        _cleanup_(program_freep) Program *p = NULL, *q = NULL;

        fuzz_quiet();
        if (http_json_body_parse((const char *) data, size, &meta, &e) < 0) {
                fuzz_assert(e.message);
                return 0;
        }
        if (!json_object_is_type(meta, json_type_object))
                return 0;
        if (program_from_metadata(meta, &p, &e) < 0) {
                fuzz_assert(gw_error_is_set(&e) && e.message);
                return 0;
        }
        fuzz_assert(program_title_is_valid(p->title) && (p->entrypoint || p->image));
        if (p->image) {
                static Config *c;
                if (!c)
                        fuzz_assert(config_parse("{\"Locations\": {\"docker.io\": {}, \"r.example:5000\": {}}, "
                                                 "\"ProgramImages\": [\"r.example:5000/quantum/*\", \"python\", "
                                                 "\"team/tool:1.0\", \"docker.io/*\"]}", NULL, &c, NULL) == 0);
                (void) config_program_image_permitted(c, p->image);
        }
        spec = program_spec_to_json(p);
        fuzz_assert(spec);
        q = calloc(1, sizeof(Program));
        fuzz_assert(q);
        /* the image is a column of its own, read before the spec (program-registry.c) */
        q->image = p->image ? strdup(p->image) : NULL;
        fuzz_assert(program_spec_apply(q, spec, &e) >= 0);
        spec2 = program_spec_to_json(q);
        fuzz_assert(spec2 && streq(json_text(spec), json_text(spec2)));
        merged = program_merge_arguments(p, p->arguments);
        fuzz_assert(merged && json_object_is_type(merged, json_type_object));
        return 0;
}
