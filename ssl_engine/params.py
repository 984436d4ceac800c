"""Typed, documented config fields: ranges and help live in dataclass field metadata (no torch here).

Every config dataclass of the engine (``TrainConfig`` and each algorithm's ``Config``) declares
its fields with :func:`param`, so validation, the web form and the docs are all derived from
one declaration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GROUP_TRAINING = "Training"
GROUP_UNLABELED = "Unlabeled data"
GROUP_THRESHOLD = "Decision threshold"
GROUP_ALGORITHM = "Algorithm"
GROUP_CURATION = "Augmentation curation"
GROUP_MODEL = "Model"


def param(
    default: Any,
    *,
    help: str,  # noqa: A002 - the natural name for a field's help text
    min: float | None = None,  # noqa: A002
    max: float | None = None,  # noqa: A002
    choices: tuple[str, ...] | None = None,
    group: str = GROUP_TRAINING,
    advanced: bool = False,
) -> Any:
    """A dataclass field with a default and the metadata :func:`field_specs` reads."""
    return dataclasses.field(
        default=default,
        metadata={"help": help, "min": min, "max": max, "choices": choices, "group": group, "advanced": advanced},
    )


@dataclass(frozen=True)
class FieldSpec:
    """One config field as a form or a validator sees it."""

    name: str
    type: str  # "int" | "float" | "bool" | "str"
    default: Any
    min: float | None
    max: float | None
    choices: tuple[str, ...] | None
    help: str
    group: str
    advanced: bool


def _type_name(ftype: Any) -> str:
    return ftype if isinstance(ftype, str) else getattr(ftype, "__name__", str(ftype))


def field_specs(cls: type) -> list[FieldSpec]:
    """The :class:`FieldSpec` of every field of a config dataclass, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        md = f.metadata
        out.append(
            FieldSpec(
                name=f.name,
                type=_type_name(f.type),
                default=f.default,
                min=md.get("min"),
                max=md.get("max"),
                choices=md.get("choices"),
                help=md.get("help", ""),
                group=md.get("group", GROUP_TRAINING),
                advanced=bool(md.get("advanced", False)),
            )
        )
    return out


def check_value(spec: FieldSpec, value: Any) -> Any:
    """``value`` coerced to the field's type; ValueError naming the field when it does not fit."""
    name = spec.name
    if spec.type == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"config field {name!r} must be a boolean, got {value!r}")
    elif spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"config field {name!r} must be an integer, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"config field {name!r} must be an integer, got {value!r}")
            value = int(value)
    elif spec.type == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"config field {name!r} must be a number, got {value!r}")
        value = float(value)
        if value != value:  # NaN
            raise ValueError(f"config field {name!r} must be a number, got {value!r}")
    elif spec.type == "str":
        if not isinstance(value, str):
            raise ValueError(f"config field {name!r} must be a string, got {value!r}")
        if spec.choices and value not in spec.choices:
            raise ValueError(f"config field {name!r} must be one of {list(spec.choices)}, got {value!r}")
    if spec.type in ("int", "float") and (
        (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max)
    ):
        raise ValueError(f"config field {name!r} must be in [{spec.min}, {spec.max}], got {value!r}")
    return value


def build(cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of config dataclass ``cls`` from the (already checked) values it has fields for."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})
