/* What Python's multiprocessing (Pool, Lock, Queue, shared_memory) needs from /dev/shm: a named
 * POSIX semaphore (sem_open) and a POSIX shared memory object (shm_open) shared with a child
 * process. Prints one result line:
 *
 *   PlanQK:Job:Result: {"sem_open": "OK" | errno name, "shm_open": ..., "shared": N}
 *
 * "shared" is what the parent reads from the mapping after the child wrote 42 into it; both
 * objects are unlinked again. Exits 0 either way. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *result(int ok) {
        return ok ? "OK" : strerrorname_np(errno);
}

int main(void) {
        const char *sem_status, *shm_status;
        int shared = -1, fd;
        sem_t *sem;

        sem = sem_open("/gatewayd-test-sem", O_CREAT | O_EXCL, 0600, 0);
        sem_status = result(sem != SEM_FAILED);

        fd = shm_open("/gatewayd-test-shm", O_CREAT | O_EXCL | O_RDWR, 0600);
        shm_status = result(fd >= 0);
        if (fd >= 0 && ftruncate(fd, 1 << 20) < 0)
                shm_status = result(0);
        if (fd >= 0 && sem != SEM_FAILED) {
                int *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                pid_t pid;

                if (p == MAP_FAILED)
                        shm_status = result(0);
                else if ((pid = fork()) == 0) {
                        p[0] = 42;
                        sem_post(sem);  /* the child tells the parent through the semaphore */
                        _exit(0);
                } else if (pid > 0) {
                        sem_wait(sem);
                        shared = p[0];
                        waitpid(pid, NULL, 0);
                }
        }
        if (sem != SEM_FAILED)
                sem_unlink("/gatewayd-test-sem");
        if (fd >= 0)
                shm_unlink("/gatewayd-test-shm");

        printf("PlanQK:Job:Result: {\"sem_open\": \"%s\", \"shm_open\": \"%s\", \"shared\": %d}\n",
               sem_status, shm_status, shared);
        return 0;
}
