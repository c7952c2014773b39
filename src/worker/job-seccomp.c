/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/mman.h>

#include "job-seccomp.h"
#include "macro.h"

/* job-seccomp-program.c, generated at build time by gen-job-seccomp */
extern const unsigned char job_seccomp_program[];
extern const size_t job_seccomp_program_size;

int job_seccomp_memfd(int *ret_fd) {
        _cleanup_close_ int fd = -1;
        ssize_t n;

        fd = memfd_create("gatewayd-job-seccomp", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return -errno;
        n = write(fd, job_seccomp_program, job_seccomp_program_size);
        if (n < 0)
                return -errno;
        if ((size_t) n != job_seccomp_program_size)
                return -EIO;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        /* bwrap reads it during the sandbox's setup: nothing may change it meanwhile */
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}
