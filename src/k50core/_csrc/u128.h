/* 128-bit unsigned integers for IPv6 addresses.
 * Declared for Cython in u128.pxd. */
#ifndef K50_U128_H
#define K50_U128_H

#include <Python.h>
#include <stdint.h>
#include "tricks.h"

typedef unsigned __int128 k50_u128;

#endif  /* K50_U128_H */
