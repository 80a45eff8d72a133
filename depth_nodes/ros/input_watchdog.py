"""Silent inputs: report a subscribed topic on which nothing has arrived for a while.

A mistyped remapping or a camera driver that never starts leaves a node waiting without a word.
:class:`InputWatchdog` is plain Python (no rclpy): the node marks every message it receives
(:meth:`mark`) and calls :meth:`silent` from a timer; it gets back the inputs that have been
quiet for at least ``period_s`` (since start-up or since their last message), each once per
silence until a message arrives again, and the node logs them with the resolved topic name and
the number of publishers it can see (0 publishers: a remapping or driver problem; some
publishers: QoS or transport).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

__all__ = ["InputWatchdog", "SilentInput", "silent_input_message"]


@dataclass(frozen=True)
class SilentInput:
    index: int
    topic: str
    silent_s: float  # seconds since start-up or since the last message
    ever_received: bool


class InputWatchdog:
    """Track when each of ``topics`` last received a message.

    Args:
        topics: input names, in the order used by :meth:`mark`.
        period_s: an input quiet for at least this long (seconds) is reported by :meth:`silent`.
        clock: monotonic clock in seconds (for tests).
    """

    def __init__(self, topics: Sequence[str], period_s: float, clock: Callable[[], float] = time.monotonic):
        self.topics = list(topics)
        self.period_s = float(period_s)
        self._clock = clock
        start = clock()
        self._last = [start] * len(self.topics)
        self._ever = [False] * len(self.topics)
        self._reported = [False] * len(self.topics)

    def mark(self, index: int) -> None:
        """A message arrived on input ``index``."""
        self._last[index] = self._clock()
        self._ever[index] = True
        self._reported[index] = False

    def silent(self) -> list[SilentInput]:
        """Inputs quiet for ``>= period_s`` not yet reported for this silence (each reported once)."""
        now = self._clock()
        out = []
        for i, topic in enumerate(self.topics):
            quiet = now - self._last[i]
            if quiet >= self.period_s and not self._reported[i]:
                self._reported[i] = True
                out.append(SilentInput(i, topic, quiet, self._ever[i]))
        return out


def silent_input_message(resolved_topic: str, silence: SilentInput, publishers: int) -> str:
    """The log line for a silent input (names the topic, what was seen, and what to check)."""
    what = "no more messages" if silence.ever_received else "nothing received"
    if publishers == 0:
        hint = "no publisher on this topic: check the remapping (-r) and that the driver runs"
    else:
        hint = (f"{publishers} publisher(s) seen but no message arrives: check the publisher's QoS "
                "(input_qos) and, for large images, the DDS transport (docs/dds.md)")
    return f"{what} on {resolved_topic} for {silence.silent_s:.1f} s; {hint}"
