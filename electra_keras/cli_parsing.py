"""How the `electra-keras` parsers show help and report usage errors.

- `HelpFormatter` adds `(default: X)` to every option that has a default its
  help text does not already state, and keeps indented lines (the epilog's
  examples) as written.
- `CliParser.error` prints ONE line, `electra-keras: error: <message>`, and
  exits with status 2 (argparse's own prints the usage block first).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

PROG = "electra-keras"


def has_default(action: argparse.Action) -> bool:
    """Whether an option has a default worth showing (flags have none)."""
    default = action.default
    return bool(action.option_strings) and not (
        action.nargs == 0  # store_true, store_false, help
        or default is None
        or default == []
        or default == argparse.SUPPRESS
    )


class HelpFormatter(argparse.HelpFormatter):
    """Shows defaults; wraps text but keeps indented (example) lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            if line.startswith("  ") or not line.strip():
                lines.append(indent + line)
            else:
                lines.append(super()._fill_text(line, width, indent))
        return "\n".join(lines)

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if has_default(action) and "default" not in help_text.lower():
            help_text += " (default: %(default)s)"
        return help_text


def one_line(message: object) -> str:
    """`message` with its whitespace (newlines included) collapsed.

    An `OSError` from the standard library reads `[Errno 2] No such file or
    directory: 'x'`; it is shown as `x: No such file or directory`.
    """
    if isinstance(message, OSError) and message.filename and message.strerror:
        message = f"{message.filename}: {message.strerror}"
    return " ".join(str(message).split())


def print_error(message: object) -> None:
    """Prints `electra-keras: error: <message>` as one line on stderr."""
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr, flush=True)


class CliParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line on stderr."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        hint = f"`{PROG} {command} --help`" if command else f"`{PROG} --help`"
        print_error(f"{message} (see {hint})")
        sys.exit(2)
