"""A small name -> object registry with did-you-mean errors.

Implementations register themselves with a decorator; the name is declared once and used as
the key everywhere (method cards, run ids, table rows). A registry made with `name_attribute`
also writes the name onto each registered object (method classes answer `impl` that way), so
no class repeats its own name. Entries keep their registration order (`items()`); `names()`
is sorted, for listings and error messages.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from zsseg_bench.errors import ZsbenchError, did_you_mean

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, name_attribute: str | None = None):
        self.kind = kind
        self.name_attribute = name_attribute
        self._entries: dict[str, T] = {}
        # Fallbacks for derived names (e.g. '<impl>+st' for self-training): name -> object or None.
        self._resolvers: list[Callable[[str], T | None]] = []

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            if self.name_attribute is not None:
                setattr(obj, self.name_attribute, name)
            self._entries[name] = obj
            return obj

        return decorator

    def add_resolver(self, resolver: Callable[[str], "T | None"]) -> None:
        """Resolve names that are not registered but derived from registered ones, on demand."""
        self._resolvers.append(resolver)

    def _resolve(self, name: str) -> T | None:
        for resolver in self._resolvers:
            obj = resolver(name)
            if obj is not None:
                return obj
        return None

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            obj = self._resolve(name)
            if obj is not None:
                return obj
            raise ZsbenchError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, self._entries)}; "
                f"available: {', '.join(sorted(self._entries))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, object) of every registered entry, in registration order."""
        return list(self._entries.items())

    def __contains__(self, name: str) -> bool:
        return name in self._entries or self._resolve(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
