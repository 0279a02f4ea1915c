"""Writing outputs without ever leaving a half-written file where the user expects one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; moved over ``path`` on success.

    On success the temporary file is flushed to disk, given the permissions a new file would
    get (mkstemp makes 0600) and renamed over ``path`` with ``os.replace`` (atomic on POSIX);
    on any error it is removed. ``suffix`` is the temporary file's suffix (default
    ``".tmp" + path.suffix``, so that writers that go by extension still work).
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix if suffix is None else suffix,
                               dir=parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
