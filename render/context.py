"""The OpenGL context: one headless EGL context per Renderer, in the process that renders.

On CPU machines this is Mesa's llvmpipe, which rasterises with `LP_NUM_THREADS` threads (default:
one per core; 0 rasterises in the calling thread, which costs the least CPU per image: measured
12.3 ms against 13.6 ms with 1 thread and 15.1 ms with 2 for the bench model). Mesa reads that
variable when the context's screen is created, so set it before creating the Renderer
(`RenderSettings.threads` does that); a value already in the environment is left alone otherwise.
The pipeline sets it per worker so processes do not fight over cores. On
NVIDIA's EGL the variable is ignored and the same code runs unchanged (core profile 3.3, no
vendor extensions).

The context is made on an EGL device (`render.devices`): `device` (an index into
`eglQueryDevicesEXT`'s list), else `THAGEN_EGL_DEVICE` from the environment (the pipeline sets
it per worker for `--gpus`), else glcontext's default, device 0.
"""

from __future__ import annotations

import os

import moderngl

from render.devices import describe_devices, device_from_environment
from render.errors import RenderError

GL_VERSION = 330


def create_context(threads: int | None = None, device: int | None = None) -> moderngl.Context:
    """A standalone EGL context; `threads` sets `LP_NUM_THREADS` for llvmpipe first (0: no
    raster threads); `device` picks the EGL device (see the module docstring)."""
    if threads is not None:
        if threads < 0:
            raise ValueError(f"threads must be >= 0, not {threads}")
        os.environ["LP_NUM_THREADS"] = str(int(threads))
    if device is None:
        device = device_from_environment()
    options = {} if device is None else {"device_index": int(device)}
    try:
        ctx = moderngl.create_standalone_context(backend="egl", require=GL_VERSION, **options)
    except Exception as error:  # moderngl raises a bare Exception for EGL failures
        where = "" if device is None else f" on EGL device {device} ({describe_devices()})"
        raise RenderError(
            f"cannot create a headless OpenGL {GL_VERSION // 100}.{GL_VERSION % 100 // 10} "
            f"context through EGL{where} ({error}); install Mesa's libEGL (llvmpipe) or a GPU "
            "driver"
        ) from error
    return ctx


def renderer_name(ctx: moderngl.Context) -> str:
    """E.g. 'llvmpipe (LLVM 15.0.6, 256 bits)' or 'NVIDIA GeForce ...'."""
    return str(ctx.info.get("GL_RENDERER", "unknown"))
