"""A bounded in-memory cache, least recently used out first: what the dedup verifiers keep of the references
they see again and again (features, residuals, rotated views)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class Lru(OrderedDict):
    """At most ``size`` entries; iterating gives the keys, least recently used first."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value kept for ``key``, or ``make()``'s, kept (the least recently used dropped beyond ``size``)."""
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        if len(self) > self.size:
            self.popitem(last=False)
        return value
