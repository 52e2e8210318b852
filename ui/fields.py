"""API parameters and form controls made from the node declarations, and form or API values read back.

Each node kind declares its parameters once (`pipelines.spec.param`, read by `pipelines.node.inputs_of`):
type, default, bounds or choices, and the line a person reads about it. `fields_of` resolves those for
this server (choices from the catalogue, bounds from [limits]) as `Field`s. From them:

- an API endpoint gets its signature (`endpoint`) and, through `api_input`, the JSON schema that
  `Client.view_api()` shows: `int` or `float`, `Literal[...]` of the choices, the description;
- a tab gets its controls (`form_input`, `form_for`);
- `node_params` reads a form's or a call's values back into the node's parameters, the one way every
  tab and endpoint builds a node.

A node kind declared anywhere (a test's, a plugin's) gets all of these with no edit here.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import gradio as gr
from gradio.components.api_component import Api

from pipelines.checks import whole
from pipelines.node import inputs_of

# Input edges of these types are files an API call or a form sends; what each field says about its file.
FILE_TYPES = {"IMAGE": "An image file (PNG, JPEG or WebP); pass it with handle_file(path).",
              "MASK": "A black-and-white image file, white where to repaint; pass it with handle_file(path).",
              "VIDEO": "A video file (MP4); pass it with handle_file(path).",
              "FILE": "A file; pass it with handle_file(path)."}
_JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}
_PYTHON_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "pairs": list}
SLIDER_SPAN = 10_000        # a number bounded closer than this gets a slider in a form, else a number box


@dataclass(frozen=True)
class Field:
    """One parameter of an endpoint or a form, resolved for this server.

    type: "int", "float", "bool", "str", "pairs" (a list of [name, weight]), or a file ("IMAGE", "MASK",
    "VIDEO", "FILE"). `optional`: None is allowed (the model's default). `low`, `high`: numbers or None;
    `choices`: the values it takes, or None for any."""

    name: str
    type: str
    default: object
    description: str
    optional: bool = False
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None

    @property
    def is_file(self) -> bool:
        return self.type in FILE_TYPES

    def renamed(self, name: str, context: str = "", **changes) -> "Field":
        """This field under another name (an endpoint's `canny_low` is the canny node's `low`), its description
        led by `context` ("Hires fix: "); `changes` replace other attributes (a default, a description)."""
        described = context + self.description[:1].lower() + self.description[1:] if context else self.description
        return dataclasses.replace(self, name=name, **{"description": described, **changes})


def fields_of(params: type, catalogue, names: Sequence[str] | None = None) -> tuple[Field, ...]:
    """The declared parameters of node kind `params` (its dataclass) as Fields: all, in declaration order, or
    those `names` names, in that order. `catalogue` (a `pipelines.compiler.Compiler`) resolves named choices
    (`choices(name)`) and bounds (`limits`); a bound named after another parameter ("frames") stays open."""
    declared = {i.name: i for i in inputs_of(params)}
    fields = []
    for name in names if names is not None else list(declared):
        i = declared[name]
        choices = catalogue.choices(i.choices) if isinstance(i.choices, str) else i.choices
        fields.append(Field(i.name, i.type, i.default, i.description, i.optional, _bound(i.low, catalogue),
                            _bound(i.high, catalogue), None if choices is None else tuple(choices)))
    return tuple(fields)


def field_of(params: type, name: str, catalogue) -> Field:
    """The declared parameter `name` of node kind `params` as a Field (see `fields_of`)."""
    return fields_of(params, catalogue, (name,))[0]


def _bound(bound, catalogue):
    return getattr(catalogue.limits, bound, None) if isinstance(bound, str) else bound


def edge_fields(params: type) -> tuple[Field, ...]:
    """The input edges of node kind `params` that take files (images, masks, videos), as Fields named after
    the edge: required unless the node declares the edge optional."""
    optional = getattr(params, "optional_inputs", frozenset())
    return tuple(Field(name, kind, None, FILE_TYPES[kind], optional=name in optional)
                 for name, kind in params.inputs.items() if kind in FILE_TYPES)


def endpoint_fields(params: type, catalogue, order: Sequence[str] | None = None,
                    extras: Sequence[Field] = ()) -> tuple[Field, ...]:
    """The parameters of an endpoint that makes one `params` node: its file edges, then its declared
    parameters; or, given `order`, those it names, in that order, from the edges, the declarations and
    `extras` (the endpoint's own: a renamed edge, another node's parameter)."""
    own = (*edge_fields(params), *fields_of(params, catalogue))
    if order is None:
        return own
    known = {f.name: f for f in (*own, *extras)}
    return tuple(known[name] for name in order)


# -- values back into parameters -------------------------------------------------------------------


def node_params(params: type, values: Mapping):
    """Node kind `params`'s parameters from form or API values by name. Names it does not declare are left
    out, and parameters not given take their declared default. None (and "" for text) means the default,
    or for an optional parameter None, the model's default; whole floats become ints where an int is
    declared; lists of [name, weight] become pairs. Anything else goes on to the compiler, which checks it
    against the same declarations."""
    given = {}
    for declared in inputs_of(params):
        if declared.name not in values:
            continue
        value = values[declared.name]
        if value is None or (declared.type == "str" and value == ""):
            value = None if declared.optional else declared.default
        elif declared.type == "int":
            value = whole(value)
        elif declared.type == "pairs" and isinstance(value, (list, tuple)):
            value = tuple(tuple(pair) if isinstance(pair, list) else pair for pair in value)
        given[declared.name] = value
    return params(**given)


# -- the API ---------------------------------------------------------------------------------------


def json_schema(field: Field) -> dict:
    """The JSON schema of `field` as Gradio's API info and view_api read it: its type (`int`, `float`,
    `Literal[...]` of its choices, with "" first where "" means the default), its bounds, and its
    description (`additional_description` is what view_api prints). An optional field's default is None,
    which view_api adds to the type itself ("int | None"), as it does for any parameter defaulting to None."""
    if field.choices is not None:
        values = list(field.choices)
        if field.default is not None and field.default not in values:
            values.insert(0, field.default)
        schema = ({"type": "string", "enum": values} if field.type == "str"
                  else {"anyOf": [{"const": value} for value in values]})
    elif field.type == "pairs":
        schema = {"type": "array", "items": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                                                 {"type": "number"}]}}}
    else:
        schema = {"type": _JSON_TYPES[field.type]}
        if field.low is not None:
            schema["minimum"] = field.low
        if field.high is not None:
            schema["maximum"] = field.high
    return {**schema, "description": field.description, "additional_description": field.description}


def api_input(field: Field) -> gr.components.Component:
    """The input of an API endpoint for `field`: Gradio's `Api` input (it shows no control and passes the value
    through) with `json_schema(field)` and the field's default; a `gr.File` for a file, since Gradio checks
    that a file sent to one was uploaded (an `Api` input would pass any server path through). view_api
    describes a file as Gradio's FileData; `endpoint` puts the field's own description in the endpoint's."""
    if field.is_file:
        return gr.File(label=field.name)
    return Api(field.default, json_schema(field), label=field.name)


