"""schemastrict — a JSON value held strictly to one of authentik's API
models, as authentik's published client (authentik-client on PyPI,
generated from authentik's OpenAPI schema) describes them.

The generated pydantic models are lenient on purpose: they drop unknown
keys, a missing optional key and an explicit null look alike, and a few
types coerce (a date-time accepts many spellings). problems() checks what
they let through, from the same models:

* every key of the object is a property of the model (by its JSON alias),
  unless the model takes additional properties (ValidationError);
* every required property is present;
* null only where the schema says the property is nullable: the
  generator marks each nullable property in the model's to_dict() with
  "# set to None if NAME (nullable) is None", and a required property
  typed Optional without a default is nullable too;
* every value has the declared type, recursively: StrictStr, StrictInt
  (no booleans), StrictBool, numbers, enums (their values), UUIDs (the
  canonical dashed form), date-times (RFC 3339, an offset or Z required),
  lists, free-form objects and nested models; string length and pattern
  constraints of the field;
* then the model's own validation (from_dict) must accept it too, which
  adds its field validators (e.g. the identifier's slug pattern).

Problems name the path, the property and the types, never a value: a
value may be a token key.

Needs the venv (`make venv`): build/venv/bin/python.
"""
import enum
import inspect
import re
import types
import typing
import uuid
from datetime import datetime

import annotated_types
import pydantic
from pydantic import BaseModel

_NULLABLE_RE = re.compile(r"# set to None if (\w+) \(nullable\) is None")
_UUID_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                      r"[0-9a-f]{12}\Z", re.I)
# RFC 3339 date-time (OpenAPI's format: date-time).
_DATETIME_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}"
                          r"(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")


def json_type(v):
    """The JSON type name of \\p v (for messages: never the value)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def nullable_fields(model):
    """Names of \\p model's properties the schema marks nullable."""
    try:
        src = inspect.getsource(model.to_dict)
    except (OSError, TypeError):
        src = ""
    return set(_NULLABLE_RE.findall(src))


def _strip_optional(ann):
    """(annotation without None, whether None was allowed)."""
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(ann)
        rest = [a for a in args if a is not type(None)]
        if len(rest) < len(args):
            if len(rest) == 1:
                return rest[0], True
            return typing.Union[tuple(rest)], True
    return ann, False


class Field:
    """One property of a model: JSON name, annotation, required, nullable,
    constraints."""

    def __init__(self, model, name, info, nullable_names):
        self.name = info.alias or name
        ann, optional = _strip_optional(info.annotation)
        self.annotation = ann
        self.required = info.is_required()
        self.nullable = name in nullable_names or (optional and
                                                   self.required)
        self.metadata = list(info.metadata)


def model_fields(model):
    """{JSON name: Field} of \\p model, and whether it takes additional
    properties."""
    nullable = nullable_fields(model)
    out = {}
    extra = False
    for name, info in model.model_fields.items():
        if name == "additional_properties":
            extra = True
            continue
        f = Field(model, name, info, nullable)
        out[f.name] = f
    return out, extra


def _check_constraints(metadata, v, where, out):
    for m in metadata:
        if isinstance(m, annotated_types.MaxLen) and len(v) > m.max_length:
            out.append("%s: longer than %d" % (where, m.max_length))
        elif isinstance(m, annotated_types.MinLen) and len(v) < m.min_length:
            out.append("%s: shorter than %d" % (where, m.min_length))
        elif getattr(m, "pattern", None) and isinstance(v, str) and \
                not re.search(m.pattern, v):
            out.append("%s: does not match its pattern" % where)


def check_value(ann, v, where, out, metadata=()):
    """Appends to \\p out what is wrong with \\p v as a value of \\p ann."""
    ann, optional = _strip_optional(ann)
    if v is None:
        if not optional:
            out.append("%s: null where the schema wants a value" % where)
        return
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Annotated:
        check_value(args[0], v, where, out, list(metadata) + list(args[1:]))
        return
    strict = any(isinstance(m, pydantic.Strict) for m in metadata)
    del strict  # every scalar is checked strictly, as the schema's types
    if ann is typing.Any:
        return
    if origin in (typing.Union, types.UnionType):
        # Union[StrictFloat, StrictInt]: a JSON number
        for a in args:
            trial = []
            check_value(a, v, where, trial, metadata)
            if not trial:
                return
        out.append("%s: %s where the schema wants one of %s" % (
            where, json_type(v), ", ".join(_type_name(a) for a in args)))
        return
    if origin is list:
        if not isinstance(v, list):
            out.append("%s: %s where the schema wants an array" % (
                where, json_type(v)))
            return
        for i, item in enumerate(v):
            check_value(args[0] if args else typing.Any, item,
                        "%s[%d]" % (where, i), out)
        return
    if origin is dict:
        if not isinstance(v, dict):
            out.append("%s: %s where the schema wants an object" % (
                where, json_type(v)))
            return
        if len(args) == 2:
            for k, item in v.items():
                check_value(args[1], item, "%s.%s" % (where, k), out)
        return
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        out.extend(problems(ann, v, where, validate=False))
        return
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        values = [e.value for e in ann]
        if not isinstance(v, str) or v not in values:
            out.append("%s: %s is not one of the %d values of %s" % (
                where, json_type(v) if not isinstance(v, str) else
                "a string", len(values), ann.__name__))
        return
    if ann is uuid.UUID:
        if not isinstance(v, str) or not _UUID_RE.match(v):
            out.append("%s: %s is not a dashed UUID" % (
                where, json_type(v) if not isinstance(v, str) else
                "the string"))
        return
    if ann is datetime:
        ok = isinstance(v, str) and _DATETIME_RE.match(v)
        if ok:
            try:
                datetime.fromisoformat(v.replace("Z", "+00:00")
                                       .replace("z", "+00:00"))
            except ValueError:
                ok = False
        if not ok:
            out.append("%s: %s is not an RFC 3339 date-time" % (
                where, json_type(v) if not isinstance(v, str) else
                "the string"))
        return
    want = _scalar_kind(ann, metadata)
    if want is None:
        out.append("%s: the checker does not know the type %r" % (where,
                                                                   ann))
        return
    got = json_type(v)
    if want == "number":
        ok = got in ("integer", "number")
    else:
        ok = got == want
    if not ok:
        out.append("%s: %s where the schema wants %s" % (where, got, want))
        return
    if isinstance(v, str):
        _check_constraints(metadata, v, where, out)


