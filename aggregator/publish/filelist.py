"""A list of file paths kept as strings: what a build reports it wrote or removed.

A first export writes a file per post (50,000 for the benchmark, 250,000 at 5,000 feeds) and the
report lists every one. A `Path` costs ~450 bytes against ~110 for the same path as a `str`, and
a Jekyll part done in a worker process sends its list back by pickle, so the list keeps strings
and hands out `Path`s one at a time. It behaves as a read-only sequence of `Path`s that can be
appended to and extended.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload


class FileList(Sequence[Path]):
    __slots__ = ("_items",)

    def __init__(self, paths: Iterable[str | os.PathLike[str]] = ()) -> None:
        self._items: list[str] = []
        self.extend(paths)

    def append(self, path: str | os.PathLike[str]) -> None:
        self._items.append(os.fspath(path))

    def extend(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        if isinstance(paths, FileList):
            self._items.extend(paths._items)  # no Path made and dropped per item
        else:
            self._items.extend(os.fspath(p) for p in paths)

    def __iadd__(self, paths: Iterable[str | os.PathLike[str]]) -> FileList:
        self.extend(paths)
        return self

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Path: ...
    @overload
    def __getitem__(self, index: slice) -> list[Path]: ...
    def __getitem__(self, index: int | slice) -> Path | list[Path]:
        if isinstance(index, slice):
            return [Path(p) for p in self._items[index]]
        return Path(self._items[index])

    def __iter__(self) -> Iterator[Path]:
        return (Path(p) for p in self._items)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (str, os.PathLike)) and os.fspath(path) in self._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileList):
            return self._items == other._items
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like list

    def __repr__(self) -> str:
        return f"FileList({self._items!r})"

    def __getstate__(self) -> list[str]:
        return self._items

    def __setstate__(self, state: list[str]) -> None:
        self._items = state
