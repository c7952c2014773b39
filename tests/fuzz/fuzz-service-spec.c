/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of POST /v1/services and PUT /v1/services/NAME, through service_from_spec()
 * (src/gatewayd/service.c): see fuzz-spec-roundtrip.h. */
#include "fuzz-spec-roundtrip.h"
#include "service.h"

DEFINE_SPEC_ROUNDTRIP_FUZZER(Service, service_from_spec, service_spec_to_json, service_to_json, service_freep, "svc")
