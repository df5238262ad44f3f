"""What every ``peforge`` command shares: the one-line-error parser, family options built from a
family's declared parameters, writing JSON beside the printed report, and progress lines."""

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Parser", "fail", "add_family_options", "family_config", "write_json", "stage",
           "progress_shown"]


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump)."""

    def error(self, message):
        raise SystemExit(fail(message))


def fail(message: str) -> int:
    """Print ``peforge: error: <message>`` on stderr; the exit status of a refused input (2)."""
    print(f"peforge: error: {message}", file=sys.stderr)
    return 2


def add_family_options(parser: argparse.ArgumentParser, fam) -> None:
    """One option per declared parameter of ``fam``: ``--no-X`` for flags, ints for ranges."""
    for name, (spec, default) in fam.parameters().items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{spec.help} ({spec.describe()}; default {default})"
        if spec.range is None and spec.choices is None:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                                default=default, help=help_text)
        elif spec.range is not None:
            parser.add_argument(flag, dest=name, type=int, default=default, help=help_text)
        else:
            parser.add_argument(flag, dest=name, default=default, help=help_text)


def family_config(fam, args):
    """``fam``'s config from the parsed family options (ValueError naming a bad field)."""
    return fam.make_config(**{name: getattr(args, name) for name in fam.parameters()})


def write_json(path: Path, data: dict) -> int:
    """Write ``data`` to ``path`` as indented JSON; exit status (one-line error when unwritable)."""
    import json

    try:
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as error:
        return fail(f"json: cannot write {path}: {error.strerror or error}")
    print(f"wrote {path}")
    return 0


def progress_shown() -> bool:
    """Whether progress (the :func:`stage` lines, the sweep's bar) goes to stderr: always with
    ``PEFORGE_PROGRESS=1``, never with ``PEFORGE_PROGRESS=0``, else when stderr is a
    terminal."""
    import os

    return os.environ.get("PEFORGE_PROGRESS") == "1" or (
        os.environ.get("PEFORGE_PROGRESS") != "0" and sys.stderr.isatty())


@contextmanager
def stage(message: str):
    """Around a long step: ``peforge: <message> ...`` on stderr, then ``peforge: <message>:
    <seconds> s`` when it ends (:func:`progress_shown`; nothing otherwise)."""
    shown = progress_shown()
    if shown:
        print(f"peforge: {message} ...", file=sys.stderr, flush=True)
    start = time.monotonic()
    yield
    if shown:
        print(f"peforge: {message}: {time.monotonic() - start:.1f} s", file=sys.stderr,
              flush=True)
