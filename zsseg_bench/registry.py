"""A small name -> object registry with did-you-mean errors.

Implementations register themselves with a decorator; the name is declared once and used as
the key everywhere (method cards, run ids, table rows). A registry made with `name_attribute`
also writes the name onto each registered object (method classes answer `impl` that way), so
no class repeats its own name. Entries keep their registration order (`items()`); `names()`
is sorted, for listings and error messages.

Plugins: `ZSBENCH_PLUGINS` names importable modules (comma-separated) that register methods or
datasets of their own from outside the package. `load_plugins` imports each once; the method and
dataset packages call it after registering their own entries, so a plugin sees a complete
package. Nothing is imported that the variable does not name: card and split files are data only.
"""

from __future__ import annotations

import importlib
import os
from typing import Callable, Generic, Iterator, TypeVar

from zsseg_bench.errors import ZsbenchError, did_you_mean

__all__ = ["Registry", "load_plugins", "PLUGINS_VARIABLE"]

PLUGINS_VARIABLE = "ZSBENCH_PLUGINS"
_imported: set[str] = set()  # plugin modules already imported (or being imported) in this process

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

    def check_name(self, name: str) -> str:
        """`name` if it resolves, else ValueError (a schema validator: pydantic turns it into the
        config error line, with the did-you-mean and the registered names)."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())}; "
                             f"known: {', '.join(self.names())}")
        return name

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, object) of every registered entry, in registration order."""
        return list(self._entries.items())

    def __contains__(self, name: str) -> bool:
        return name in self._entries or self._resolve(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def load_plugins() -> list[str]:
    """Import every module named in ZSBENCH_PLUGINS that is not imported yet; return their names."""
    names = [n.strip() for n in os.environ.get(PLUGINS_VARIABLE, "").split(",") if n.strip()]
    new = [n for n in names if n not in _imported]
    for name in new:
        _imported.add(name)  # before the import: a plugin that imports the registries does not re-enter
        try:
            importlib.import_module(name)
        except ZsbenchError:
            raise
        except ModuleNotFoundError as exc:
            _imported.discard(name)
            if exc.name and name.startswith(exc.name):
                raise ZsbenchError(f"{PLUGINS_VARIABLE}: cannot import module {name!r} (no such module); put the "
                                   f"folder that holds {name.split('.')[0]}.py on PYTHONPATH, or fix the name") from None
            raise ZsbenchError(f"{PLUGINS_VARIABLE}: module {name!r} imports {exc.name!r}, which is not installed; "
                               f"install it or fix the module") from None
        except Exception as exc:
            _imported.discard(name)
            raise ZsbenchError(f"{PLUGINS_VARIABLE}: module {name!r} failed while importing ({type(exc).__name__}: "
                               f"{exc}); fix the module or remove it from {PLUGINS_VARIABLE}") from None
    return new