def endpoint(name: str, doc: str, fields: Sequence[Field], body: Callable) -> Callable:
    """A function for Gradio to expose as endpoint `name`: its signature is `fields` (so view_api names its
    parameters and knows their defaults), then `request` and `progress`, which Gradio fills in. It calls
    `body(values, request, progress)` with the values by name (and streams what it yields when `body` is a
    generator function). Its docstring, the endpoint's description, is
    `doc` followed by what each file parameter takes."""
    names = [f.name for f in fields]

    if inspect.isgeneratorfunction(body):        # Gradio streams what a generator yields, as it yields it
        def call(*args):
            *values, request, progress = args
            yield from body(dict(zip(names, values)), request, progress)
    else:
        def call(*args):
            *values, request, progress = args
            return body(dict(zip(names, values)), request, progress)

    parameters = [inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=inspect.Parameter.empty if f.is_file and not f.optional else f.default,
                                    annotation=_annotation(f)) for f in fields]
    parameters += [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                     annotation=gr.Request),
                   inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress())]
    call.__name__ = call.__qualname__ = name
    call.__doc__ = " ".join([doc, *(f"{f.name}: {f.description}" for f in fields if f.is_file)])
    call.__signature__ = inspect.Signature(parameters)
    call.__annotations__ = {p.name: p.annotation for p in parameters if p.annotation is not inspect.Parameter.empty}
    return call


def with_arguments(doc: str, fields: Sequence[Field]) -> str:
    """`doc` followed by an "Args:" section, one line per field ("name: description"): the docstring format
    Gradio reads into the parameter descriptions of its MCP tools (`gradio.utils.get_function_description`).
    What comes before "Args:" stays the endpoint's description in view_api."""
    if not fields:
        return doc
    return doc + "\n\nArgs:\n" + "\n".join(f"    {f.name}: {' '.join(f.description.split())}" for f in fields)


def _annotation(field: Field):
    python_type = str if field.is_file else _PYTHON_TYPES[field.type]
    return python_type | None if field.optional else python_type


# -- forms -----------------------------------------------------------------------------------------


def form_input(field: Field, **props) -> gr.components.Component:
    """A form control for `field`: a dropdown of its choices, a checkbox, a slider for a number bounded on both
    sides that has a value (a number box, empty for the default, otherwise), an image or video input for a
    file, or a text box. `props` (label, value, choices, step, minimum, maximum, elem_id, info, ...) go to
    the component and win over the declaration."""
    label, value = props.pop("label", field.name), props.pop("value", field.default)
    choices = props.pop("choices", field.choices)
    if choices is not None:
        shown = [value] if value == field.default and value not in choices else []   # "": the model's default
        return gr.Dropdown([*shown, *choices], value=value, label=label, **props)
    if field.type == "bool":
        return gr.Checkbox(value, label=label, **props)
    if field.type in ("int", "float"):
        low, high = props.pop("minimum", field.low), props.pop("maximum", field.high)
        if low is not None and high is not None and value is not None and high - low <= SLIDER_SPAN:
            step = props.pop("step", 1 if field.type == "int" else 10 ** math.floor(math.log10((high - low) / 100)))
            return gr.Slider(low, high, value=value, step=step, label=label, **props)
        return gr.Number(value=value, label=label, precision=0 if field.type == "int" else None, minimum=low,
                         maximum=high, **props)
    if field.type in ("IMAGE", "MASK"):
        return gr.Image(label=label, type="filepath", sources=["upload", "clipboard"], **props)
    if field.type == "VIDEO":
        return gr.Video(label=label, **props)
    if field.is_file:
        return gr.File(label=label, **props)
    return gr.Textbox(value=value or "", label=label, **props)


def form_for(params: type, catalogue) -> dict[str, gr.components.Component]:
    """A plain form for node kind `params`: a control for each file edge and declared parameter (`form_input`),
    labelled by its name, with its description under it (an image or video input has no room for one);
    keyed by name, the keys `node_params` reads. A list of (name, weight) pairs (LoRAs) gets no control."""
    return {f.name: form_input(f, label=f.name) if f.is_file else form_input(f, info=f.description)
            for f in (*edge_fields(params), *fields_of(params, catalogue)) if f.type != "pairs"}
