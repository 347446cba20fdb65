"""Worker processes that die with the command that started them.

A worker (a pipeline render worker, a training rank started by `thagen train --nproc`) must not
outlive its command: after a `kill -9` of the command, a worker left running would go on writing
shards or checkpoints beside the next run. `die_with_parent(parent)` asks the kernel to SIGKILL
this process when its parent goes (Linux's PR_SET_PDEATHSIG) and, where that is not enough (the
parent thread that started it may exit first, or the platform has no prctl), watches the parent's
pid from a daemon thread and exits when it changes.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.2


def die_with_parent(parent: int, ignore_sigint: bool = True) -> None:
    """Exit as soon as the process `parent` is gone (at once if it already is); with
    `ignore_sigint`, leave Ctrl-C to the parent, which stops its workers itself."""
    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="thagen-parent-watch", daemon=True).start()
