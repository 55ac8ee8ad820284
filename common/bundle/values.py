"""Values typed on the command line, as they reach a config: ``python -m monai.bundle run --demo_data false``
passes the string ``"false"`` (fire reads only Python's ``False``), which is true. The components that take a
switch or an optional value read it through these functions, so ``false`` / ``true`` / ``null`` / ``none`` mean
what they say in any case, and anything else is a one-line error naming the key."""

from __future__ import annotations

__all__ = ["flag", "optional"]

_TRUE, _FALSE, _NULL = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}, {"null", "none", ""}


def flag(value, key: str) -> bool:
    """``value`` as a bool: ``True`` / ``False``, 0 / 1, or the words true/false, yes/no, on/off (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{key}: expected true or false, got {value!r}")


def optional(value, key: str = "value"):
    """``None`` for ``None`` or the words null / none (any case) or an empty string; ``value`` otherwise."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NULL):
        return None
    return value
