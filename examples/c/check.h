/* Tiny assertion helpers shared by the example programs. */
#ifndef RUMP_EXAMPLE_CHECK_H
#define RUMP_EXAMPLE_CHECK_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A call that must succeed (return >= 0). */
#define OK(expr)                                                              \
    ({                                                                        \
        long long _r = (long long)(expr);                                     \
        if (_r < 0) {                                                         \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__,     \
                    #expr, strerror(errno));                                  \
            exit(1);                                                          \
        }                                                                     \
        _r;                                                                   \
    })

/* A call that must fail with -1 and errno `e`. */
#define FAILS(expr, e)                                                        \
    do {                                                                      \
        errno = 0;                                                            \
        long long _r = (long long)(expr);                                     \
        if (_r != -1 || errno != (e)) {                                       \
            fprintf(stderr, "%s:%d: %s returned %lld errno %d (%s), want -1 " \
                    "errno %d (%s)\n", __FILE__, __LINE__, #expr, _r, errno,  \
                    strerror(errno), (e), strerror(e));                       \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                   \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

#endif
