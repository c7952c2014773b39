/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The rules of the job's seccomp filter, compiled with libseccomp by gen-job-seccomp at build
 * time. libseccomp rather than a hand-written BPF program: it handles what is easy to get wrong
 * by hand, the per-ABI system call numbers (i386 and x32 have their own, x32's share the x86-64
 * audit arch token), multiplexed calls (i386 socketcall), 64-bit argument comparisons on 32-bit
 * ABIs, and the architecture checks before each ABI's rules. */
#include <linux/sched.h>
#include <seccomp.h>
#include <sys/socket.h>

#include "job-seccomp-rules.h"
#include "macro.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* What the default profiles of Docker and Podman refuse a container that holds none of the
 * capabilities named; a job holds none at all. */
static const char * const denied[] = {
        /* new namespaces and joining others' (clone is filtered by its flags below) */
        "unshare", "setns",
        /* the kernel keyrings: they are per user, not per sandbox, so a job could read and
         * change the submitting user's keys on the host (the profiles refuse them whatever the
         * capabilities) */
        "add_key", "request_key", "keyctl",
        /* mounts, old and new API, and changing the root (CAP_SYS_ADMIN, CAP_SYS_CHROOT) */
        "mount", "umount", "umount2", "pivot_root", "chroot",
        "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
        /* loading code into the kernel and hooking it (CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_BPF,
         * CAP_PERFMON, CAP_SYS_ADMIN); userfaultfd and io_uring, common tools of kernel
         * exploits, are refused by the profiles too (io_uring by their recent versions) */
        "init_module", "finit_module", "delete_module", "create_module", "query_module",
        "get_kernel_syms", "kexec_load", "kexec_file_load",
        "bpf", "perf_event_open", "userfaultfd",
        "io_uring_setup", "io_uring_enter", "io_uring_register",
        "lookup_dcookie", "fanotify_init",
        /* the clocks (CAP_SYS_TIME); adjtimex and clock_adjtime also in their read-only use,
         * whose argument sits behind a pointer the filter cannot read */
        "clock_settime", "clock_settime64", "settimeofday", "stime",
        "adjtimex", "clock_adjtime", "clock_adjtime64",
        /* the machine (CAP_SYS_BOOT, CAP_SYS_ADMIN, CAP_SYS_PACCT, CAP_SYSLOG, CAP_SYS_RAWIO,
         * CAP_SYS_TTY_CONFIG) */
        "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl", "quotactl_fd",
        "sethostname", "setdomainname", "iopl", "ioperm", "vhangup",
        "nfsservctl", "_sysctl", "uselib", "sysfs", "ustat", "vm86", "vm86old",
        /* other processes' memory placement and file descriptors (CAP_SYS_NICE,
         * CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH). ptrace and process_vm_{read,write}v stay
         * allowed, as in the profiles: since Linux 4.8 a tracer cannot get a tracee past its
         * filter, and the job can reach only its own processes (its init is not dumpable). */
        "kcmp", "pidfd_getfd", "process_madvise", "open_by_handle_at",
        "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node", "move_pages",
};

/* The namespace flags of clone(); the profiles allow clone only without them. */
static const uint64_t clone_new_flags[] = {
        CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
        CLONE_NEWNET,
};

/* The other ABIs a process of the native one can enter the kernel through (the profiles' map). */
static int add_arches(scmp_filter_ctx ctx, uint32_t arch) {
        static const struct {
                uint32_t native, extra[2];
        } arches[] = {
                { SCMP_ARCH_X86_64,  { SCMP_ARCH_X86, SCMP_ARCH_X32 } },
                { SCMP_ARCH_AARCH64, { SCMP_ARCH_ARM, 0 } },
                { SCMP_ARCH_S390X,   { SCMP_ARCH_S390, 0 } },
        };
        int r;

        /* the filter is for the machine the worker will run on, not for the one building it */
        if (arch != seccomp_arch_native()) {
                r = seccomp_arch_add(ctx, arch);
                if (r < 0)
                        return r;
                r = seccomp_arch_remove(ctx, seccomp_arch_native());
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(arches); i++) {
                if (arches[i].native != arch)
                        continue;
                for (size_t j = 0; j < ELEMENTSOF(arches[i].extra) && arches[i].extra[j]; j++) {
                        int r = seccomp_arch_add(ctx, arches[i].extra[j]);
                        if (r < 0 && r != -EEXIST)
                                return r;
                }
        }
        return 0;
}

static int add_rules(scmp_filter_ctx ctx, uint32_t arch) {
        /* s390's clone takes the new stack first and the flags second */
        const unsigned clone_flags_arg = arch == SCMP_ARCH_S390X || arch == SCMP_ARCH_S390 ? 1 : 0;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(denied); i++) {
                int nr = seccomp_syscall_resolve_name(denied[i]);
                if (nr == __NR_SCMP_ERROR)
                        continue;    /* newer than this libseccomp: no ABI we filter has it */
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
                if (r < 0)
                        return r;
        }

        for (size_t i = 0; i < ELEMENTSOF(clone_new_flags); i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                     (struct scmp_arg_cmp) { clone_flags_arg, SCMP_CMP_MASKED_EQ,
                                                             clone_new_flags[i], clone_new_flags[i] });
                if (r < 0)
                        return r;
        }

        /* clone3 passes its flags in a structure the filter cannot read. ENOSYS, not EPERM: it
         * makes glibc (2.34+) fall back to clone, whose flags are checked above. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0)
                return r;

        /* vsock is not confined by network namespaces: a job without network could reach the
         * host's (or hypervisor's) vsock services. On i386, socket() can also come through
         * socketcall(), whose arguments sit behind a pointer: libseccomp then refuses
         * socketcall(SYS_SOCKET) as a whole, so 32-bit x86 programs get sockets only through the
         * direct socket() call (Linux >= 4.3). */
        return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                                SCMP_A0(SCMP_CMP_EQ, AF_VSOCK));
}

int job_seccomp_export(uint32_t arch, int fd) {
        scmp_filter_ctx ctx;
        int r;

        ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx)
                return -ENOMEM;
        /* an ABI not in the filter has no rules: its calls must not pass */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        /* a binary tree instead of a chain of comparisons per call (libseccomp >= 2.5) */
        if (r >= 0)
                r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        if (r >= 0)
                r = add_arches(ctx, arch);
        if (r >= 0)
                r = add_rules(ctx, arch);
        if (r >= 0)
                r = seccomp_export_bpf(ctx, fd);
        seccomp_release(ctx);
        return r;
}
