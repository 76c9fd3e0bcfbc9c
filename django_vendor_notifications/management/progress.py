"""A one-line progress bar for the app's commands, drawn only on a terminal: in a cron job's
mail or a log it would be noise. No dependency: a carriage return redraws the line."""

from __future__ import annotations

from django.core.management.base import OutputWrapper

WIDTH = 30


class ProgressBar:
    def __init__(self, stdout: OutputWrapper, total: int) -> None:
        self.stdout = stdout
        self.total = total
        self.shown = total > 0 and stdout.isatty()

    def update(self, done: int) -> None:
        if not self.shown:
            return
        done = min(done, self.total)
        filled = WIDTH * done // self.total
        bar = "#" * filled + "." * (WIDTH - filled)
        self.stdout.write(f"\r[{bar}] {done}/{self.total}", ending="")
        self.stdout.flush()

    def finish(self) -> None:
        if self.shown:
            self.stdout.write("")
