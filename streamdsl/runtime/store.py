"""State stores: where operator state lives (never in ad-hoc attributes).

A store is a named dict-like map owned by one operator. Stores can be snapshotted (a deep,
picklable copy) and restored, measured (``len``), and entries are deleted as soon as a window
closes, so state stays bounded on an endless stream with a bounded number of keys.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator

__all__ = ["KeyValueStore", "StoreSet"]


class KeyValueStore:
    """An in-memory key-value store."""

    __slots__ = ("name", "_data")

    def __init__(self, name: str):
        self.name = name
        self._data: dict[Any, Any] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        return self._data.get(key, default)

    def put(self, key: Any, value: Any) -> None:
        self._data[key] = value

    def delete(self, key: Any) -> None:
        self._data.pop(key, None)

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Iterator[tuple[Any, Any]]:
        return iter(list(self._data.items()))

    def keys(self) -> list[Any]:
        return list(self._data)

    def clear(self) -> None:
        self._data.clear()

    @property
    def data(self) -> dict:
        """The underlying dict, for operators' hot paths. It stays the same object for the
        store's lifetime (``restore`` refills it), so an operator may keep a reference."""
        return self._data

    def snapshot(self, live: bool = False) -> dict:
        """A copy of the store's data; ``live=True``: the data itself, for a caller that
        serializes it at once (pickling copies it anyway)."""
        return self._data if live else copy.deepcopy(self._data)

    def restore(self, data: dict) -> None:
        self._data.clear()
        self._data.update(copy.deepcopy(data))


class StoreSet:
    """The stores of one operator, by name."""

    def __init__(self, operator: str):
        self.operator = operator
        self._stores: dict[str, KeyValueStore] = {}

    def kv(self, name: str) -> KeyValueStore:
        s = self._stores.get(name)
        if s is None:
            s = self._stores[name] = KeyValueStore(f"{self.operator}.{name}")
        return s

    def sizes(self) -> dict[str, int]:
        return {n: len(s) for n, s in self._stores.items()}

    def snapshot(self, live: bool = False) -> dict:
        return {n: s.snapshot(live) for n, s in self._stores.items()}

    def restore(self, snap: dict) -> None:
        for n, data in snap.items():
            self.kv(n).restore(data)
