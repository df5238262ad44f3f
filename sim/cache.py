"""peforge's one on-disk cache: Verilator builds, synthesis results, gate netlists and JSON.

Entries live under ``$PEFORGE_CACHE`` (default ``~/.cache/peforge``) as
``<kind>/<name>-<key>[suffix]``, where ``key`` is :func:`content_key` of everything the entry
depends on (a changed input gives a new entry; nothing is invalidated in place). A file lock
beside each entry (``<entry>.lock``) makes concurrent callers (pytest-xdist workers, sweep pool
workers) wait for one producer. An entry is written under a temporary name and renamed, or, for a
folder that must be filled where it lives (a Verilator build), counts only once its completion file
exists: a crash leaves nothing that a later call would read.

The cache holds executables that peforge runs, so the folders it creates are private to the user
(mode 0700), and an entry (or a folder above it) that another user owns is refused with
:class:`CacheError` instead of being used.
"""

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

__all__ = ["CacheError", "cache_dir", "content_key", "entry_path", "cached_json",
           "cached_report", "cached_folder"]


class CacheError(RuntimeError):
    """A cache folder or entry cannot be trusted or created; the message names the path."""


def cache_dir() -> Path:
    """Root of the cache: ``$PEFORGE_CACHE`` or ``~/.cache/peforge``."""
    return Path(os.environ.get("PEFORGE_CACHE", Path.home() / ".cache" / "peforge"))


def content_key(*parts: str) -> str:
    """16 hex digits of the sha256 of ``parts`` joined by NUL: the key of an entry."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def entry_path(kind: str, name: str, key: str, suffix: str = "") -> Path:
    """``cache_dir()/kind/name-key+suffix``; ``kind`` may have parts (``energy/netlist``)."""
    return cache_dir() / kind / f"{name}-{key}{suffix}"


def _check_owner(path: Path) -> None:
    owner = path.lstat().st_uid
    if owner != os.geteuid():
        raise CacheError(f"cache: {path} belongs to uid {owner}, not to you (uid "
                         f"{os.geteuid()}); remove it or point PEFORGE_CACHE at a folder of "
                         f"your own")


def _private_folder(folder: Path) -> None:
    """Create ``folder`` and the folders between it and the cache root with mode 0700 and refuse
    one that another user owns. Folders below the root that others can enter are made private;
    the root itself (perhaps a folder the user named, such as ``/tmp``) keeps its mode, and the
    folders above it (``~/.cache`` on a fresh machine) are made as ``mkdir -p`` would."""
    root = cache_dir()
    chain = [folder, *folder.parents]
    inside = chain[:chain.index(root) + 1] if root in chain else [folder]
    for path in reversed(inside):
        try:
            if path == root:
                path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError as error:
            raise CacheError(f"cache: cannot create {path}: {error.strerror or error}") from None
        if not path.is_dir() or path.is_symlink():
            raise CacheError(f"cache: {path} is not a folder")
        _check_owner(path)
        if path != root and path.stat().st_mode & 0o077:
            path.chmod(0o700)


def cached_json(path: Path, compute: Callable[[], dict]) -> tuple[dict, bool]:
    """The JSON object stored at ``path``, or ``compute()`` (a JSON-ready dict) stored there
    atomically; concurrent callers compute once. ``(data, read_from_cache)``."""
    _private_folder(path.parent)
    with FileLock(str(path) + ".lock"):
        if path.exists():
            _check_owner(path)
            return json.loads(path.read_text()), True
        data = compute()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1)
        os.replace(tmp, path)
    return data, False


def cached_report(path: Path, compute: Callable[[], dict], report_type):
    """:func:`cached_json` read as ``report_type.from_dict(data)``, its ``cached`` attribute
    saying whether it came from the cache."""
    data, cached = cached_json(path, compute)
    report = report_type.from_dict(data)
    report.cached = cached
    return report


def cached_folder(path: Path, complete: str, fill: Callable[[Path], None], *,
                  in_place: bool = False) -> tuple[Path, bool]:
    """The folder ``path``, complete once it holds the file ``complete``; else made by
    ``fill(folder)``, which must create that file. ``(path, read_from_cache)``.

    By default ``fill`` writes a temporary folder beside ``path`` that is renamed to ``path``
    when it is complete (a failing ``fill`` leaves it for its log). With ``in_place`` ``fill``
    writes ``path`` itself (tools that record their own folder, such as a Verilator build);
    an incomplete folder left by a crash is removed and filled again.
    """
    _private_folder(path.parent)
    with FileLock(str(path) + ".lock"):
        if (path / complete).exists():
            _check_owner(path)
            _check_owner(path / complete)
            return path, True
        if path.exists():
            _check_owner(path)
            shutil.rmtree(path)
        if in_place:
            path.mkdir(mode=0o700)
            work = path
        else:
            work = Path(tempfile.mkdtemp(prefix=f"work-{path.name}-", dir=path.parent))
        fill(work)
        if not (work / complete).exists():
            raise CacheError(f"cache: filling {work} left no {complete}")
        if work != path:
            os.replace(work, path)
    return path, False
