"""Learning-rate schedule of ELECTRA pretraining: linear warm-up, linear decay.

The schedule reproduces google-research/electra's `model/optimization.py`
(`create_optimizer`), which computes, at optimizer step `step`:

    decayed = polynomial_decay(peak, step, train_steps, end, power=1.0)
            = (peak - end) * (1 - min(step, train_steps) / train_steps) + end
    lr      = decayed * min(1, step / warmup_steps)

so during warm-up the *decayed* value is scaled by `step / warmup_steps`; the
curve has no jump where warm-up ends. BERT's `optimization.py` differs slightly:
during warm-up it uses `peak * step / warmup_steps` (not the decayed value) and
then switches to the decayed value, a small drop at `warmup_steps`. With the
paper's 10k warm-up steps over 1M train steps the two differ by at most 1%.

`step` is the optimizer's `iterations` before the update, as the original's
`global_step`: the first update uses step 0, hence a learning rate of 0 when
there is a warm-up.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="electra_keras")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak_learning_rate`, then linear decay to the end value.

    Exactly ELECTRA's schedule (see the module docstring):
    `lr(step) = ((peak - end) * (1 - min(step, train_steps) / train_steps) + end)
    * min(1, step / warmup_steps)`. After `train_steps` the rate stays at
    `end_learning_rate`; with `warmup_steps=0` there is no warm-up factor.

    Args:
        peak_learning_rate: Learning rate the decay starts from (the paper's
            "learning rate"); reached only approximately, at `warmup_steps`.
        warmup_steps: Steps of linear warm-up from 0. 0 disables warm-up.
        train_steps: Step at which the decay reaches `end_learning_rate`.
        end_learning_rate: Final learning rate (0 in ELECTRA).
        name: Optional name of the schedule.
    """

    def __init__(
        self,
        peak_learning_rate: float,
        warmup_steps: int,
        train_steps: int,
        end_learning_rate: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if train_steps <= 0:
            raise ValueError(f"`train_steps` must be positive, got {train_steps}.")
        if warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be >= 0, got {warmup_steps}.")
        if peak_learning_rate < 0 or end_learning_rate < 0:
            raise ValueError(
                "Learning rates must be >= 0, got "
                f"peak_learning_rate={peak_learning_rate}, "
                f"end_learning_rate={end_learning_rate}."
            )
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.train_steps = int(train_steps)
        self.end_learning_rate = float(end_learning_rate)
        self.name = name

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        peak = ops.cast(self.peak_learning_rate, "float32")
        end = ops.cast(self.end_learning_rate, "float32")
        # (T - min(step, T)) / T, not 1 - step / T: exact steps, less rounding.
        total = float(self.train_steps)
        left = (total - ops.minimum(step, total)) / total
        learning_rate = (peak - end) * left + end
        if self.warmup_steps > 0:
            warmup = ops.minimum(1.0, step / float(self.warmup_steps))
            learning_rate = learning_rate * warmup
        return learning_rate

    def get_config(self) -> dict[str, Any]:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "train_steps": self.train_steps,
            "end_learning_rate": self.end_learning_rate,
            "name": self.name,
        }