def _scalar_kind(ann, metadata):
    base = ann
    if base is str or base is pydantic.StrictStr:
        return "string"
    if base is bool or base is pydantic.StrictBool:
        return "boolean"
    if base is int or base is pydantic.StrictInt:
        return "integer"
    if base is float or base is pydantic.StrictFloat:
        return "number"
    # StrictStr and friends are Annotated[str, Strict()]: handled above;
    # plain classes are what remains.
    return None


def _type_name(a):
    a, _ = _strip_optional(a)
    if typing.get_origin(a) is typing.Annotated:
        a = typing.get_args(a)[0]
    return getattr(a, "__name__", str(a))


def problems(model, value, where=None, validate=True):
    """[str]: everything that keeps \\p value (parsed JSON) from being a
    \\p model (an authentik_client model class) strictly; [] when it is
    one. \\p where names the value in messages (default: the model)."""
    where = where or model.__name__
    out = []
    if not isinstance(value, dict):
        return ["%s: %s where the schema wants a %s object" % (
            where, json_type(value), model.__name__)]
    fields, extra = model_fields(model)
    for k in value:
        if k not in fields and not extra:
            out.append("%s: %r is not a property of %s" % (
                where, k, model.__name__))
    for name, f in fields.items():
        if name not in value:
            if f.required:
                out.append("%s: required property %r is missing" % (
                    where, name))
            continue
        v = value[name]
        w = "%s.%s" % (where, name)
        if v is None:
            if not f.nullable:
                out.append("%s: null, but %s.%s is not nullable" % (
                    w, model.__name__, name))
            continue
        check_value(f.annotation, v, w, out, f.metadata)
    if validate and not out:
        try:
            model.from_dict(value)
        except pydantic.ValidationError as e:
            for err in e.errors(include_input=False, include_url=False):
                loc = ".".join(str(x) for x in err.get("loc", ()))
                out.append("%s.%s: the model refuses it (%s)" % (
                    where, loc, err.get("type")))
    return out


def require(model, value, where=None):
    """Raises AssertionError listing the problems of problems()."""
    p = problems(model, value, where)
    if p:
        raise AssertionError("; ".join(p[:12]) +
                             (" (and %d more)" % (len(p) - 12)
                              if len(p) > 12 else ""))


# -- deliberate mistakes ----------------------------------------------------

def _wrong_value(f):
    """A value of another JSON type than \\p f (a Field) wants."""
    ann = f.annotation
    if typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    origin = typing.get_origin(ann)
    if origin is list:
        return {"not": "a list"}
    if origin is dict or (isinstance(ann, type) and
                          issubclass(ann, BaseModel)):
        return ["not", "an object"]
    if ann is typing.Any:
        return None
    kind = _scalar_kind(ann, ())
    if kind == "string" or ann in (uuid.UUID, datetime) or \
            (isinstance(ann, type) and issubclass(ann, enum.Enum)):
        return 12345
    if kind == "boolean":
        return "true"
    if kind in ("integer", "number") or origin in (typing.Union,
                                                   types.UnionType):
        return "12"
    return ["unexpected"]


def mutations(model, value):
    """[(label, mutated copy of \\p value)]: each a deliberate mistake
    strict checking must refuse: an unknown key (unless the model takes
    additional properties), each required property missing, each present
    property with a value of the wrong type, null in each non-nullable
    property; then the same, one level down, in each nested model."""
    import copy
    fields, extra = model_fields(model)
    out = []
    if not extra:
        m = copy.deepcopy(value)
        m["not_in_the_schema"] = "x"
        out.append(("unknown key", m))
    for name, f in fields.items():
        if f.required and name in value:
            m = copy.deepcopy(value)
            del m[name]
            out.append(("%s missing" % name, m))
        if name not in value:
            continue
        wrong = _wrong_value(f)
        if wrong is not None:
            m = copy.deepcopy(value)
            m[name] = wrong
            out.append(("%s of the wrong type" % name, m))
        if not f.nullable:
            m = copy.deepcopy(value)
            m[name] = None
            out.append(("%s null" % name, m))
        sub = _model_of(f.annotation)
        if sub and isinstance(value[name], dict):
            for label, inner in mutations(sub, value[name]):
                m = copy.deepcopy(value)
                m[name] = inner
                out.append(("%s: %s" % (name, label), m))
        elif sub and isinstance(value[name], list) and value[name] and \
                isinstance(value[name][0], dict):
            for label, inner in mutations(sub, value[name][0]):
                m = copy.deepcopy(value)
                m[name][0] = inner
                out.append(("%s[0]: %s" % (name, label), m))
    return out


def _model_of(ann):
    ann, _ = _strip_optional(ann)
    if typing.get_origin(ann) is list:
        ann, _ = _strip_optional(typing.get_args(ann)[0])
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    return None
