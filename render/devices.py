"""The EGL devices of this machine (EGL_EXT_device_enumeration), and which one renders.

A headless context is made on an EGL *device*, not a display: `eglQueryDevicesEXT` lists the
devices every installed EGL vendor library offers (through glvnd: NVIDIA's, Mesa's), and
moderngl's EGL backend (glcontext) creates its context on `device_index` of that list via
`EGL_PLATFORM_DEVICE_EXT`. Without an index it takes device 0, so a multi-GPU node renders
everything on one GPU; `pipeline --gpus 0,1,…` binds each worker process to one device instead
(`THAGEN_EGL_DEVICE` in the worker's environment, read by `render.context`).

NVIDIA devices say which CUDA device they are (EGL_NV_device_cuda), so `--gpus` takes the CUDA
numbers nvidia-smi and torch use, and `gpu_device_indices` turns them into EGL indices. Mesa's
software rasteriser (llvmpipe) is a device too, marked EGL_MESA_device_software. Only ctypes is
used here; nothing is created but (briefly) a display per device to read its vendor.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass
from functools import cache

from render.errors import RenderError

DEVICE_ENV = "THAGEN_EGL_DEVICE"  # the EGL device index a worker renders on
EGL_EXTENSIONS = 0x3055
EGL_VENDOR = 0x3053
EGL_DRM_DEVICE_FILE_EXT = 0x3233
EGL_CUDA_DEVICE_NV = 0x323A
EGL_PLATFORM_DEVICE_EXT = 0x313F
MAX_DEVICES = 64


@dataclass(frozen=True)
class EglDevice:
    """One EGL device: its index in `eglQueryDevicesEXT`'s list and what it says of itself."""

    index: int
    extensions: tuple[str, ...] = ()
    vendor: str = ""
    drm_file: str = ""
    cuda: int | None = None  # the CUDA device number of an NVIDIA device

    @property
    def software(self) -> bool:
        return "EGL_MESA_device_software" in self.extensions

    @property
    def nvidia(self) -> bool:
        return self.cuda is not None or "nvidia" in self.vendor.lower()

    def describe(self) -> str:
        kind = "software (llvmpipe)" if self.software else (self.drm_file or "hardware")
        cuda = f", CUDA {self.cuda}" if self.cuda is not None else ""
        return f"#{self.index} {self.vendor or 'unknown vendor'} {kind}{cuda}"


def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("EGL") or "libEGL.so.1"
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


def _function(egl: ctypes.CDLL, name: str, restype, argtypes) -> ctypes._CFuncPtr | None:
    """An extension function through eglGetProcAddress (None when the driver lacks it)."""
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    address = egl.eglGetProcAddress(name.encode())
    if not address:
        return None
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


@cache
def egl_devices() -> tuple[EglDevice, ...]:
    """The EGL devices in `eglQueryDevicesEXT` order (empty without libEGL or enumeration)."""
    egl = _library()
    if egl is None:
        return ()
    p = ctypes.c_void_p
    egl.eglQueryString.restype = ctypes.c_char_p
    egl.eglQueryString.argtypes = [p, ctypes.c_int32]
    client = (egl.eglQueryString(None, EGL_EXTENSIONS) or b"").decode(errors="replace").split()
    query = _function(egl, "eglQueryDevicesEXT", ctypes.c_uint32, [ctypes.c_int32, p, p])
    if query is None or not {"EGL_EXT_device_enumeration", "EGL_EXT_device_base"} & set(client):
        return ()
    handles = (ctypes.c_void_p * MAX_DEVICES)()
    count = ctypes.c_int32(0)
    if not query(MAX_DEVICES, handles, ctypes.byref(count)):
        return ()
    string = _function(egl, "eglQueryDeviceStringEXT", ctypes.c_char_p, [p, ctypes.c_int32])
    attrib = _function(egl, "eglQueryDeviceAttribEXT", ctypes.c_uint32, [p, ctypes.c_int32, p])
    display = _function(egl, "eglGetPlatformDisplayEXT", p, [ctypes.c_int32, p, p])
    devices = []
    for i in range(count.value):
        handle = ctypes.c_void_p(handles[i])
        text = (string(handle, EGL_EXTENSIONS) or b"").decode(errors="replace") if string else ""
        extensions = tuple(text.split())
        drm = ""
        if string and "EGL_EXT_device_drm" in extensions:
            drm = (string(handle, EGL_DRM_DEVICE_FILE_EXT) or b"").decode(errors="replace")
        cuda = None
        if attrib and "EGL_NV_device_cuda" in extensions:
            value = ctypes.c_ssize_t(-1)
            if attrib(handle, EGL_CUDA_DEVICE_NV, ctypes.byref(value)):
                cuda = int(value.value)
        vendor = _vendor(egl, display, handle) if display else ""
        devices.append(EglDevice(i, extensions, vendor, drm, cuda))
    return tuple(devices)


