/* Forks until fork() fails (or LIMIT children exist), reports how many it got, then kills them:
 * "forkbomb [LIMIT]". The children wait in pause(). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
        long limit = argc > 1 ? atol(argv[1]) : 100000;
        static pid_t kids[100000];
        long n = 0;
        int err = 0;

        while (n < limit) {
                pid_t p = fork();
                if (p < 0) {
                        err = errno;
                        break;
                }
                if (p == 0) {
                        pause();
                        _exit(0);
                }
                kids[n++] = p;
        }
        for (long i = 0; i < n; i++)
                kill(kids[i], SIGKILL);
        for (long i = 0; i < n; i++)
                waitpid(kids[i], NULL, 0);
        printf("PlanQK:Job:Result: {\"forked\": %ld, \"error\": \"%s\"}\n", n, err ? strerror(err) : "");
        return 0;
}
