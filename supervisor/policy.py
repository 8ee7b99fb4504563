"""The timing rules of aria2c's supervision, and the count of restarts they limit."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from supervisor.config import Settings

__all__ = ["RestartWindow", "SupervisionPolicy"]


@dataclass(frozen=True)
class SupervisionPolicy:
    """The timing rules of supervision (see ``[supervisor]`` in ``conf/ariabot.toml``)."""

    start_timeout: float = 15.0
    health_interval: float = 5.0
    health_timeout: float = 10.0
    health_failures: int = 3
    stop_timeout: float = 15.0
    backoff_initial: float = 0.25
    backoff_max: float = 30.0
    min_uptime: float = 10.0
    restart_burst: int = 5
    restart_window: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SupervisionPolicy:
        """Take the ``[supervisor]`` settings."""
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


class RestartWindow:
    """Counts deaths in a sliding time window (systemd's StartLimitIntervalSec/Burst).

    Parameters:
        burst: more deaths than this within ``window`` is one too many.
        window: seconds.
        clock: monotonic clock (injected by tests).
    """

    def __init__(self, burst: int, window: float, clock: Callable[[], float]) -> None:
        self._burst = burst
        self._window = window
        self._clock = clock
        self._deaths: deque[float] = deque()

    def record(self) -> None:
        """Count one death, now."""
        self._deaths.append(self._clock())

    def count(self) -> int:
        """Deaths within the window."""
        horizon = self._clock() - self._window
        while self._deaths and self._deaths[0] < horizon:
            self._deaths.popleft()
        return len(self._deaths)

    def exceeded(self) -> bool:
        """More deaths than ``burst`` within the window: time to give up (FATAL)."""
        return self.count() > self._burst
