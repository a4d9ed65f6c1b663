"""The one exception type that reaches a user as a message instead of a traceback."""


class BoxflowError(Exception):
    """A problem with the user's arguments or input.

    The CLI prints `str(error)` on one line of stderr and exits with status 2, so the
    message must name the file or field and say what is wrong with it.
    """


# The exit status of a command stopped by bad arguments or input (DESIGN.md §2).
EXIT_BAD_INPUT = 2
# The exit status of a command the machine stopped: a full disk, a lost file, another OS failure.
EXIT_FAILURE = 1
