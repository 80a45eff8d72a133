"""``argparse`` types that validate numbers where they are parsed.

``type=positive_float`` makes ``depth-train mono --lr -1`` fail in the parser with
``argument --lr: expected a positive number, got -1`` and exit status 2, instead of an error
deep inside torch. NaN and infinity are refused everywhere.
"""
from __future__ import annotations

import argparse
import math
from typing import Callable

__all__ = ["positive_int", "nonnegative_int", "positive_float", "nonnegative_float", "fraction_open_right",
           "fraction_open_left", "float_range", "role_topic"]


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") \
            from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer > 0."""
    n = _number(text, int)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (0 usually means "never" / "off" / "automatic")."""
    n = _number(text, int)
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {n}")
    return n


def positive_float(text: str) -> float:
    """A finite number > 0."""
    x = _number(text, float)
    if x <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return x


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    x = _number(text, float)
    if x < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return x


def float_range(lo: float, hi: float, *, lo_open: bool, hi_open: bool) -> Callable[[str], float]:
    """A type accepting finite numbers in the interval from ``lo`` to ``hi`` (open or closed ends)."""
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(text: str) -> float:
        x = _number(text, float)
        if (x <= lo if lo_open else x < lo) or (x >= hi if hi_open else x > hi):
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text}")
        return x

    parse.__name__ = f"number in {interval}"
    return parse


#: [0, 1): e.g. ``--val-fraction`` (0 = no validation split, 1 would leave nothing to train on)
fraction_open_right = float_range(0.0, 1.0, lo_open=False, hi_open=True)
#: (0, 1]: e.g. ``--lr-drop-at``, ``--tail``
fraction_open_left = float_range(0.0, 1.0, lo_open=True, hi_open=False)


def role_topic(text: str) -> str:
    """A ``ROLE=TOPIC`` item of ``--topics``. ``--topics`` takes every word after it, so a recording
    written after the list (``info --topics color=/cam rec``) would be taken for one: it is refused
    here, naming the word and the two ways to write it, instead of the bag going missing."""
    role, sep, topic = text.partition("=")
    if not sep or not role.strip() or not topic.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not ROLE=TOPIC; a recording or other argument after the --topics list is taken "
            f"for one of its items: put it before --topics, or end the list with --")
    return text
