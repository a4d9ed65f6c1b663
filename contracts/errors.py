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


class SettingError(BoxflowError):
    """A setting with a wrong value. The library names the config field (`image_size`); the
    command line names the flag that sets it, where one does (`--image-size`, `boxflow.cli`).
    `mentions` are the other settings `problem` names, by field, for the command line to rename."""

    def __init__(self, field: str, problem: str, mentions: tuple[str, ...] = ()):
        super().__init__(f"{field} {problem}")
        self.field, self.problem, self.mentions = field, problem, mentions
