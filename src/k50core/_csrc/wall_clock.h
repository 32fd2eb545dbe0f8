/* The wall clock in milliseconds without a call into Python.
 * Declared for Cython in wall_clock.pxd. */
#ifndef K50_WALL_CLOCK_H
#define K50_WALL_CLOCK_H

#include <Python.h>
#include <stdint.h>
#include "tricks.h"

#include <time.h>
/* The wall clock in milliseconds, as time.time() gives it, without a call into Python. */
static inline double k50_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

#endif  /* K50_WALL_CLOCK_H */
