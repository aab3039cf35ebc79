"""Exit codes and the usage error; :func:`autoglm_doctor.cli.main` turns how a command ended into one.

Exit codes (README, docs/output-formats.md): 0 nothing failed · 1 a check failed or errored · 2 usage error ·
3 the doctor itself crashed outside any check · 130 interrupted.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

PROG = "autoglm-doctor"


class UsageError(Exception):
    """The command line asks for something impossible (exit 2); the message says what."""


class Question(UsageError):
    """The command line leaves out something the doctor cannot decide alone (exit 2): the message asks it.

    Printed as it is, without the usage line and ``Error:`` of a malformed command line.
    """
