/*
 * A kernel in this process served to remote clients:
 *   server URL
 * boots with rump_init, serves with rump_init_server, prints "ready" and
 * serves until its standard input closes.
 */
#include <unistd.h>

#include <rump/rump.h>

#include "check.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: server URL\n");
        return 2;
    }
    CHECK(rump_init() == 0);
    int e = rump_init_server(argv[1]);
    if (e != 0) {
        fprintf(stderr, "rump_init_server: %s\n", strerror(e));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0)
        ;
    return 0;
}
