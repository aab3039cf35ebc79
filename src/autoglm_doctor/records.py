"""``@record``: ``@dataclass(frozen=True)`` at a quarter of the import cost.

Every fact, finding and spec in the doctor is an immutable record, and a ``check`` run loads
about seventy of them. CPython before 3.13 compiles each method that ``dataclass(frozen=True)``
generates (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``,
``__delattr__``) with a separate ``exec``: about 1.3 ms per class, ~90 ms of the doctor's
start-up on 3.11. Here only ``__init__`` is generated (one ``exec``, when the class makes its
first instance); the other methods are shared functions that read the class's field names,
which costs nothing per class.

The result *is* a dataclass: :func:`dataclasses.fields`, :func:`dataclasses.replace`,
:func:`dataclasses.asdict` and :func:`dataclasses.is_dataclass` work, and
:class:`dataclasses.field` options (``default``, ``default_factory``, ``compare``, ``repr``,
``hash``) mean what they mean there. Equality, hashing, ``repr`` and immutability behave as
with ``dataclass(frozen=True)`` (``tests/test_records.py`` compares the two).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
elif sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - Python 3.10: the marker only matters to type checkers

    def dataclass_transform(**_: Any) -> Any:
        """Stand-in for :func:`typing.dataclass_transform`, which 3.10 lacks."""
        return lambda func: func


T = TypeVar("T")

_NO_ARGUMENT = object()  # a default_factory field's "not given"


def _setattr(self: object, name: str, value: object) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: object, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _compared(self: Any) -> tuple[Any, ...]:
    return tuple(getattr(self, name) for name in self.__record_compare__)


def _eq(self: Any, other: object) -> Any:
    if other.__class__ is self.__class__:
        return _compared(self) == _compared(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, name) for name in self.__record_hash__))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_repr__)
    return f"{self.__class__.__qualname__}({shown})"


def _compile_init(cls: Any) -> Any:
    """The ``__init__`` that ``dataclass(frozen=True)`` would generate for ``cls``, in one ``exec``."""
    namespace: dict[str, Any] = {"_set": object.__setattr__, "_NO_ARGUMENT": _NO_ARGUMENT}
    params, body = [], []
    for index, item in enumerate(dataclasses.fields(cls)):
        name = item.name
        value = name
        if item.default is not dataclasses.MISSING:
            namespace[f"_default_{index}"] = item.default
            params.append(f"{name}=_default_{index}")
        elif item.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{index}"] = item.default_factory
            params.append(f"{name}=_NO_ARGUMENT")
            value = f"_factory_{index}() if {name} is _NO_ARGUMENT else {name}"
        else:
            params.append(name)
        body.append(f"    _set(self, {name!r}, {value})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(source, namespace)  # noqa: S102 - source built from field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init


def _first_init(self: Any, *args: Any, **kwargs: Any) -> None:
    """A record's ``__init__`` until its first instance: compile the real one, install it, run it.

    Most record classes are never instantiated in a given run (a python-only check builds no
    weights or config facts), so they never pay for the compilation.
    """
    owner = next(klass for klass in type(self).__mro__ if klass.__dict__.get("__init__") is _first_init)
    init = _compile_init(owner)
    type.__setattr__(owner, "__init__", init)
    init(self, *args, **kwargs)


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: type[T]) -> type[T]:
    """Make ``cls`` a frozen dataclass, as ``@dataclass(frozen=True)`` does (see the module)."""
    if "__post_init__" in cls.__dict__ or "__slots__" in cls.__dict__:
        raise TypeError(f"@record does not support __post_init__ or __slots__ ({cls.__qualname__}); use @dataclass")
    if not cls.__doc__:  # else dataclass() would make one from inspect.signature (tokenize: ~10 ms)
        cls.__doc__ = f"{cls.__name__}({', '.join(cls.__dict__.get('__annotations__', {}))})"
    made: Any = dataclasses.dataclass(cls, init=False, repr=False, eq=False)  # fields only: no exec
    fields = dataclasses.fields(made)
    if not all(item.init for item in fields):
        raise TypeError(f"@record does not support field(init=False) ({cls.__qualname__}); use @dataclass")
    attrs: dict[str, Any] = {
        "__init__": _first_init,
        "__repr__": _repr,
        "__eq__": _eq,
        "__hash__": _hash,
        "__setattr__": _setattr,
        "__delattr__": _delattr,
        "__record_compare__": tuple(f.name for f in fields if f.compare),
        "__record_hash__": tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash)),
        "__record_repr__": tuple(f.name for f in fields if f.repr),
    }
    for name, value in attrs.items():
        type.__setattr__(made, name, value)
    return cls
