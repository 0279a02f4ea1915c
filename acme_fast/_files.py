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


def check_new_file(path: str | os.PathLike, *, name: str, overwrite: bool, suffixes: tuple[str, ...] | None = None,
                   overwrite_hint: str = "pass overwrite=True to replace it") -> Path:
    """An output path checked before any work: known suffix, existing directory, not a
    directory, and no existing file unless ``overwrite``. Errors name the argument ``name``.

    Raises ValueError (suffix), FileNotFoundError (directory), IsADirectoryError, FileExistsError.
    """
    out = Path(path)
    if suffixes is not None and out.suffix.lower() not in suffixes:
        raise ValueError(f"{name}: expected a file name ending in {' or '.join(suffixes)}, got '{path}'")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"{name}: directory '{parent}' does not exist")
    if out.is_dir():
        raise IsADirectoryError(f"{name}: '{path}' is a directory")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{name}: '{path}' exists; {overwrite_hint}")
    return out
