"""``peforge cache info|clean``: what the build cache (``$PEFORGE_CACHE`` or ``~/.cache/peforge``)
holds per kind of entry (its top-level folders: verilator builds, synth and energy results, ...)
and removing entries by kind and age.

An entry is one child of a kind's folder; its ``.lock`` file (empty, it serialises the processes
that build the entry) stays. ``clean`` takes each entry's lock without waiting and skips an entry
in use. Sizes are the bytes of the entries' files."""

import shutil
import time
from contextlib import nullcontext
from pathlib import Path

from peforge.sim.cli.common import Parser, fail
from peforge.sim.cli.units import readable

__all__ = ["add_commands"]


def _cache_dir() -> Path:
    from peforge.sim.cache import cache_dir

    return cache_dir()


def add_commands(commands) -> None:
    cache = commands.add_parser("cache", help="size of the build cache per kind, and cleaning it")
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION",
                                   parser_class=Parser)
    actions.add_parser("info", help="entries and size per kind of entry").set_defaults(
        handler=cmd_info)
    clean = actions.add_parser("clean", help="remove cache entries (all, or by --kind and "
                               "--older-than); without --yes only lists what it would remove")
    clean.add_argument("--kind", action="append", metavar="KIND",
                       help="only this kind (a folder of the cache, e.g. verilator); repeatable")
    clean.add_argument("--older-than", type=_days, metavar="DAYS", default=0.0,
                       help="only entries not modified for DAYS days (a number >= 0)")
    clean.add_argument("--yes", action="store_true", help="really remove them")
    clean.set_defaults(handler=cmd_clean)


def _days(text: str) -> float:
    import argparse
    import math

    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days < 0:
        raise argparse.ArgumentTypeError(f"must be a number of days >= 0, got {text!r}")
    return days


def _entries(kind_dir: Path) -> list[Path]:
    return sorted(path for path in kind_dir.iterdir() if path.suffix != ".lock")


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum(child.lstat().st_size for child in path.rglob("*"))


def _kinds(root: Path) -> list[Path]:
    return sorted(path for path in root.iterdir() if path.is_dir() and not path.is_symlink()) \
        if root.is_dir() else []


def cmd_info(_args) -> int:
    root = _cache_dir()
    total = 0
    print(f"cache {root}")
    for kind in _kinds(root):
        entries = _entries(kind)
        size = sum(map(_size, entries))
        total += size
        print(f"  {kind.name:<12} {len(entries):6} entries {readable(size, 'B'):>12}")
    print(f"  {'total':<12} {'':6}         {readable(total, 'B'):>12}")
    return 0


def cmd_clean(args) -> int:
    from filelock import FileLock, Timeout

    root = _cache_dir()
    kinds = {kind.name: kind for kind in _kinds(root)}
    for name in args.kind or ():
        if name not in kinds:
            return fail(f"kind: must be one of {', '.join(kinds) or '(the cache is empty)'}, "
                        f"got {name!r}")
    cutoff = time.time() - args.older_than * 86400
    chosen = [entry for name, kind in kinds.items() if not args.kind or name in args.kind
              for entry in _entries(kind) if entry.lstat().st_mtime <= cutoff]
    if not args.yes:
        size = sum(map(_size, chosen))
        print(f"would remove {len(chosen)} entries ({readable(size, 'B')}) from {root}; "
              f"run again with --yes to remove them")
        return 0
    removed, freed, busy = 0, 0, 0
    for entry in chosen:
        lock = Path(str(entry) + ".lock")
        try:
            with FileLock(str(lock), timeout=0) if lock.exists() else nullcontext():
                entry_size = _size(entry)
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            removed, freed = removed + 1, freed + entry_size
        except Timeout:
            busy += 1
    print(f"removed {removed} entries ({readable(freed, 'B')}) from {root}"
          + (f"; {busy} in use, kept" if busy else ""))
    return 0
