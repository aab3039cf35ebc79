"""The human report printed as the run goes: each result as it finishes, a live footer while one runs.

What it prints is exactly :func:`autoglm_doctor.report.rich_report.render`'s text, in pieces: the
header before the first check, each check's lines when it finishes (the runner keeps a
category's checks together, so the headings come out as in the whole report), the summary at the
end. On a terminal the running check (the smoke test can take minutes) shows as a footer below
the results, with its elapsed time, through rich's live display; results print above it and the
footer disappears when the run ends. Interrupted, it prints what had finished and a summary of it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from autoglm_doctor.model import CheckResult, Report
from autoglm_doctor.report import rich_report
from autoglm_doctor.report.options import RenderOptions

if TYPE_CHECKING:
    from autoglm_doctor.runner import Progress


class _Footer:
    """The footer's text, computed at each refresh (so the elapsed seconds move)."""

    def __init__(self) -> None:
        self.label = ""
        self.detail = ""
        self.started = time.monotonic()

    def __rich__(self) -> Any:
        from rich.text import Text

        if not self.label:
            return Text("")
        detail = f": {self.detail}" if self.detail else ""
        return Text(f"{self.label} … {time.monotonic() - self.started:.0f} s{detail}", style="dim")


class StreamedReport:
    """Prints a rich report piece by piece; ``live`` adds the footer (only for a terminal)."""

    def __init__(self, options: RenderOptions, write: Callable[[str], None], *, live: bool) -> None:
        self.options = options
        self.write = write
        self.finished: list[CheckResult] = []
        self.total = 0
        self._previous: str | None = None
        self._footer = _Footer()
        self._secrets: list[str] | None = None
        self._live: Any = None
        self._console: Any = None
        if live:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(
                file=sys.stdout,
                width=options.width,
                force_terminal=True,
                no_color=not options.color,
                color_system="standard" if options.color else None,
                markup=False,
                highlight=False,
                emoji=False,
                soft_wrap=True,
            )
            self._live = Live(
                self._footer, console=self._console, transient=True, refresh_per_second=4, auto_refresh=True
            )

    def _print(self, lines: list[rich_report.Text]) -> None:
        if self._console is not None:
            for line in lines:
                self._console.print(line.to_rich())
        else:
            self.write(rich_report.to_text(lines, self.options))

    def _shown(self, item: T) -> T:
        return shown(item, self._secrets)

    @property
    def live(self) -> bool:
        """Whether a live footer is shown (a terminal)."""
        return self._live is not None

    def detail(self, text: str) -> None:
        """What the running check is doing now (the smoke test's phase), shown in the footer."""
        self._footer.detail = text

    def start(self, header: Report) -> None:
        """Print the header (the target is known before any check runs) and start the footer."""
        from autoglm_doctor.redact import secret_values

        # the values to mask are known once the facts are gathered: worked out once per report, not per
        # result (pre-commit's 10,000 files each print a report: per result, this was 0.5 ms of 3)
        self._secrets = secret_values()
        self._print(rich_report.header_lines(self._shown(header)))
        if self._live is not None:
            self._live.start()

    def progress(self, event: Progress) -> None:
        """Runner callback: show the running check in the footer; print a finished one."""
        self.total = event.total
        if event.result is None:
            self._footer.label = f"[{event.index}/{event.total}] {event.spec.title} ({event.spec.id})"
            self._footer.detail = ""
            self._footer.started = time.monotonic()
            return
        self._footer.label = ""
        self.finished.append(event.result)
        self._print(rich_report.result_lines(self._shown(event.result), self.options, self._previous))
        self._previous = event.result.category

    def result(self, result: CheckResult) -> None:
        """Print a result that did not come through the runner's progress (a plugin that failed to load)."""
        self.finished.append(result)
        self._print(rich_report.result_lines(self._shown(result), self.options, self._previous))
        self._previous = result.category

    def stop(self) -> None:
        """Remove the footer (idempotent)."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def finish(self, report: Report) -> None:
        """Remove the footer and print the summary."""
        self.stop()
        self._print(rich_report.summary_lines(self._shown(report), self.options))

    def interrupted(self, partial: Report) -> None:
        """Ctrl-C: remove the footer and say what finished, with its summary."""
        self.stop()
        self._print(interrupted_lines(self._shown(partial), self.total, self.options))


T = TypeVar("T")


def shown(item: T, secrets: list[str] | None = None) -> T:
    """What a person sees of a report or result: secrets redacted, control characters escaped.

    The same two passes :func:`autoglm_doctor.report.render` makes before any formatter sees a
    report; results printed as they finish must not skip them.
    """
    from autoglm_doctor.redact import redact_report
    from autoglm_doctor.textsafe import escape_report

    return escape_report(redact_report(item, secrets=secrets))


def interrupted_lines(partial: Report, total: int, options: RenderOptions) -> list[rich_report.Text]:
    """What an interrupted run says after the results that finished: how many, and their counts (no verdict)."""
    from autoglm_doctor.report._common import summary_phrase

    done = len(partial.results)
    counted = rich_report.Text("Finished: ", style="bold")
    counted.append(summary_phrase(partial, verbose=options.verbose))
    return [rich_report.Text(), rich_report.Text(f"interrupted: {done} of {total} checks finished"), counted]
