"""Declared, self-validating parameters of a family configuration.

Every family configuration is a frozen dataclass whose fields are declared with :func:`param`.
The declaration carries the help text, the allowed range or choices and the default, so that one
definition serves validation (:func:`validate_params`), the command line (``peforge list``, the
``gen``/``verify`` options) and the JSON manifest written beside generated Verilog.

Errors are :class:`ValueError` whose message starts with the field name and states what is
allowed, e.g. ``rows: must be an integer in 1..64, got 0``.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields

__all__ = ["ParamSpec", "param", "param_specs", "validate_params", "check_param", "config_dict",
           "config_hash", "values_hash"]


@dataclass(frozen=True)
class ParamSpec:
    """What a configuration field accepts.

    Attributes
    ----------
    help : str
        One line for ``--help`` and ``peforge list``.
    range : tuple of int, optional
        Inclusive integer bounds ``(low, high)``.
    choices : tuple of str, optional
        Allowed string values.
    multiple : bool
        With ``choices``: the value is a comma-separated list of distinct choices (at least one),
        e.g. ``"fp4,int4,int8"``.
    optional : bool
        ``None`` is accepted and means "derive from the other fields".
    """

    help: str
    range: tuple[int, int] | None = None
    choices: tuple[str, ...] | None = None
    multiple: bool = False
    optional: bool = False

    def describe(self) -> str:
        """The allowed values, as written in error messages and listings."""
        if self.range is not None:
            text = f"an integer in {self.range[0]}..{self.range[1]}"
        elif self.choices is not None:
            text = ("a comma-separated list of distinct " if self.multiple else "one of ") + \
                ", ".join(self.choices)
        else:
            text = "true or false"
        return text + (" (or unset: derived)" if self.optional else "")


def param(default, help, *, range=None, choices=None, multiple=False, optional=False):
    """Declare a configuration field (a :func:`dataclasses.field` with a :class:`ParamSpec`)."""
    spec = ParamSpec(help=help, range=range, choices=choices, multiple=multiple,
                     optional=optional)
    return field(default=default, metadata={"param": spec})


def param_specs(config_cls) -> dict[str, tuple[ParamSpec, object]]:
    """Map each declared field of a configuration class to ``(spec, default)``."""
    return {f.name: (f.metadata["param"], f.default)
            for f in fields(config_cls) if "param" in f.metadata}


def validate_params(config) -> None:
    """Check every declared field of ``config`` against its :class:`ParamSpec`.

    Raises
    ------
    ValueError
        Naming the first offending field and its allowed values.
    """
    for name, (spec, _default) in param_specs(type(config)).items():
        check_param(name, spec, getattr(config, name))


def check_param(name: str, spec: ParamSpec, value) -> None:
    """Check one field's ``value`` against its :class:`ParamSpec` alone (no other field).

    Raises
    ------
    ValueError
        ``<name>: must be <allowed values>, got <value>``.
    """
    if value is None and spec.optional:
        return
    if spec.range is not None:
        ok = (isinstance(value, int) and not isinstance(value, bool)
              and spec.range[0] <= value <= spec.range[1])
    elif spec.choices is not None and spec.multiple:
        items = value.split(",") if isinstance(value, str) else [None]
        ok = len(set(items)) == len(items) and all(item in spec.choices for item in items)
    elif spec.choices is not None:
        ok = value in spec.choices
    else:
        ok = isinstance(value, bool)
    if not ok:
        raise ValueError(f"{name}: must be {spec.describe()}, got {value!r}")


def config_dict(config) -> dict:
    """The configuration's fields as a plain, JSON-serialisable dict."""
    return dataclasses.asdict(config)


def values_hash(values: dict) -> str:
    """A short stable hash of JSON-serialisable ``values`` (hex, 12 digits; key order ignored)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


def config_hash(family: str, config) -> str:
    """A short stable hash of a family name and its configuration (hex, 12 digits)."""
    return values_hash({"family": family, **config_dict(config)})
