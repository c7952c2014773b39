/* Tries what a sealed job sandbox must refuse and reports how each call ended:
 *
 *   sandbox-probe CLASS...       one result line {"CLASS": {"probe": "OK" | "EPERM" | ..., ...}, ...}
 *                                (the classes and their probes are in probe_class())
 *   sandbox-probe find-key NAME  on the host, as the user: exit 0 if the user keyring holds a
 *                                "user" key NAME (and unlinks it), 1 if not
 *   sandbox-probe session NAME -- ARGV...
 *                                on the host: joins a new session keyring NAME, then execs ARGV
 *
 * Where the kernel checks a capability before anything else, an EPERM would not tell a seccomp
 * filter from a missing capability; the probes therefore pass arguments that the kernel rejects
 * with another error (EINVAL, ENOENT, EBADF, E2BIG, ...) or calls that succeed unprivileged, so
 * that EPERM (ENOSYS for clone3) can only come from the filter. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <linux/reboot.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#define X32_SYSCALL_BIT 0x40000000
#define I386_NR_UNSHARE 310

static const char *errno_name(long r, int e) {
        static char buf[32];
        if (r >= 0)
                return "OK";
        switch (e) {
        case EPERM: return "EPERM";
        case ENOSYS: return "ENOSYS";
        case EINVAL: return "EINVAL";
        case ENOENT: return "ENOENT";
        case EBADF: return "EBADF";
        case EFAULT: return "EFAULT";
        case E2BIG: return "E2BIG";
        case EACCES: return "EACCES";
        case ENOKEY: return "ENOKEY";
        case EOPNOTSUPP: return "EOPNOTSUPP";
        case EAFNOSUPPORT: return "EAFNOSUPPORT";
        default:
                snprintf(buf, sizeof(buf), "E%d", e);
                return buf;
        }
}

static int first = 1;
static void report(const char *name, long r) {
        int e = errno;
        printf("%s\"%s\": \"%s\"", first ? "" : ", ", name, errno_name(r, e));
        first = 0;
}
#define PROBE(name, call) do { errno = 0; long _r = (long) (call); report(name, _r); } while (0)

/* Runs f in a child (so that namespaces or a crash stay there); its exit code is the errno, 0 on
 * success. */
static long in_child(int (*f)(void)) {
        int st;
        pid_t p = fork();
        if (p < 0)
                return -1;
        if (p == 0)
                _exit(f());
        if (waitpid(p, &st, 0) < 0)
                return -1;
        if (WIFSIGNALED(st)) {
                errno = 1000 + WTERMSIG(st);
                return -1;
        }
        errno = WEXITSTATUS(st);
        return errno ? -1 : 0;
}

static int noop(void) {
        return 0;
}

static int unshare_user(void) {
        return unshare(CLONE_NEWUSER) < 0 ? errno : 0;
}

/* What the issue showed: a user namespace, and from it chroot. */
static int unshare_then_chroot(void) {
        if (unshare(CLONE_NEWUSER) < 0)
                return errno;
        return chroot("/tmp") < 0 ? errno : 0;
}

/* reboot() with a bad magic number: EINVAL once the capability check passed, which it does in a
 * pid namespace owned by a user namespace the job created; EPERM otherwise. */
static int reboot_in_own_namespaces(void) {
        int st;
        pid_t p;

        if (unshare(CLONE_NEWUSER | CLONE_NEWPID) < 0)
                return syscall(SYS_reboot, 0, 0, 0, NULL) < 0 ? errno : 0;
        p = fork();
        if (p < 0)
                return errno;
        if (p == 0)
                _exit(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, 0, LINUX_REBOOT_CMD_CAD_OFF, NULL) < 0 ? errno : 0);
        waitpid(p, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}

static int clone_newuser(void) {
        long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
                _exit(0);
        if (r < 0)
                return errno;
        waitpid((pid_t) r, NULL, 0);
        return 0;
}

static int clone_newnet(void) {
        long r = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
                _exit(0);
        if (r < 0)
                return errno;
        waitpid((pid_t) r, NULL, 0);
        return 0;
}

static int unshare_x32(void) {
        return syscall(X32_SYSCALL_BIT | SYS_unshare, CLONE_NEWUSER) < 0 ? errno : 0;
}

static int unshare_i386(void) {
        long r;
        __asm__ volatile ("int $0x80" : "=a" (r) : "a" (I386_NR_UNSHARE), "b" (CLONE_NEWUSER) : "memory");
        return r < 0 ? (int) -r : 0;
}

static void *thread_main(void *arg) {
        return arg;
}

static long start_thread(void) {
        pthread_t t;
        int r = pthread_create(&t, NULL, thread_main, NULL);
        if (r != 0) {
                errno = r;
                return -1;
        }
        pthread_join(t, NULL);
        return 0;
}

static long seccomp_mode(void) {
        char line[256];
        FILE *f = fopen("/proc/self/status", "re");
        long mode = -1;

        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line, "Seccomp:", 8) == 0)
                        mode = atol(line + 8);
        if (f)
                fclose(f);
        return mode;
}

