"""Running one function from many threads at once, switching often, as a busy machine does:
what a race raises is collected, for the test to assert there is none."""
from __future__ import annotations

import sys
import threading
from typing import Callable, Iterable


def all_at_once(work: Callable, args: Iterable, times: int = 100) -> list:
    """``work(arg)`` ``times`` times in one thread per ``arg``, all at once; every exception
    raised, as ``repr``."""
    errors: list = []

    def run(arg):
        try:
            for _ in range(times):
                work(arg)
        except Exception as e:  # noqa: BLE001 - what a race raises is what the caller looks for
            errors.append(repr(e))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often, as on a busy machine
    try:
        threads = [threading.Thread(target=run, args=(arg,)) for arg in args]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    return errors
