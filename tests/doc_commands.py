"""The commands written in the README and docs/, read the way a person copies them.

Fenced blocks say what they hold by their info string:
- ```sh           commands that run on one machine, in order (`tests/test_docs.py` runs them);
- ```sh cluster   commands for a cluster, a cloud or Docker (their arguments are checked);
- ```text         synopses (`boxflow prepare --format … [--flag X]`) and file listings.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shlex

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]
# The order a reader follows, and the order the runnable commands depend on each other.
GUIDE = ("README.md", "docs/your_data.md", "docs/outputs.md", "docs/troubleshooting.md", "docs/scaling_out.md",
         "docs/commands.md")

_FENCE = re.compile(r"^( *)```(.*)$")
_ENVIRONMENT = re.compile(r"^([A-Z_]+)=('[^']*'|\S+)\s+")


@dataclasses.dataclass(frozen=True)
class Block:
    file: str
    line: int  # of the opening fence, from 1
    info: str  # the fence's info string: "sh", "sh cluster", "text", "yaml", …
    lines: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Command:
    """One command of a block: continuation lines joined, `VAR=value` prefixes and a trailing `&` split off."""

    file: str
    line: int
    environment: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]
    background: bool

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def blocks(file: str) -> list[Block]:
    found, current, opened = [], None, None
    for number, text in enumerate((REPOSITORY / file).read_text().splitlines(), start=1):
        fence = _FENCE.match(text)
        if fence and current is None:
            current, opened = [], (number, fence.group(2).strip(), len(fence.group(1)))
        elif fence and current is not None:
            found.append(Block(file, opened[0], opened[1], tuple(line[opened[2]:] for line in current)))
            current = None
        elif current is not None:
            current.append(text)
    return found


def commands(block: Block) -> list[Command]:
    result, pending, start = [], "", 0
    for offset, text in enumerate(block.lines, start=1):
        if not pending and (not text.strip() or text.lstrip().startswith("#")):
            continue
        start = start if pending else block.line + offset
        pending += text.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        result.append(_command(block.file, start, pending.strip()))
        pending = ""
    return result


def _command(file: str, line: int, text: str) -> Command:
    environment = []
    while match := _ENVIRONMENT.match(text):
        environment.append((match.group(1), match.group(2).strip("'")))
        text = text[match.end():]
    background = text.endswith("&")
    return Command(file, line, tuple(environment), tuple(shlex.split(text.rstrip("&").strip())), background)


def guide_blocks(info: str) -> list[Block]:
    return [block for file in GUIDE for block in blocks(file) if block.info == info]


def guide_commands(info: str) -> list[Command]:
    return [command for block in guide_blocks(info) for command in commands(block)]


def synopses() -> dict[str, str]:
    """`{command: synopsis text}` for every ```text block of docs/commands.md that starts with `boxflow COMMAND`."""
    found = {}
    for block in blocks("docs/commands.md"):
        if block.info == "text" and block.lines and block.lines[0].startswith("boxflow "):
            found[block.lines[0].split()[1]] = "\n".join(block.lines)
    return found


def markdown_table(file: str, heading: str) -> list[list[str]]:
    """The rows (cells without their outer backticks) of the first table after `heading`."""
    text = (REPOSITORY / file).read_text()
    rows = []
    for line in text[text.index(heading):].splitlines()[1:]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append([cell[1:-1] if cell.startswith("`") and cell.endswith("`") else cell for cell in cells])
        elif rows:
            break
    return rows[2:]  # past the header and its rule


def without_options(argv: tuple[str, ...], *names: str) -> list[str]:
    """`argv` without the `--name value` pairs (or `--name=value`) of the given option names."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in names:
            skip = True
        elif not arg.split("=", 1)[0] in names:
            kept.append(arg)
    return kept