static void probe_class(const char *class) {
        struct timespec ts = { 0 };
        struct timeval tv = { .tv_sec = 0, .tv_usec = 2000000 };   /* invalid: EINVAL if reached */
        struct timex tx = { 0 };                                   /* modes 0: a harmless query */

        first = 1;
        printf("\"%s\": {", class);
        if (strcmp(class, "status") == 0) {
                printf("\"seccomp\": %ld", seccomp_mode());
        } else if (strcmp(class, "namespaces") == 0) {
                PROBE("unshare-user", in_child(unshare_user));
                PROBE("unshare-user-chroot", in_child(unshare_then_chroot));
                PROBE("unshare-net", unshare(CLONE_NEWNET));
                PROBE("clone-newuser", in_child(clone_newuser));
                PROBE("clone-newnet", in_child(clone_newnet));
                PROBE("clone3", syscall(SYS_clone3, NULL, 0));
                PROBE("setns", setns(-1, 0));
                PROBE("x32-unshare-user", in_child(unshare_x32));
                PROBE("i386-unshare-user", in_child(unshare_i386));
        } else if (strcmp(class, "normal") == 0) {
                PROBE("fork", in_child(noop));
                PROBE("thread", start_thread());
                PROBE("socket-unix", socket(AF_UNIX, SOCK_STREAM, 0));
        } else if (strcmp(class, "keyring") == 0) {
                const char *name = getenv("PROBE_KEY") ?: "gatewayd-probe";
                PROBE("add_key", syscall(SYS_add_key, "user", name, "x", 1, KEY_SPEC_USER_KEYRING));
                PROBE("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
                PROBE("request_key", syscall(SYS_request_key, "user", "gatewayd-probe-none", NULL, KEY_SPEC_USER_KEYRING));
        } else if (strcmp(class, "mount") == 0) {
                PROBE("mount", mount("none", "/nonexistent", "tmpfs", 0, NULL));
                PROBE("umount2", umount2("/", 0x7fffffff));
                PROBE("chroot", chroot("/nonexistent"));
                PROBE("open_tree", syscall(SYS_open_tree, AT_FDCWD, "/", 0));
                PROBE("mount_setattr", syscall(SYS_mount_setattr, -1, "", 0, NULL, 0));
                PROBE("move_mount", syscall(SYS_move_mount, -1, "", -1, "", 0));
                PROBE("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
                PROBE("fspick", syscall(SYS_fspick, AT_FDCWD, "/", 0));
                PROBE("pivot_root", syscall(SYS_pivot_root, "/nonexistent", "/nonexistent"));
        } else if (strcmp(class, "kernel") == 0) {
                PROBE("bpf", syscall(SYS_bpf, 0, NULL, 1 << 20));
                PROBE("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, ~0UL));
                PROBE("userfaultfd", syscall(SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */ | O_CLOEXEC));
                PROBE("io_uring_setup", syscall(SYS_io_uring_setup, 0, NULL));
                PROBE("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0));
                PROBE("io_uring_register", syscall(SYS_io_uring_register, -1, 0, NULL, 0));
                PROBE("socket-vsock", socket(AF_VSOCK, SOCK_STREAM, 0));
        } else if (strcmp(class, "clock") == 0) {
                PROBE("clock_settime", clock_settime(CLOCK_MONOTONIC, &ts));
                PROBE("settimeofday", syscall(SYS_settimeofday, &tv, NULL));   /* glibc checks tv itself */
                PROBE("adjtimex", adjtimex(&tx));
                PROBE("clock_adjtime", syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx));
        } else if (strcmp(class, "reboot") == 0) {
                PROBE("reboot", in_child(reboot_in_own_namespaces));
                PROBE("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, ~0UL));
                PROBE("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, NULL, ~0UL));
        } else if (strcmp(class, "modules") == 0) {
                PROBE("init_module", syscall(SYS_init_module, NULL, 0, ""));
                PROBE("finit_module", syscall(SYS_finit_module, -1, "", 0));
                PROBE("delete_module", syscall(SYS_delete_module, "gatewayd-none", 0));
                /* gone from the kernel (ENOSYS), refused by the filter all the same */
                PROBE("create_module", syscall(SYS_create_module, "x", 0));
                PROBE("query_module", syscall(SYS_query_module, "x", 0, NULL, 0, NULL));
                PROBE("get_kernel_syms", syscall(SYS_get_kernel_syms, NULL));
        } else if (strcmp(class, "ptrace") == 0) {
                PROBE("kcmp", syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, 0, 0));
                PROBE("pidfd_getfd", syscall(SYS_pidfd_getfd, -1, 0, 0));
                PROBE("process_madvise", syscall(SYS_process_madvise, -1, NULL, 0, 0, 0));
                PROBE("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
        } else
                printf("\"unknown-class\": \"%s\"", class);
        printf("}");
}

static int find_key(const char *name) {
        long id = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", name, 0);
        if (id < 0)
                return 1;
        syscall(SYS_keyctl, KEYCTL_UNLINK, id, KEY_SPEC_USER_KEYRING);
        return 0;
}

int main(int argc, char *argv[]) {
        if (argc == 3 && strcmp(argv[1], "find-key") == 0)
                return find_key(argv[2]);
        if (argc > 4 && strcmp(argv[1], "session") == 0 && strcmp(argv[3], "--") == 0) {
                if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, argv[2]) < 0) {
                        perror("keyctl");
                        return 125;
                }
                execv(argv[4], argv + 4);
                perror("execv");
                return 127;
        }
        printf("PlanQK:Job:Result: {");
        for (int i = 1; i < argc; i++) {
                if (i > 1)
                        printf(", ");
                probe_class(argv[i]);
        }
        printf("}\n");
        return 0;
}
