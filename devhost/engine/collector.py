"""The cyclic garbage collector's settings while an engine runs.

Every episode allocates a few thousand short-lived containers (the SDK's history objects, the
context and reply JSON), so with the interpreter's default first-generation threshold (700)
the collector runs a young collection every few episodes and, every hundred of those, a full
one that walks every object of the process again: the app, the SDKs, and in a test run the
whole test session. Both are pure overhead here: the engine's objects die young without
cycles, and what was loaded before the engine started lives as long as it does.
(docs/benchmarks.md, "The host at the storage ceiling": CPU per HelloSequence5 with and
without these settings.)
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

# Young collections at most every 10,000 net container allocations instead of 700. Measured
# on HelloSequence5 at 100 in flight: about as fast as turning the collector off, while a
# cycle made by the app is still collected within a few episodes (docs/benchmarks.md).
ENGINE_GEN0_THRESHOLD = 10_000


def tune_for_host() -> None:
    """The settings of a process that is the host (``devhost start``, the benchmark).

    What is loaded by now (the app, the SDKs, the storage clients) lives as long as the host,
    so it is frozen out of the collector's way, and young collections are made rarer."""
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], ENGINE_GEN0_THRESHOLD), *threshold[1:])


@dataclass
class ScopedTuning:
    """The same settings for an engine that runs inside someone else's process (the test
    host in a user's test session), undone when it stops.

    ``apply`` freezes what exists (unless something already froze objects: those are then
    the process's business, and so is unfreezing them) and raises the young threshold;
    ``restore`` unfreezes what it froze (so that garbage frozen meanwhile is collected as
    usual again) and puts the threshold back, unless someone else changed it meanwhile.
    Overlapping hosts are fine: the first to stop restores, the others find nothing to undo.
    """

    froze: bool = False
    saved_threshold: tuple[int, int, int] | None = None
    set_threshold: tuple[int, int, int] | None = None

    def apply(self) -> None:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            self.froze = True
        saved = gc.get_threshold()
        if saved[0] < ENGINE_GEN0_THRESHOLD:
            self.saved_threshold = saved
            self.set_threshold = (ENGINE_GEN0_THRESHOLD, saved[1], saved[2])
            gc.set_threshold(*self.set_threshold)

    def restore(self) -> None:
        if self.froze:
            gc.unfreeze()
            self.froze = False
        if self.saved_threshold is not None and gc.get_threshold() == self.set_threshold:
            gc.set_threshold(*self.saved_threshold)
        self.saved_threshold = self.set_threshold = None
