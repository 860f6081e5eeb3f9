"""Utilities every layer shares: reading TOML with errors for people, writing a file atomically, and
importing an optional dependency.

``atomic_write`` is the one way multivector writes an output file: the content goes to a temporary
file beside the target, which is renamed into place only when it is complete, so an interrupted or
failed write leaves the old file (or nothing). Every file it writes gets the same mode,
``0o666 & ~umask`` — what ``open()`` would give — because reports, figures, calibrations and exports
are for sharing (``mkstemp`` alone would leave them private).

``cache_folder`` is where compiled artefacts (route sets, generated kernels) are kept between sessions.

``require`` imports a module that comes with an extra and, when it is missing, raises
:class:`~multivector.errors.MissingDependency` naming the ``pip install`` that brings it.

``retain_freed_memory`` asks the C allocator to keep freed memory for reuse: an application's choice
(the command line, its worker processes and the benchmarks make it), never made behind a library
caller's back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from multivector.errors import InputError, MissingDependency


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _read_umask()      # read once, at import: os.umask is process-wide and not thread-safe


def _file_mode() -> int:
    return 0o666 & ~_UMASK


def atomic_write(path: str | Path, write: Callable[[IO], None] | str | bytes, *, binary: bool = False) -> Path:
    """Write ``path`` atomically: ``write`` is the content (str or bytes) or a function given the open file.

    A missing folder is an :class:`InputError`; the temporary file is removed whatever goes wrong.
    """
    binary = binary or isinstance(write, bytes)

    def save(tmp: str):
        with open(tmp, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": "\n"})) as fh:
            if callable(write):
                write(fh)
            else:
                fh.write(write)

    return atomic_file(path, save)


def atomic_file(path: str | Path, save: Callable[[str], object]) -> Path:
    """Like :func:`atomic_write` for writers that want a file name (matplotlib, XMILE): ``save(tmp)``
    writes a temporary file beside ``path``, which then replaces it."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"folder {folder} does not exist", hint="create it, or choose another output path")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a file", hint="give a file name")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_folder(target: str | Path, fill: Callable[[Path], object], *, new: bool = False) -> list[Path]:
    """Write a set of files into ``target`` together: ``fill(tmp)`` writes them into a temporary folder
    beside it, and only when it succeeds are they moved in (with the shared file mode). ``new``: the
    target must not already hold files. Returns the paths written."""
    target = Path(target)
    parent = target.resolve().parent
    if not parent.is_dir():
        raise InputError(f"{parent} is not an existing folder", hint="create it, or choose another folder")
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} is a file, not a folder")
    if new and target.exists() and any(target.iterdir()):
        raise InputError(f"{target} exists and is not empty", hint="choose a new folder")
    tmp = Path(tempfile.mkdtemp(prefix=".mv-", dir=parent))
    try:
        fill(tmp)
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for f in sorted(tmp.iterdir()):
            os.chmod(f, _file_mode())
            os.replace(f, target / f.name)
            written.append(target / f.name)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_toml(path: str | Path) -> dict:
    """A TOML file as a dict; a syntax error is an :class:`InputError` naming the file and the line."""
    import tomllib

    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"is not valid TOML: {exc}", file=path) from None


def require(module: str, extra: str, what: str | None = None):
    """Import ``module`` or raise :class:`MissingDependency` naming ``pip install 'multivector[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(f"{what or module} needs {module.split('.')[0]}", extra=extra) from None


#: Where compiled artefacts are kept between sessions; an empty value turns the cache off.
CACHE_ENV = "MULTIVECTOR_CACHE_DIR"


def cache_folder(kind: str) -> Path | None:
    """The cache folder for ``kind`` (``networks``, ``kernels``): under ``$MULTIVECTOR_CACHE_DIR``, else
    under the user's cache folder; ``None`` when the variable is set empty (no cache)."""
    given = os.environ.get(CACHE_ENV)
    if given is not None:
        return Path(given) / kind if given.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "multivector" / kind


#: Allocations below this many bytes come from the heap, and freed heap memory is kept up to the other
#: (glibc's ``M_MMAP_THRESHOLD``, at its 64-bit maximum, and ``M_TRIM_THRESHOLD``, the largest a C int holds).
RETAIN_MMAP_BELOW = 32 * 2**20
RETAIN_TRIM_ABOVE = 2**31 - 1
ENV_RETAIN = {"MALLOC_MMAP_THRESHOLD_": str(RETAIN_MMAP_BELOW), "MALLOC_TRIM_THRESHOLD_": str(RETAIN_TRIM_ABOVE)}


def retain_freed_memory() -> bool:
    """Keep the memory a batch frees for the next year's arrays instead of returning it to the system
    (glibc only; elsewhere a no-op returning False).

    A batch's years allocate and free hundreds of MB of NumPy temporaries each (a batch of 1,000 coupled
    runs about 8 GB over 17 years). By default glibc maps the larger ones afresh and trims the heap as
    soon as its free top passes 64 MB, so each year touches new pages again, and on a virtual machine a
    first touch can cost tens of microseconds a page (the batch ran 1.3x slower). Raising both
    thresholds keeps the pages mapped; the process's memory then stays at its peak until it exits, so
    this is for processes that simulate (the command line, worker processes), not a library import.
    Worker processes started later take :data:`ENV_RETAIN` in their environment instead."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):       # not glibc (musl has no tunable thresholds)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3                     # glibc's <malloc.h>
    return bool(mallopt(m_mmap_threshold, RETAIN_MMAP_BELOW)) and bool(mallopt(m_trim_threshold, RETAIN_TRIM_ABOVE))
