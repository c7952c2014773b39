/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log.h"

int main(int argc, char *argv[]) {
        log_setup("gatewayd");
        log_error("gatewayd is being assembled.");
        return 1;
}
