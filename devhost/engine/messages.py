"""IDs of durable inbox messages.

An instance's inbox watermark (the newest message ID its last checkpoint applied) drops a
message redelivered after a crash when its ID is not newer. That is sound only if the
messages of one instance are applied in ID order, so IDs must grow: within a process (the
client operations of one instance are serialised, ``devhost.engine.client``) and past every
watermark already stored (a clock set back between two runs must not make new messages look
old).
"""

from __future__ import annotations

import time

_NS_DIGITS = 20


class MessageIds:
    """Sortable message IDs: wall-clock nanoseconds (strictly increasing) and a counter."""

    def __init__(self) -> None:
        self._last_ns = 0
        self._counter = 0

    def observe(self, msg_id: str) -> None:
        """Make every later ID newer than ``msg_id`` (a stored watermark)."""
        if msg_id[:_NS_DIGITS].isdigit():
            self._last_ns = max(self._last_ns, int(msg_id[:_NS_DIGITS]))

    def new(self) -> str:
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        self._counter += 1
        return f"{self._last_ns:0{_NS_DIGITS}d}{self._counter:08d}"
