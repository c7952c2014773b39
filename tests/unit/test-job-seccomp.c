/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job's seccomp program as bwrap gets it: loaded into a child of the test, which then tries
 * what it must refuse and what it must still allow. */
#include <check.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "job-seccomp.h"
#include "macro.h"
#include "test-main.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int load(int fd) {
        struct sock_filter prog[4096];
        struct sock_fprog fprog;
        ssize_t n = read(fd, prog, sizeof(prog));

        if (n <= 0 || n % (ssize_t) sizeof(struct sock_filter) != 0)
                return -1;
        fprog = (struct sock_fprog) { .len = (unsigned short) (n / (ssize_t) sizeof(struct sock_filter)), .filter = prog };
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -1;
        return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog);
}

/* 0 if the call failed with errno e, else a distinct non-zero code */
static int expect_errno(long r, int e, int code) {
        return r == -1 && errno == e ? 0 : code;
}

static int fork_ok(void) {
        int st;
        pid_t p = fork();

        if (p == 0)
                _exit(7);
        return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 7 ? 0 : 50;
}

/* Runs under the filter; the exit code names the first check that failed. */
static int checks(int fd) {
        int r, s;

        if (load(fd) < 0)
                return 1;
        if ((r = expect_errno(unshare(CLONE_NEWUSER), EPERM, 10)) ||
            (r = expect_errno(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0), EPERM, 11)) ||
            (r = expect_errno(syscall(SYS_clone3, NULL, 0), ENOSYS, 12)) ||
            (r = expect_errno(setns(-1, 0), EPERM, 13)) ||
            (r = expect_errno(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0), EPERM, 20)) ||
            (r = expect_errno(syscall(SYS_add_key, "user", "x", "x", 1, KEY_SPEC_SESSION_KEYRING), EPERM, 21)) ||
            (r = expect_errno(syscall(SYS_open_tree, AT_FDCWD, "/", 0), EPERM, 30)) ||
            (r = expect_errno(syscall(SYS_bpf, 0, NULL, 0), EPERM, 31)) ||
            (r = expect_errno(syscall(SYS_io_uring_setup, 0, NULL), EPERM, 32)) ||
            (r = expect_errno(socket(AF_VSOCK, SOCK_STREAM, 0), EPERM, 33)))
                return r;
#ifdef __x86_64__
        /* the x32 ABI: the x86-64 numbers with bit 30 set */
        if ((r = expect_errno(syscall(0x40000000 | SYS_unshare, CLONE_NEWUSER), EPERM, 40)))
                return r;
        /* the i386 ABI through int 0x80 (310: unshare there) */
        long ret;
        __asm__ volatile ("int $0x80" : "=a" (ret) : "a" (310), "b" (CLONE_NEWUSER) : "memory");
        if (ret != -EPERM)
                return 41;
#endif
        /* and what every program needs */
        if (getpid() <= 0)
                return 50;
        if ((r = fork_ok()))
                return r;
        s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (s < 0)
                return 52;
        close(s);
        return 0;
}

START_TEST(test_program) {
        struct stat st;
        int fd, status;
        pid_t p;

        ck_assert_int_eq(job_seccomp_memfd(&fd), 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_gt(st.st_size, 0);
        ck_assert_int_eq(st.st_size % (off_t) sizeof(struct sock_filter), 0);
        ck_assert_int_eq(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE, F_SEAL_WRITE);
        ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

        p = fork();
        ck_assert_int_ge(p, 0);
        if (p == 0)
                _exit(checks(fd));
        ck_assert_int_eq(waitpid(p, &status, 0), p);
        ck_assert_msg(WIFEXITED(status), "killed by signal %d", WTERMSIG(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
        close(fd);
}
END_TEST

int main(void) {
        Suite *s = suite_create("job-seccomp");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_program);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
