# Cython declarations of the core's C headers, one .pxd beside each .h (cimport k50core._csrc.x).
