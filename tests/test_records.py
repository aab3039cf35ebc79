"""``@record`` behaves as ``@dataclass(frozen=True)``: the same class defined both ways is compared."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any

import pytest

from autoglm_doctor.records import record


def _define(decorator: Any) -> Any:
    @decorator
    class Point:
        """A record with every kind of field the doctor uses."""

        x: int
        y: str = "origin"
        tags: list[str] = field(default_factory=list)
        note: str = field(default="", compare=False, repr=False)
        cache: tuple[int, ...] = field(default=(), hash=False)

    return Point


Record = _define(record)
Reference = _define(dataclass(frozen=True))

CASES: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1,), {}),
    ((1, "a"), {}),
    ((2,), {"tags": ["t"]}),
    ((), {"x": 3, "y": "b", "tags": ["u", "v"], "note": "ignored by eq", "cache": (1,)}),
    ((3, "b", ["u", "v"], "another note", (1,)), {}),
]


@pytest.mark.parametrize(("args", "kwargs"), CASES)
def test_init_repr_and_fields_match_dataclass(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    mine, theirs = Record(*args, **kwargs), Reference(*args, **kwargs)
    assert repr(mine) == repr(theirs).replace("Reference", "Record")
    assert dataclasses.asdict(mine) == dataclasses.asdict(theirs)
    assert [f.name for f in dataclasses.fields(mine)] == [f.name for f in dataclasses.fields(theirs)]
    assert dataclasses.is_dataclass(mine)


def test_init_signature_matches_dataclass_once_compiled() -> None:
    Record(0)  # __init__ is compiled when a class makes its first instance
    mine, theirs = inspect.signature(Record).parameters, inspect.signature(Reference).parameters
    assert list(mine) == list(theirs)
    plain = [name for name in mine if name != "tags"]  # a factory's placeholder differs
    assert [mine[n].default for n in plain] == [theirs[n].default for n in plain]


@pytest.mark.parametrize(("left", "right"), [(a, b) for a in CASES for b in CASES])
def test_equality_and_hash_match_dataclass(left: Any, right: Any) -> None:
    mine = (Record(*left[0], **left[1]), Record(*right[0], **right[1]))
    theirs = (Reference(*left[0], **left[1]), Reference(*right[0], **right[1]))
    assert (mine[0] == mine[1]) is (theirs[0] == theirs[1])
    frozen_tags = [dataclasses.replace(o, tags=tuple(o.tags)) for o in mine]  # lists are unhashable
    reference_tags = [dataclasses.replace(o, tags=tuple(o.tags)) for o in theirs]
    assert (hash(frozen_tags[0]) == hash(frozen_tags[1])) is (hash(reference_tags[0]) == hash(reference_tags[1]))


def test_compare_false_fields_and_other_classes() -> None:
    assert Record(1, note="a") == Record(1, note="b")
    assert Record(1) != Reference(1)
    assert Record(1).__eq__(object()) is NotImplemented
    assert Record(1, cache=(1,)) != Record(1, cache=(2,))  # hash=False still compares
    assert hash(Record(1, tags=(), cache=(1,))) == hash(Record(1, tags=(), cache=(2,)))  # type: ignore[arg-type]


def test_default_factory_gives_each_instance_its_own_value() -> None:
    first, second = Record(1), Record(2)
    first.tags.append("mine")
    assert second.tags == []
    assert Record(1, tags=["given"]).tags == ["given"]


def test_frozen_like_dataclass() -> None:
    point = Record(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.y
    assert dataclasses.replace(point, x=5) == Record(5)
    assert point.x == 1


def test_wrong_arguments_fail_as_with_dataclass() -> None:
    for cls in (Record, Reference):
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls(1, unknown=2)


def test_unsupported_features_are_refused_loudly() -> None:
    with pytest.raises(TypeError, match="__post_init__"):

        @record
        class WithPostInit:
            a: int

            def __post_init__(self) -> None:
                pass

    with pytest.raises(TypeError, match="init=False"):

        @record
        class WithHiddenField:
            a: int = field(default=0, init=False)


def test_init_is_compiled_at_the_first_instance_only() -> None:
    @record
    class Lazy:
        """Never instantiated before this test."""

        a: int
        b: str = "b"

    class Child(Lazy):
        """A plain subclass whose first instance comes before its parent's."""

    stub = Lazy.__init__
    assert Child(1, "c") == Child(1, "c")
    compiled = Lazy.__init__
    assert compiled is not stub and "Lazy.__init__" in compiled.__qualname__
    assert Lazy(2).b == "b" and Lazy.__init__ is compiled  # compiled once, for the class that declares it
    with pytest.raises(TypeError):
        Lazy()


def test_a_record_without_docstring_is_documented_by_its_fields() -> None:
    @record
    class Bare:
        a: int
        b: str = ""

    assert Bare.__doc__ == "Bare(a, b)"  # not dataclass's inspect.signature text: that costs ~10 ms
