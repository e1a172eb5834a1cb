"""How far a sender's clock is from its collector's (the NTP way).

The sender sends its time ``t1``; the collector notes ``t2`` when the ping arrives
and ``t3`` when it answers; the sender notes ``t4`` when the answer arrives. If the
network took as long each way, the collector's clock is ahead of the sender's by
``((t2 - t1) + (t3 - t4)) / 2``, and whatever the two ways took, that is wrong by at
most half the round trip, ``((t4 - t1) - (t3 - t2)) / 2``. Of several exchanges the one
with the shortest round trip gives the tightest bound, so that one is kept.

The clocks are CLOCK_MONOTONIC (the clock of the trace's timestamps; it differs
between machines, and between Linux time namespaces), in ns.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Tuple

ROUNDS = 8


def offset_and_error(samples: Iterable[Tuple[int, int, int, int]]) -> Tuple[int, int]:
    """``(offset, error)`` in ns from ``(t1, t2, t3, t4)`` samples: what to add to the
    sender's clock to get the collector's, and the bound of that (half the shortest
    round trip)."""
    best = min(samples, key=lambda s: (s[3] - s[0]) - (s[2] - s[1]))
    t1, t2, t3, t4 = best
    offset = ((t2 - t1) + (t3 - t4)) // 2
    error = -(-((t4 - t1) - (t3 - t2)) // 2)  # rounded up
    return offset, max(error, 0)


def applied(offset: int, error: int) -> int:
    """The shift the events get: none when the measurement can't tell the offset from
    zero (two processes of one machine), so their order within the error stays."""
    return 0 if abs(offset) <= error else offset


def measure(exchange: Callable[[int], Tuple[int, int]], rounds: int = ROUNDS,
            clock: Callable[[], int] = time.monotonic_ns) -> Tuple[int, int]:
    """``(offset, error)`` of ``rounds`` exchanges; ``exchange(t1)`` pings the
    collector with ``t1`` and returns its ``(t2, t3)``."""
    samples = []
    for _ in range(rounds):
        t1 = clock()
        t2, t3 = exchange(t1)
        samples.append((t1, t2, t3, clock()))
    return offset_and_error(samples)
