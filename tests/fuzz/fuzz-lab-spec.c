/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of PUT /v1/labs/NAME (and the specs gatewayd reads back from its database), through
 * lab_from_spec() (src/gatewayd/lab.c): see fuzz-spec-roundtrip.h. */
#include "fuzz-spec-roundtrip.h"
#include "lab.h"

DEFINE_SPEC_ROUNDTRIP_FUZZER(Lab, lab_from_spec, lab_spec_to_json, lab_to_json, lab_freep, "lab")
