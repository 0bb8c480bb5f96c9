"""A minimal progress display for long runs (tqdm when installed)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts work units; shows a bar on stderr when enabled.

    Uses ``tqdm`` if it is importable (it renders nicely in Jupyter),
    otherwise prints a percentage line at most every half second.
    """

    def __init__(self, total: int, description: str, enabled: bool):
        self.total = total
        self.done = 0
        self._bar = None
        self._enabled = enabled
        self._last = 0.0
        self._description = description
        self._postfix = ""
        if enabled:
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, desc=description, leave=False)
            except ImportError:
                pass

    def update(self, count: int) -> None:
        self.done += count
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.update(count)
        elif time.monotonic() - self._last > 0.5 or self.done >= self.total:
            self._last = time.monotonic()
            print(f"\r{self._description}: {100 * self.done / max(self.total, 1):5.1f} % {self._postfix}", end="",
                  file=sys.stderr, flush=True)

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
