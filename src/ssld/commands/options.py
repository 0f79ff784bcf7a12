"""Range checks of numeric command-line options: a value outside its range is one ``UserError`` line."""

from __future__ import annotations

import argparse
import math

from ssld.errors import UserError, describe_range

SEED = (0, 2**32 - 1)  # numpy's seed range (torch takes more, numpy does not)
Bound = tuple[float | None, float | None]


def check_ranges(args: argparse.Namespace, bounds: dict[str, Bound], flags: dict[str, str] | None = None) -> None:
    """Raise ``UserError("--opt-name: must be ..., got V")`` for the first option (by ``dest``) outside its
    inclusive ``(low, high)`` bounds; ``None`` values (option not given) pass, lists are checked item by item.
    ``flags`` names an option whose ``dest`` differs from its flag (``{"seed_list": "--seed"}``)."""
    for dest, (low, high) in bounds.items():
        value = getattr(args, dest, None)
        for v in value if isinstance(value, list) else [value]:
            if v is None:
                continue
            bad = (isinstance(v, float) and not math.isfinite(v)) or (low is not None and v < low) \
                or (high is not None and v > high)
            if bad:
                flag = (flags or {}).get(dest, f"--{dest.replace('_', '-')}")
                raise UserError(f"{flag}: must be {describe_range(low, high)}, got {v}")
