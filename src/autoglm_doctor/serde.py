"""Turn the snapshot's dataclasses into JSON-ready data and back, driven by type hints.

Small on purpose: the snapshot only uses dataclasses, ``str``/``int``/``float``/``bool``,
``None``, ``list``, ``tuple`` (homogeneous), ``dict[str, X]`` and unions with ``None``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar, Union

T = TypeVar("T")


class SerdeError(ValueError):
    """The data does not have the shape the dataclass expects."""


def to_data(obj: Any) -> Any:
    """Convert a dataclass tree to plain JSON-ready data (dicts, lists, scalars)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_data(v) for k, v in obj.items()}
    return obj


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_data(cls: type[T], data: Any, path: str = "$") -> T:
    """Build ``cls`` from plain data, raising :class:`SerdeError` naming the bad path."""
    return typing.cast(T, _convert(cls, data, path))


def _convert(tp: Any, data: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return data
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, data, path)
            except SerdeError as exc:
                errors.append(str(exc))
        raise SerdeError(errors[0] if errors else f"{path}: unexpected value")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise SerdeError(f"{path}: expected an object, got {type(data).__name__}")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{path}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SerdeError(f"{path}: missing field {f.name!r}")
        return tp(**kwargs)
    if origin in (list, tuple):
        if not isinstance(data, list):
            raise SerdeError(f"{path}: expected a list, got {type(data).__name__}")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        items = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(data)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(data, dict):
            raise SerdeError(f"{path}: expected an object, got {type(data).__name__}")
        _, value_type = typing.get_args(tp)
        return {str(k): _convert(value_type, v, f"{path}.{k}") for k, v in data.items()}
    if tp is float:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
        raise SerdeError(f"{path}: expected a number, got {type(data).__name__}")
    if tp in (str, int, bool):
        if type(data) is tp:
            return data
        raise SerdeError(f"{path}: expected {tp.__name__}, got {type(data).__name__}")
    if tp is type(None):
        if data is None:
            return None
        raise SerdeError(f"{path}: expected null")
    raise SerdeError(f"{path}: unsupported type {tp!r}")
