"""A small thread-safe LRU cache: query texts' vectors and zero-shot label vectors are kept in one."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """Keeps the ``size`` most recently used values.

    Args:
        size: how many values to keep (at least 1).
    """

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        """The value, marked as just used, or None."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_many(self, keys: Sequence[K], compute: Callable[[list[K]], Sequence[V]]) -> list[V]:
        """The values of ``keys`` in order; the missing ones are computed together in one call of ``compute``.

        ``compute`` runs outside the lock, so a slow computation doesn't block readers of other keys.
        """
        missing = [key for key in dict.fromkeys(keys) if key not in self._items]
        fresh = dict(zip(missing, compute(missing), strict=True)) if missing else {}
        for key, value in fresh.items():
            self.put(key, value)
        with self._lock:
            self.misses += len(missing)
            self.hits += len(keys) - len(missing)
        out: list[V] = []
        for key in keys:
            found = fresh.get(key)
            if found is None:
                found = self.get(key)
            out.append(found if found is not None else compute([key])[0])  # None: evicted meanwhile
        return out
