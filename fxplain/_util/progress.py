"""A minimal progress display for long runs (tqdm when installed)."""

from __future__ import annotations

import sys
import time


def stage_printer(enabled: bool, who: str):
    """A function printing ``"<who>: <stage>"`` lines on stderr when ``enabled``, so a long run says what it does."""
    def say(text: str) -> None:
        if enabled:
            print(f"{who}: {text}", file=sys.stderr, flush=True)
    return say


class Progress:
    """Counts work units; shows a bar on stderr when enabled.

    Uses ``tqdm`` if it is importable (it renders nicely in Jupyter),
    otherwise prints a line at most every half second: percentage, elapsed
    time and the time left at the rate since the first update (units counted
    by that first update — the steps a resumed run skips — do not make the
    rate look faster than it is).
    """

    def __init__(self, total: int, description: str, enabled: bool):
        self.total = total
        self.done = 0
        self._bar = None
        self._enabled = enabled
        self._last = 0.0
        self._description = description
        self._postfix = ""
        self._rate_from: tuple[int, float] | None = None  # (units done, time) at the first update
        self._started = time.monotonic()
        if enabled:
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, desc=description, leave=False)
            except ImportError:
                pass

    def update(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self._rate_from is None:
            self._rate_from = (self.done, now)
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(count)
        elif now - self._last > 0.5 or self.done >= self.total:
            self._last = now
            print(f"\r{self._description}: {100 * self.done / max(self.total, 1):5.1f} % "
                  f"({self.done}/{self.total}, {_clock(now - self._started)} elapsed, {self.eta_text()} left) "
                  f"{self._postfix}", end="", file=sys.stderr, flush=True)

    def eta_seconds(self) -> float | None:
        """Seconds left at the rate so far (None before there is a rate to go by)."""
        if self._rate_from is None:
            return None
        units, since = self._rate_from
        spent, counted = time.monotonic() - since, self.done - units
        if counted <= 0 or spent <= 0:
            return None
        return max(self.total - self.done, 0) * spent / counted

    def eta_text(self) -> str:
        """:meth:`eta_seconds` as ``m:ss`` (``?`` before there is a rate)."""
        eta = self.eta_seconds()
        return "?" if eta is None else _clock(eta)

    def set_postfix(self, text: str) -> None:
        """Show ``text`` (e.g. the current losses) after the bar."""
        self._postfix = text
        if self._enabled and self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._enabled:
            print(file=sys.stderr)

    def __enter__(self) -> Progress:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _clock(seconds: float) -> str:
    """``seconds`` as ``h:mm:ss`` or ``m:ss``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
