"""pydantic's validation faults as the service's problems: ``(field, message)`` pairs with each
fault's ``loc`` (``["body", "cookies", ...]``), one message per field for a union's alternatives.

Shared by the service's bodies (service/bodies.py) and the telephony payloads (telephony/models.py),
so a fault reads the same wherever a body is checked."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError, ValidatorFunctionWrapHandler, WrapValidator
from pydantic_core import PydanticCustomError


def kind(value: Any) -> str:
    """How a JSON value's type reads in an error message."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


Problems = tuple[list[tuple[str, str]], list[list[str | int]]]


def problems_of(exc: ValidationError, one_message: Mapping[str, str] = {},
                required: Mapping[str, str] = {}, root: str = "body") -> Problems:
    """``exc``'s faults as (field, message) pairs and their locs under ``root``. A field in
    ``one_message`` reads as that one message however many alternatives failed; ``required`` gives
    a missing field's message (default "required")."""
    problems: list[tuple[str, str]] = []
    locs: list[list[str | int]] = []
    seen = set()
    for f in exc.errors(include_url=False):
        loc = list(f["loc"])
        field = str(loc[0]) if loc else root
        if field in one_message:  # a union: one problem, at the field (not at the alternative's tag)
            if field in seen:
                continue
            seen.add(field)
            message = one_message[field] if f["type"] != "missing" else required.get(field, "required")
            loc = loc[:1]
        else:
            message = message_of(f, field, required)
        problems.append((field, message))
        locs.append([root, *loc])
    return problems, locs


def message_of(fault: Any, field: str, required: Mapping[str, str] = {}) -> str:
    """One fault in the words of the service's other errors."""
    kind_, ctx = fault["type"], fault.get("ctx") or {}
    if kind_ == "missing":
        return required.get(field, "required")
    if kind_ in ("dict_type", "model_type", "typed_dict_type"):
        return f"expected a JSON object, got {kind(fault['input'])}"
    if kind_ == "string_type":
        return f"expected a string, got {kind(fault['input'])}"
    if kind_ == "string_too_long":
        return f"longer than {ctx['max_length']} characters"
    if kind_ in ("float_type", "int_type", "finite_number"):
        return f"expected a finite number, got {kind(fault['input'])}"
    if kind_ == "bool_type":
        return f"expected true or false, got {kind(fault['input'])}"
    if kind_ == "value_error":
        return str(ctx["error"])
    return str(fault["msg"])


def one_fault(message: str) -> WrapValidator:
    """A field's faults as one (``message``, at the field): a union's alternatives each fail on
    their own, and pydantic would report each under its own tag (["number", "int"])."""
    def wrap(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError("one_of", message) from None
    return WrapValidator(wrap)
