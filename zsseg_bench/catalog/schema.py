"""Typed, strict config sections: the machinery every config schema is built from.

A schema is a tree of `Section`s (pydantic models): unknown keys are refused, types are strict
(the string "fast" is not a learning rate, `true` is not an iteration count, an integer is
accepted where a float is expected) and floats must be finite (a YAML `.nan` is refused).
`checked` validates a mapping against a section and returns it as plain data with the schema's
defaults filled in, or raises ONE `ZsbenchError` line naming the file, the dotted key, what is
wrong, a did-you-mean and the keys that section does have:

    methods/spnet/spnet.yaml: train.iteratons: unknown key (did you mean 'iterations'?); spnet's
    train keys: head_lr_mult, iterations, lr, ...

Sections whose keys depend on one of their values (`backbone.name`, `embeddings.provider`)
are `Dispatched`: the value picks the concrete section from a registry, whose entries carry
it as their `options` attribute (`declare_options`).
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Callable, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from zsseg_bench.errors import ZsbenchError, did_you_mean

__all__ = ["Section", "Dispatched", "checked", "describe_error", "section_at", "declare_options",
           "PositiveInt", "NonNegativeInt", "PositiveFloat", "NonNegativeFloat", "Dropout", "Fraction"]

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Dropout = Annotated[float, Field(ge=0, lt=1)]
Fraction = Annotated[float, Field(gt=0, lt=1)]


class Section(BaseModel):
    """One mapping of a config. `omit_if_default` names keys left out of the plain data while they
    hold their default (None: "decided elsewhere", e.g. by the device), so code that falls back
    on their absence keeps doing so."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
    omit_if_default: ClassVar[tuple[str, ...]] = ()
    unlisted: ClassVar[tuple[str, ...]] = ()  # valid keys not worth listing in an error (bookkeeping, legacy)

    @model_serializer(mode="wrap")
    def _plain(self, handler):
        out = handler(self)
        for key in self.omit_if_default:
            if key in out and out[key] == type(self).model_fields[key].get_default(call_default_factory=True):
                del out[key]
        return self._finish_dump(out)

    def _finish_dump(self, out: dict) -> dict:
        """A subclass's last word on its plain data."""
        return out


class Dispatched(Section):
    """A section whose concrete schema is chosen by the value of `dispatch_key` (a subclass sets
    `dispatch_key` and `lookup`; the concrete sections subclass it and are returned by `lookup`)."""

    dispatch_key: ClassVar[str] = ""

    @classmethod
    def lookup(cls, name) -> type[Section] | None:
        raise NotImplementedError

    @classmethod
    def concrete(cls, data) -> type[Section] | None:
        """The section `data` is validated against (None: its dispatch value is not registered)."""
        if "dispatch_key" not in cls.__dict__:
            return cls  # a concrete section
        name = data.get(cls.dispatch_key) if isinstance(data, dict) else None
        if name is None:
            name = cls.model_fields[cls.dispatch_key].default
        return cls.lookup(name) if isinstance(name, str) else None

    @model_validator(mode="wrap")
    @classmethod
    def _dispatch(cls, data, handler, info):
        if "dispatch_key" not in cls.__dict__ or not isinstance(data, dict):
            return handler(data)
        target = cls.concrete(data)
        if target is None:  # validate the key alone: its own check names what is registered (or that it is missing)
            return handler({k: v for k, v in data.items() if k == cls.dispatch_key})
        return handler(data) if target is cls else target.model_validate(data, context=info.context)


def declare_options(model: type[Section]) -> Callable:
    """Decorator: the registered object (a builder or provider function) takes the keys of `model`."""

    def decorate(obj):
        obj.options = model
        return obj

    return decorate


