"""``threads: 0`` (auto): use the cores that other processes leave free, re-checked while running.

Why: torch's OpenMP threads spin while they wait for each other. When another process takes one of
the cores, one of our threads is descheduled at every barrier and the others spin until it comes
back: measured on 2 cores (BENCHMARKS.md, "contention"), the k = 1000 evaluation fell to 0.27-0.32
of its idle speed beside one busy process at the same priority (its fair share is 0.5-0.67), while
one thread kept 1.0 of its one-thread speed. (``nice`` does not help across terminal sessions:
Linux's autogroup scheduling shares the CPU between sessions first.)

The governor reads the machine's busy time (``/proc/stat``) and this process's CPU time every
``interval`` seconds, estimates how many cores the *other* processes keep busy, and sets
``torch.set_num_threads`` to the cores left (at least 1, at most the run's maximum). A change needs
two checks in a row. Results do not depend on the thread count on the paths measured (the
native and torch MLP paths give bitwise-equal losses, gradients and log-weights with 1 and 2
threads; tests/test_threads.py), so a run stays reproducible.

    governor = ThreadGovernor(max_threads=torch.get_num_threads())   # the loop's thread follower (threads=0)
    governor.poll()        # cheap; called once per arrival and between evaluation chunks
"""
from __future__ import annotations

import os
import time

import torch


def _proc_stat_busy() -> tuple[float, int] | None:
    """(busy seconds of the whole machine since boot, cores), from the first line of /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return (sum(ticks[:8]) - idle) / hz, os.cpu_count() or 1


class ThreadGovernor:
    """Sets torch's intra-op threads to the cores other processes leave free (see the module)."""

    def __init__(self, max_threads: int, interval: float = 5.0, reader=_proc_stat_busy, clock=time.monotonic,
                 own_cpu=time.process_time):
        self.max_threads = max(1, int(max_threads))
        self.interval = interval
        self._read, self._clock, self._own = reader, clock, own_cpu
        self._last: tuple[float, float, float] | None = None  # (wall, machine busy s, own cpu s)
        self._pending: int | None = None
        self.threads = torch.get_num_threads()
        self.changes: list[tuple[float, int]] = []  # (wall time, threads) of every change
        self.others_busy: float | None = None  # cores the other processes kept busy at the last check

    def poll(self) -> int | None:
        """Check (at most once per ``interval``); returns the new thread count when it changed."""
        now = self._clock()
        if self._last is not None and now - self._last[0] < self.interval:
            return None
        stat = self._read()
        if stat is None:
            return None
        busy, cores = stat
        own = self._own()
        if self._last is None:
            self._last = (now, busy, own)
            return None
        wall = now - self._last[0]
        others = max(0.0, (busy - self._last[1]) - (own - self._last[2])) / wall  # cores busy elsewhere
        self._last = (now, busy, own)
        self.others_busy = others
        want = max(1, min(self.max_threads, int(cores - others + 0.5)))
        if want == self.threads:
            self._pending = None
            return None
        if self._pending != want:  # a change needs two checks in a row
            self._pending = want
            return None
        self._pending = None
        self.threads = want
        torch.set_num_threads(want)
        self.changes.append((time.time(), want))
        return want
