/*
 * Sandbox "pause" process for the debugcap testbed.
 *
 * It holds the pod's namespaces open and does nothing else. When it runs as
 * PID 1 of a pod with shareProcessNamespace it inherits orphans, so it reaps
 * them to keep zombies out of the process listings debugcap captures.
 *
 * Build: gcc -static -Os -o pause pause.c
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
    (void)sig;
    /* _exit is async-signal-safe; exit() would run atexit handlers. */
    _exit(0);
}

static void on_child(int sig) {
    (void)sig;
    int saved = errno; /* keep errno intact for whatever was interrupted */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int install(int sig, void (*fn)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    /* SA_NOCLDSTOP: a stopped child is not a zombie, no need to wake up. */
    sa.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
    return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "-v") == 0) {
        /* Lets a build check that the static binary runs at all. */
        static const char msg[] = "debugcap pause\n";
        return write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0;
    }
    if (install(SIGTERM, on_stop) || install(SIGINT, on_stop) || install(SIGCHLD, on_child)) {
        static const char msg[] = "pause: sigaction failed\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        return 1;
    }
    /* Reap anything that died before the SIGCHLD handler was installed. */
    on_child(0);
    for (;;) {
        pause();
    }
}
