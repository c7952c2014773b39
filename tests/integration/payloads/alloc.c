/* Allocates and touches MiB of memory one MiB at a time: "alloc MIB". Exits 3 if an allocation
 * fails (the rlimit fallback), is OOM-killed under a memory cgroup, 0 if everything fit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char *argv[]) {
        long mib = argc > 1 ? atol(argv[1]) : 64;

        for (long i = 0; i < mib; i++) {
                char *p = malloc(1 << 20);
                if (!p) {
                        printf("allocation failed after %ld MiB\n", i);
                        return 3;
                }
                memset(p, 0x5a, 1 << 20);
        }
        printf("PlanQK:Job:Result: {\"allocatedMiB\": %ld}\n", mib);
        return 0;
}
