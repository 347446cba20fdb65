"""A time limit per model: anything slow in loading, face detection, identity or upload becomes
a failure naming the stage, never a hang.

`Deadline(seconds)` is a context manager; set `deadline.stage` as the work moves on. When the
time is up, `ModelTimeout(stage, seconds)` is raised in the thread doing the work: by SIGALRM
(`setitimer`) in a process's main thread, which also interrupts a blocking system call; by an
asynchronous exception in any other thread (a Dask worker's). Both land between two Python
bytecodes, so a single C call that never returns (a driver stuck inside one GL call) is not
interrupted; the pipeline's bounded searches and size limits keep those short.
"""

from __future__ import annotations

import ctypes
import math
import signal
import threading
from types import FrameType, TracebackType

DEFAULT_MODEL_TIMEOUT = 120.0  # seconds; a real model loads and is checked in well under 1 s
MAX_MODEL_TIMEOUT = 1e6  # seconds (11.6 days); the OS timer takes no more than 2^31 s


class ModelTimeout(Exception):
    """The model's work took longer than its time limit; `stage` says where it was."""

    def __init__(self, stage: str = "", seconds: float = 0.0) -> None:
        super().__init__(f"{stage}: took longer than {seconds:g} s (the per-model time limit)")
        self.stage, self.seconds = stage, seconds


class _Expired(BaseException):
    """Raised in the timed thread when the time is up; turned into ModelTimeout by the
    Deadline. A BaseException, so an `except Exception` inside the timed code cannot swallow
    it (and the time limit with it)."""


def check_timeout(seconds: float | None) -> float | None:
    """A valid time limit: a positive finite number of seconds, or None/0 for none."""
    if seconds is None or seconds == 0:
        return None
    if not (
        isinstance(seconds, int | float)
        and math.isfinite(seconds)
        and 0 < seconds <= MAX_MODEL_TIMEOUT
    ):
        raise ValueError(
            f"the model time limit must be a positive number of seconds up to "
            f"{MAX_MODEL_TIMEOUT:g} (0: none): {seconds}"
        )
    return float(seconds)


class Deadline:
    """`with Deadline(seconds) as d: d.stage = "load"; ...` (None: no limit)."""

    def __init__(self, seconds: float | None, stage: str = "") -> None:
        self.seconds = check_timeout(seconds)
        self.stage = stage
        self._lock = threading.Lock()
        self._armed = False
        self._fired = False
        self._timer: threading.Timer | None = None
        self._previous: object = None
        self._thread = threading.get_ident()
        self._main = threading.current_thread() is threading.main_thread()

    def __enter__(self) -> Deadline:
        if self.seconds is None:
            return self
        self._armed = True
        if self._main:
            self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        else:
            self._timer = threading.Timer(self.seconds, self._on_timer)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self._armed:
            self._armed, self._fired = False, True
            raise _Expired

    def _on_timer(self) -> None:
        with self._lock:
            if not self._armed:
                return
            self._armed, self._fired = False, True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._thread), ctypes.py_object(_Expired)
            )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if self.seconds is None:
            return False
        if self._main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)  # type: ignore[arg-type]
            self._armed = False
        else:
            with self._lock:
                self._armed = False
                if self._fired and kind is None:  # fired as the work ended: drop it if pending
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread), None)
            if self._timer is not None:
                self._timer.cancel()
        if kind is not None and issubclass(kind, _Expired):
            raise ModelTimeout(self.stage, self.seconds) from None
        return False
