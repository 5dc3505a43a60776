"""What every converter shares: its error, its report, and filling variables."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np


class ConversionError(ValueError):
    """A checkpoint cannot be represented or is incomplete."""


@dataclasses.dataclass
class ConversionReport:
    """What a conversion did with each tensor."""

    mapped: list[str] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    notices: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        lines = [f"mapped {len(self.mapped)} tensors"]
        for key, why in sorted(self.skipped.items()):
            lines.append(f"skipped {key}: {why}")
        lines += [f"note: {n}" for n in self.notices]
        return "\n".join(lines)


def assign_weights(
    entries: Sequence[tuple[Any, str, Callable[[np.ndarray], np.ndarray]]],
    read: Callable[[str], np.ndarray],
    available: Collection[str],
    report: ConversionReport,
    used: set[str],
) -> None:
    """Fills each variable from its checkpoint tensor; all or nothing is checked.

    Args:
        entries: `(variable, tensor name, checkpoint -> Keras layout)`.
        read: Returns a tensor of the checkpoint by name.
        available: Names the checkpoint holds.
        report: Gets every mapped name.
        used: Gets every mapped name (to find tensors with no place).

    Raises:
        ConversionError: A needed tensor is missing, or a shape does not fit.
    """
    missing = [name for _, name, _ in entries if name not in available]
    if missing:
        raise ConversionError(
            f"The checkpoint lacks {len(missing)} tensor(s) the model needs, e.g. "
            f"{', '.join(missing[:5])}. Is the config right for this checkpoint?"
        )
    for variable, name, to_keras in entries:
        source = read(name)
        value = to_keras(source)
        if tuple(value.shape) != tuple(variable.shape):
            raise ConversionError(
                f"{name}: shape {tuple(np.shape(source))} does not fit "
                f"{variable.path} {tuple(variable.shape)}."
            )
        variable.assign(np.asarray(value, np.float32))
        used.add(name)
        report.mapped.append(name)
