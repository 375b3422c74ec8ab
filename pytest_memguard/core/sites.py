"""Where an allocation belongs: the innermost frame of its traceback that is user code.

Each file of a traceback is one of three kinds:

- ``excluded``: a framework that allocates on its own behalf (pytest, pluggy, xdist,
  execnet, this package, tracemalloc, the import machinery);
- ``library``: the standard library, site-packages, the interpreter's scripts and
  generated code (``<string>``, ``<frozen os>``, ``<unknown>``);
- ``user``: everything else (tests, conftest files, the project, doctests).

The site of an allocation is its innermost user frame: ``np.ones(n)`` called from a test
belongs to the test's line, not to numpy.  A traceback whose innermost frame that is not
a library's is an excluded one is the framework's own bookkeeping and has no site, even
when user code called the framework (a test's ``subTest`` block, whose reports pytest
keeps; a log record pytest captures); with neither, the site is its innermost library
frame.
"""

from __future__ import annotations

import importlib.util
import os
import site
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal

from .sizes import format_size

__all__ = ["DEFAULT_EXCLUDES", "FrameKind", "Site", "SiteRules", "display_path", "site_rules"]

FrameKind = Literal["user", "library", "excluded"]
Frame = tuple[str, int]

#: Top-level modules whose frames are framework, never the user's.
DEFAULT_EXCLUDES: Final[tuple[str, ...]] = (
    "pytest",
    "_pytest",
    "pluggy",
    "xdist",
    "execnet",
    "pytest_memguard",
    "tracemalloc",
    "importlib",
)
_SITE_DIRS: Final = tuple(f"{os.sep}{name}{os.sep}" for name in ("site-packages", "dist-packages"))


def _normal(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def _prefixes(paths: Iterable[str], *, directory: bool = True) -> tuple[str, ...]:
    """Normalised path prefixes, each both as given and with symlinks resolved."""
    found: set[str] = set()
    for path in paths:
        for variant in (_normal(path), os.path.normcase(os.path.realpath(path))):
            found.add(variant.rstrip(os.sep) + os.sep if directory else variant)
    return tuple(sorted(found))


def _module_paths(name: str) -> tuple[list[str], list[str]]:
    """The package directories and the module files of ``name``, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a module without a spec, a broken parent
        return [], []
    if spec is None:
        return [], []
    if spec.submodule_search_locations:
        return list(spec.submodule_search_locations), []
    if spec.origin and os.path.isabs(spec.origin):
        return [], [spec.origin]
    return [], []


def _library_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    dirs = [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib", "scripts")]
    dirs.append(os.path.dirname(os.__file__))
    dirs.extend(getattr(site, "getsitepackages", list)())
    if site.ENABLE_USER_SITE and sys.flags.no_user_site == 0:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if d]


class SiteRules:
    """Classifies traceback files and finds the site of an allocation.

    Kinds are cached per file name; the cache is safe to share between threads (a lost
    race computes the same answer twice).

    :param exclude: top-level module names whose frames are framework (see
        :data:`DEFAULT_EXCLUDES`); names that cannot be found are ignored
    """

    __slots__ = ("_excluded", "_excluded_files", "_excluded_pseudo", "_kinds", "_library")

    def __init__(self, exclude: Iterable[str] = DEFAULT_EXCLUDES) -> None:
        names = tuple(exclude)
        dirs: list[str] = []
        files: list[str] = []
        for name in names:
            more_dirs, more_files = _module_paths(name)
            dirs += more_dirs
            files += more_files
        self._excluded = _prefixes(dirs)
        self._excluded_files = frozenset(_prefixes(files, directory=False))
        # Frozen modules report "<frozen importlib._bootstrap>" instead of a path.
        self._excluded_pseudo = tuple(f"<frozen {name}{end}" for name in names for end in ".>")
        self._library = _prefixes(_library_dirs())
        self._kinds: dict[str, FrameKind] = {}

    def kind(self, filename: str) -> FrameKind:
        """Whether ``filename`` is user code, a library or an excluded framework."""
        kind = self._kinds.get(filename)
        if kind is None:
            kind = self._kinds[filename] = self._classify(filename)
        return kind

    def _classify(self, filename: str) -> FrameKind:
        if filename.startswith("<"):
            if filename.startswith(self._excluded_pseudo):
                return "excluded"
            return "user" if filename.startswith("<doctest ") else "library"
        path = _normal(filename)
        kind = self._kind_of_path(path)
        real = os.path.normcase(os.path.realpath(filename))
        if kind == "user" and real != path:  # a symlinked install is still a library
            kind = self._kind_of_path(real)
        return kind

    def _kind_of_path(self, path: str) -> FrameKind:
        if path in self._excluded_files or path.startswith(self._excluded):
            return "excluded"
        if path.startswith(self._library) or any(part in path for part in _SITE_DIRS):
            return "library"
        return "user"

    def site(self, frames: Sequence[Frame]) -> Frame | None:
        """The ``(file, line)`` an allocation belongs to, or None for framework bookkeeping.

        :param frames: ``(filename, lineno)`` pairs, innermost first (the order of
            tracemalloc's raw traces; reverse a :class:`tracemalloc.Traceback` first)
        """
        library: Frame | None = None
        for frame in frames:
            kind = self.kind(frame[0])
            if kind == "user":
                return frame
            if kind == "excluded":
                return None  # the framework allocated on its own behalf, whoever called it
            if library is None:
                library = frame
        return library


@lru_cache(maxsize=8)
def _cached_rules(exclude: tuple[str, ...]) -> SiteRules:
    return SiteRules(exclude)


def site_rules(exclude: Iterable[str] = DEFAULT_EXCLUDES) -> SiteRules:
    """The shared :class:`SiteRules` for ``exclude``, built on first use."""
    return _cached_rules(tuple(exclude))


def display_path(filename: str, root: str | os.PathLike[str] | None = None) -> str:
    """``filename`` relative to ``root`` when it lies under it, else unchanged."""
    if root is None or filename.startswith("<"):
        return filename
    try:
        return str(Path(filename).resolve().relative_to(Path(root).resolve()))
    except (ValueError, OSError):
        return filename


@dataclass(frozen=True)
class Site:
    """One allocation site: ``file:line``, the bytes it holds and how many blocks."""

    file: str
    line: int
    size: int
    count: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {format_size(self.size)} in {self.count} blocks"

    def to_json(self) -> dict[str, Any]:
        """The site as the JSON report writes it."""
        return {"file": self.file, "line": self.line, "size": self.size, "count": self.count}