def checked(model: type[Section], data, *, where: str, owner: str, prefix: tuple = ()) -> dict:
    """`data` validated against `model`, as plain data with the defaults filled in."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        key = ".".join(prefix) or "the config"
        raise ZsbenchError(f"{where}: {key}: {data!r} is not a mapping; write it as key: value pairs")
    try:
        return model.model_validate(data).model_dump()
    except ValidationError as exc:
        raise ZsbenchError(describe_error(exc, model, data, where=where, owner=owner, prefix=prefix)) from None


# ---- walking a schema ------------------------------------------------------------------------------
def _section_type(annotation) -> type[Section] | None:
    """The Section class inside an annotation (X, X | None, Annotated[X, ...]), or None."""
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return annotation
    if typing.get_origin(annotation) in (Annotated, typing.Union) or type(annotation).__name__ == "UnionType":
        for arg in typing.get_args(annotation):
            found = _section_type(arg)
            if found is not None:
                return found
    return None


def section_at(model: type[Section], data, path) -> tuple[type[Section] | None, Any]:
    """(the section class at `path` inside `model`, the data there); (None, ...) where the path
    leaves the schema (an unknown key, or a value that is not a section)."""
    current: type[Section] | None = (model.concrete(data) or model) if issubclass(model, Dispatched) else model
    for part in path:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None, None
        data = data.get(part) if isinstance(data, dict) else None
        current = _section_type(current.model_fields[part].annotation)
        if current is not None and issubclass(current, Dispatched):
            current = current.concrete(data) or current
    return current, data


# ---- one line per validation error -----------------------------------------------------------------
_KINDS = {
    "int_type": "is not an integer", "float_type": "is not a number", "bool_type": "is not true or false",
    "string_type": "is not a string", "list_type": "is not a list", "dict_type": "is not a mapping",
    "model_type": "is not a mapping", "dataclass_type": "is not a mapping", "tuple_type": "is not a list",
    "finite_number": "is not a finite number",
}


def _what(err: dict, field) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return "missing; " + (field.description if field is not None and field.description
                              else "the card (or --set) must give it")
    if kind in _KINDS:
        return f"{value!r} {_KINDS[kind]}"
    bounds = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"), "less_than_equal": ("<=", "le"),
              "less_than": ("<", "lt")}
    if kind in bounds:
        op, name = bounds[kind]
        return f"{value!r} must be {op} {ctx.get(name)}"
    if kind == "literal_error":
        return f"{value!r} is not one of {ctx.get('expected')}"
    if kind == "too_short":
        return f"{value!r} needs at least {ctx.get('min_length')} values"
    if kind == "too_long":
        return f"{value!r} takes at most {ctx.get('max_length')} values"
    message = str(err.get("msg", kind))
    return message.removeprefix("Value error, ")


def _dotted(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _unknown_key(model, data, loc, value) -> str:
    """What to say about an unknown key: did-you-mean among its neighbours, and when it is a whole
    section that does not exist, the sections that do have its keys (train.iterations on CaGNet:
    step1.iterations, finetune.iterations)."""
    parent, _ = section_at(model, data, loc[:-1])
    name = loc[-1]
    siblings = list(parent.model_fields) if parent is not None else []
    hint = did_you_mean(name, siblings)
    if not hint and isinstance(value, dict) and value and parent is not None:
        leaf = next(iter(value))
        homes = [f"{s}.{leaf}" for s in siblings
                 if (sub := section_at(parent, None, (s,))[0]) is not None and leaf in sub.model_fields]
        if homes:
            hint = " (did you mean " + " or ".join(repr(h) for h in homes) + "?)"
    return f"unknown key{hint}"


def describe_error(exc: ValidationError, model: type[Section], data, *, where: str, owner: str,
                   prefix: tuple = ()) -> str:
    """The first error of `exc` as one line: file, dotted key, what is wrong, the section's keys."""
    errors = exc.errors()
    # An unknown key first: a mistyped key also leaves the intended one missing.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in err["loc"] if isinstance(p, (str, int)))
    section, _ = section_at(model, data, loc)
    if section is None or err["type"] in ("extra_forbidden", "missing") or not loc:
        section_loc = tuple(p for p in loc[:-1]) if loc else ()
        while section_loc and section_at(model, data, section_loc)[0] is None:
            section_loc = section_loc[:-1]
        section, _ = section_at(model, data, section_loc)
    else:
        section_loc = loc
    if err["type"] == "extra_forbidden":
        what = _unknown_key(model, data, loc, err.get("input"))
        value = err.get("input")
        while isinstance(value, dict) and value:  # name the first key set under an unknown section
            leaf = next(iter(value))
            loc, value = loc + (leaf,), value[leaf]
    else:
        parent, _ = section_at(model, data, loc[:-1])
        field = parent.model_fields.get(loc[-1]) if parent is not None and loc else None
        what = _what(err, field)
    key = _dotted(prefix + loc) or "the config"
    label = _dotted(prefix + section_loc)
    keys = ", ".join(sorted(set(section.model_fields) - set(section.unlisted))) if section is not None else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    whose = f"{owner}'s " if owner else ""
    listing = f"; {whose}{label + ' ' if label else ''}keys: {keys}" if keys else ""
    return f"{where}: {key}: {what}{more}{listing}"
