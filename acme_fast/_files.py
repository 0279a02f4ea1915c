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
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.",
                                   suffix=".tmp" + path.suffix if suffix is None else suffix, dir=parent)
    except OSError as exc:
        raise OSError(f"cannot write '{path}': {exc.strerror or exc}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        publish(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if str(path) in str(exc):
            raise
        # name the user's path, not the hidden temporary file beside it
        raise OSError(f"could not write '{path}': {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Give ``tmp`` the permissions a new file gets (mkstemp makes 0600) and rename it over ``path``
    (atomic on POSIX)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def check_writable(path: str | os.PathLike, *, name: str) -> None:
    """Create and remove a temporary file beside ``path`` (where the atomic writers put theirs):
    an unwritable directory, a read-only file system or a full quota fails here, before any
    work, with a message naming the argument and the user's path.

    Raises PermissionError / OSError.
    """
    out = Path(path)
    parent = out.parent if str(out.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        cls = PermissionError if isinstance(exc, PermissionError) else OSError
        raise cls(f"{name}: cannot write '{path}' (directory '{parent}': {exc.strerror or exc})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def check_new_file(path: str | os.PathLike, *, name: str, overwrite: bool, suffixes: tuple[str, ...] | None = None,
                   overwrite_hint: str = "pass overwrite=True to replace it") -> Path:
    """An output path checked before any work: known suffix, existing directory, not a
    directory, and no existing file unless ``overwrite``. Errors name the argument ``name``.

    Raises ValueError (suffix), FileNotFoundError (directory), IsADirectoryError, FileExistsError,
    PermissionError / OSError (the directory cannot be written: see :func:`check_writable`).
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
    check_writable(out, name=name)
    return out
