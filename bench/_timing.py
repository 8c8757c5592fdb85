"""Timing helper shared by the benchmarks (run as scripts, so this folder is on sys.path)."""

import time


def best_time(fn, repeats: int) -> float:
    """Fastest of ``repeats`` runs of ``fn()`` in seconds, after one warm-up run.

    The minimum is the figure least disturbed by other load on a shared machine.
    """
    fn()  # warm caches and pages
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def current_rss_kb() -> int:
    """This process's resident set size now, in KiB (Linux ``/proc/self/status``)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