def _vendor(egl: ctypes.CDLL, display, handle: ctypes.c_void_p) -> str:
    """EGL_VENDOR of a display on `handle` (initialised and terminated again)."""
    egl.eglInitialize.restype = ctypes.c_uint32
    egl.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    egl.eglTerminate.argtypes = [ctypes.c_void_p]
    dpy = display(EGL_PLATFORM_DEVICE_EXT, handle, None)
    if not dpy or not egl.eglInitialize(dpy, None, None):
        return ""
    try:
        return (egl.eglQueryString(dpy, EGL_VENDOR) or b"").decode(errors="replace")
    finally:
        egl.eglTerminate(dpy)


def describe_devices(devices: tuple[EglDevice, ...] | None = None) -> str:
    devices = egl_devices() if devices is None else devices
    return "; ".join(d.describe() for d in devices) or "none (no libEGL, or no device enumeration)"


def gpu_device_indices(gpus: list[int], devices: tuple[EglDevice, ...] | None = None) -> list[int]:
    """EGL device indices of the NVIDIA GPUs with CUDA numbers `gpus` (as nvidia-smi counts
    them); a RenderError naming what this machine has when one is missing."""
    devices = egl_devices() if devices is None else devices
    by_cuda = {d.cuda: d.index for d in devices if d.cuda is not None}
    nvidia = [d.index for d in devices if d.nvidia]
    out = []
    for gpu in gpus:
        if gpu in by_cuda:
            out.append(by_cuda[gpu])
        elif not by_cuda and 0 <= gpu < len(nvidia):  # NVIDIA without the CUDA query
            out.append(nvidia[gpu])
        else:
            raise RenderError(
                f"--gpus {','.join(map(str, gpus))}: no NVIDIA GPU {gpu} among the EGL devices "
                f"({describe_devices(devices)}); GPU rendering needs NVIDIA's EGL driver "
                "(libEGL_nvidia, with glvnd)"
            )
    return out


def parse_gpus(text: str) -> list[int]:
    """'0,1,3' → [0, 1, 3] (ValueError naming the option for anything else)."""
    try:
        gpus = [int(part) for part in text.split(",") if part.strip() != ""]
    except ValueError:
        raise ValueError(f"--gpus takes GPU numbers like 0,1,2, not {text!r}") from None
    if not gpus or min(gpus) < 0 or len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus takes distinct GPU numbers like 0,1,2, not {text!r}")
    return gpus


def device_from_environment() -> int | None:
    """The EGL device index `THAGEN_EGL_DEVICE` names (None when unset)."""
    value = os.environ.get(DEVICE_ENV, "").strip()
    if not value:
        return None
    try:
        index = int(value)
    except ValueError:
        raise RenderError(f"{DEVICE_ENV}={value!r}: not an EGL device index") from None
    if index < 0:
        raise RenderError(f"{DEVICE_ENV}={value!r}: not an EGL device index")
    return index
