"""Output files a command writes for the user (generated Verilog, manifests): all or nothing, with
the user's umask.

Each file is written under a temporary name in its own folder and renamed once every file of the
set is complete, so a failure leaves none of them half-written. ``tempfile.mkstemp`` creates its
file with mode 0600; an output is given the mode a plain ``open(path, "w")`` would give it
(``0666`` less the umask), like any other file the user makes.
"""

import os
import tempfile
from pathlib import Path

__all__ = ["write_outputs"]


def _umask() -> int:
    # The umask can only be read by setting it: set it back at once.
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def write_outputs(files: dict[Path, str]) -> list[Path]:
    """Write each ``path: text`` of ``files`` (folders created as needed); the paths written, in
    order. Raises OSError (nothing of the set left behind) when a folder or file cannot be
    written."""
    mode = 0o666 & ~_umask()
    written: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            written.append((tmp, path))
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.chmod(tmp, mode)
        for tmp, path in written:
            os.replace(tmp, path)
    finally:
        for tmp, _ in written:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return [path for _, path in written]
