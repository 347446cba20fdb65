"""Run a command with the CPU kernels of torch, oneDNN, MKL, numpy and llvmpipe held to a plainer
instruction set than the machine's own, so a float tolerance that only holds for this CPU's
kernels fails here rather than on someone else's machine.

    .venv/bin/python scripts/reduced_isa.py -- .venv/bin/python -m pytest -m numeric
    .venv/bin/python scripts/reduced_isa.py --print      # the variables, as shell assignments

- ``ATEN_CPU_CAPABILITY=default``: torch's own kernels without SIMD (on an x86-64 CPU they
  otherwise take AVX2 or AVX-512 paths; on ARM, SVE).
- ``ONEDNN_MAX_CPU_ISA=SSE41``: oneDNN's JIT (convolutions, bf16) at its oldest x86 ISA. Capping
  at AVX2 would hold back only AVX-512/AMX machines; this project's machines top out at AVX2,
  where only SSE41 makes the guard's kernels differ from the native run's.
- ``MKL_ENABLE_INSTRUCTIONS=SSE4_2``: MKL's GEMMs (linear layers) likewise.
- ``NPY_DISABLE_CPU_FEATURES``: every feature numpy dispatches at run time (``__cpu_dispatch__``,
  e.g. ``X86_V3 X86_V4 AVX512_ICL AVX512_SPR``, or ``ASIMDHP … SVE`` on ARM), read from the
  installed numpy rather than from this CPU: numpy refuses to disable its baseline (``X86_V2``)
  and silently ignores a dispatched feature the CPU lacks, so the list holds on every machine.
- ``LP_NATIVE_VECTOR_WIDTH=128``: llvmpipe's shaders and rasteriser at SSE/NEON width instead of
  the 256 bits it uses with AVX.

``THAGEN_REDUCED_ISA=1`` tells the tests (tests/conftest.py checks that the settings took).
Variables already set in the environment are kept.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys


def numpy_dispatched_features() -> list[str]:
    """The CPU features numpy picks at run time (empty when numpy is missing or has none)."""
    try:
        from numpy._core import _multiarray_umath as umath  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        try:
            from numpy.core import _multiarray_umath as umath
        except ImportError:
            return []
    return list(getattr(umath, "__cpu_dispatch__", []))


def reduced_isa_env() -> dict[str, str]:
    """The variables that hold the kernels back (see the module docstring)."""
    env = {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "LP_NATIVE_VECTOR_WIDTH": "128",
        "THAGEN_REDUCED_ISA": "1",
    }
    features = numpy_dispatched_features()
    if features:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(features)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the variables and exit")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    args = parser.parse_args(argv)
    env = reduced_isa_env()
    if args.print:
        print(" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()))
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (… -- COMMAND [ARGS...])")
    merged = {**env, **{k: os.environ[k] for k in env if k in os.environ}}
    print("reduced ISA: " + " ".join(f"{k}={v}" for k, v in merged.items()), flush=True)
    os.execvpe(command[0], command, {**os.environ, **merged})
    return 127  # pragma: no cover - execvpe does not return


if __name__ == "__main__":
    sys.exit(main())
