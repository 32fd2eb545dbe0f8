"""Builds the compiled core (src/k50core/_engine.pyx and the modules it gathers) with Cython.

Set K50CORE_NO_EXTENSIONS=1 to skip the build: the pure-Python reference
(k50core._engine_py) then serves the same API. K50CORE_NO_CPYTHON_TRICKS=1 builds the core
without its uses of CPython internals (src/k50core/_csrc/tricks.h).
"""
import os

from setuptools import Extension, setup

ext_modules = []
if not os.environ.get("K50CORE_NO_EXTENSIONS"):
    from Cython.Build import cythonize

    macros = [("K50_NO_CPYTHON_TRICKS", "1")] if os.environ.get("K50CORE_NO_CPYTHON_TRICKS") == "1" else []

    # the C headers and their .pxd declarations: a change to any rebuilds every module
    csrc = [os.path.join("src/k50core/_csrc", name) for name in os.listdir("src/k50core/_csrc")]
    # the core's modules: _engine gathers the others (see its docstring)
    ext_modules = cythonize(
        [
            Extension(f"k50core.{name}", [f"src/k50core/{name}.pyx"], extra_compile_args=["-O3"],
                      define_macros=macros, depends=csrc)
            for name in ("_engine", "_match", "_geoip", "_device", "_pool", "_redis_local", "_enrich")
        ],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
    )

# Each variant builds in a folder of its own: setuptools reuses a built module it finds newer than its
# sources, and the switch changes no source, so one folder would hand a rebuild the other variant.
variant = "build/no-cpython-tricks" if os.environ.get("K50CORE_NO_CPYTHON_TRICKS") == "1" else "build"
setup(ext_modules=ext_modules, options={"build": {"build_base": variant}})
