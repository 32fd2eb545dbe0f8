"""Builds the compiled core (src/k50core/_engine.pyx) with Cython.

Set K50CORE_NO_EXTENSIONS=1 to skip the build: the pure-Python reference
(k50core._engine_py) then serves the same API.
"""
import os

from setuptools import Extension, setup

ext_modules = []
if not os.environ.get("K50CORE_NO_EXTENSIONS"):
    from Cython.Build import cythonize

    ext_modules = cythonize(
        [
            Extension(
                "k50core._engine",
                ["src/k50core/_engine.pyx"],
                extra_compile_args=["-O3"],
            )
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

setup(ext_modules=ext_modules)
