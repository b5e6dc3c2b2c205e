"""The name registry: did-you-mean errors, registration order, and the name written onto the object."""

from __future__ import annotations

import pytest

from zsseg_bench.errors import ZsbenchError
from zsseg_bench.methods import IMPLEMENTATIONS
from zsseg_bench.registry import Registry


def test_register_writes_the_name_onto_the_object_once():
    things = Registry("thing", name_attribute="impl")

    @things.register("b-thing")
    class B:
        pass

    @things.register("a-thing")
    class A:
        pass

    assert (A.impl, B.impl) == ("a-thing", "b-thing")
    assert things.names() == ["a-thing", "b-thing"] and [n for n, _ in things.items()] == ["b-thing", "a-thing"]
    with pytest.raises(ValueError, match="registered twice"):
        things.register("a-thing")(B)
    with pytest.raises(ZsbenchError, match="unknown thing 'a-thin'.*a-thing"):
        things.get("a-thin")


def test_every_implementation_answers_the_name_it_is_registered_under():
    for name in IMPLEMENTATIONS:
        assert IMPLEMENTATIONS.get(name).impl == name
    assert IMPLEMENTATIONS.get("spnet+st").impl == "spnet+st"  # derived by the self-training resolver


def test_a_registry_without_a_name_attribute_leaves_objects_alone():
    plain = Registry("plain")
    obj = plain.register("x")(lambda: None)
    assert not hasattr(obj, "impl") and plain.get("x") is obj
