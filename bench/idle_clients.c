/*
 * idle_clients: open N libpq connections, run "SELECT 1" on each, then hold them idle.
 *
 * Used by bench/run.sh for the "memory per idle client" row. Compiled at run time:
 *   cc -O2 -o idle_clients idle_clients.c $(pkg-config --cflags --libs libpq)
 *
 * Usage: idle_clients N CONNINFO
 * Prints "READY <n>" on stdout once all N connections are open and have answered a query,
 * then sleeps until SIGTERM/SIGINT,
 * closes every connection cleanly (Terminate message) and exits 0.
 * On any connection failure it prints "FAIL <i> <error>" on stderr and exits 1.
 */
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s N CONNINFO\n", argv[0]);
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    if (n <= 0) {
        fprintf(stderr, "idle_clients: bad N '%s'\n", argv[1]);
        return 2;
    }
    PGconn **conns = calloc((size_t)n, sizeof *conns);
    if (!conns) return 2;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int rc = 0;
    long opened = 0;
    for (long i = 0; i < n && !stop; i++) {
        PGconn *c = PQconnectdb(argv[2]);
        conns[i] = c;
        opened = i + 1;
        if (PQstatus(c) != CONNECTION_OK) {
            fprintf(stderr, "FAIL %ld connect: %s\n", i, PQerrorMessage(c));
            rc = 1;
            break;
        }
        PGresult *r = PQexec(c, "SELECT 1");
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "FAIL %ld query: %s\n", i, PQerrorMessage(c));
            PQclear(r);
            rc = 1;
            break;
        }
        PQclear(r);
    }
    if (rc == 0 && !stop) {
        printf("READY %ld\n", opened);
        fflush(stdout);
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigprocmask(SIG_BLOCK, &block, &old);
        while (!stop) sigsuspend(&old); /* no lost-wakeup race, unlike pause() */
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    for (long i = 0; i < opened; i++)
        if (conns[i]) PQfinish(conns[i]);
    free(conns);
    return rc;
}
