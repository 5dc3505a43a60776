"""`CollapseGuard`: notices a pretraining run that has stopped learning.

Two signatures of a degenerate ELECTRA run, checked at each epoch end after
warm-up (on the eval metrics when there are any):

- the discriminator's loss sits within `tolerance` (1%) of the binary entropy
  of the replaced fraction: it predicts the prior everywhere;
- token representations collapse: the mean cosine similarity between the
  discriminator's vectors of distinct tokens of a fixed probe batch exceeds
  `max_similarity` (0.99).

When either holds for `patience` consecutive epochs, the guard prints one
message that names the likely causes and the flags to change, and records the
event (`events`, written to metrics.json). With `stop=True` it also stops
training (`--stop-on-collapse`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras

from electra_keras.training.evaluation import binary_entropy, mean_token_similarity

_INPUT_KEYS = ("token_ids", "segment_ids", "padding_mask")

ADVICE = (
    "Likely causes: a learning rate too high for the warm-up (without Adam's bias "
    "correction, the original's default, early updates are up to 6x larger than "
    "the schedule says), a warm-up too short for it, or a run too short for the "
    "discriminator to get past the generator's unigram phase. Try a lower "
    "--learning-rate, a longer --warmup-steps, --set adam_bias_correction=true, or "
    "more --train-steps; --stop-on-collapse stops a run when this fires."
)


class CollapseGuard(keras.callbacks.Callback):
    """Warns (and optionally stops) when pretraining degenerates.

    Args:
        warmup_steps: No checks until the optimizer has made this many steps.
        probe_batch: A fixed input batch (dict of `token_ids`, `segment_ids`,
            `padding_mask`) for the representation check; None skips it.
        patience: Consecutive degenerate epochs before the guard fires.
        tolerance: Relative distance to the prior's entropy that counts as
            "at the prior".
        max_similarity: Mean token cosine similarity that counts as collapsed.
        stop: Stop training when the guard fires.
        print_fn: Where the message goes.
    """

    def __init__(
        self,
        warmup_steps: int,
        probe_batch: Mapping[str, Any] | None = None,
        patience: int = 3,
        tolerance: float = 0.01,
        max_similarity: float = 0.99,
        stop: bool = False,
        print_fn: Callable[[str], None] = print,
    ):
        super().__init__()
        if patience < 1:
            raise ValueError(f"patience must be at least 1, got {patience}.")
        self.warmup_steps = warmup_steps
        self.probe_batch = probe_batch
        self.patience = patience
        self.tolerance = tolerance
        self.max_similarity = max_similarity
        self.stop = stop
        self.print_fn = print_fn
        self.strikes = 0
        self.events: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []

    @property
    def fired(self) -> bool:
        return bool(self.events)

    def check(self, logs: Mapping[str, Any]) -> dict[str, Any]:
        """The degeneracy signals for one epoch's logs (and the probe batch)."""
        prefix = "val_" if "val_disc_loss" in logs or "val_mlm_loss" in logs else ""
        result: dict[str, Any] = {"step": int(self.model.optimizer.iterations.numpy())}
        reasons = []
        disc_loss = logs.get(prefix + "disc_loss")
        fraction = logs.get(prefix + "replaced_fraction")
        if disc_loss is not None and fraction is not None:
            prior = binary_entropy(min(max(float(fraction), 0.0), 1.0))
            result.update(disc_loss=float(disc_loss), prior_entropy=prior)
            if prior > 0 and abs(float(disc_loss) - prior) <= self.tolerance * prior:
                reasons.append(
                    f"the discriminator's {prefix}disc_loss ({float(disc_loss):.4f}) "
                    f"is within {self.tolerance:.0%} of the binary entropy of the "
                    f"replaced fraction ({prior:.4f}): it predicts the prior everywhere"
                )
        if self.probe_batch is not None:
            backbone = self.model.discriminator
            inputs = {k: self.probe_batch[k] for k in _INPUT_KEYS}
            output = backbone(inputs, training=False)
            similarity = mean_token_similarity(
                keras.ops.convert_to_numpy(output), self.probe_batch["padding_mask"]
            )
            result["token_similarity"] = similarity
            if similarity > self.max_similarity:
                reasons.append(
                    "the discriminator's token vectors have collapsed (mean cosine "
                    f"similarity {similarity:.4f} between distinct tokens)"
                )
        result["reasons"] = reasons
        return result

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step <= self.warmup_steps:
            return
        result = self.check(logs or {})
        self.checks.append(result)
        self.strikes = self.strikes + 1 if result["reasons"] else 0
        if self.strikes < self.patience or self.fired:
            return
        message = (
            f"Collapse guard: at step {step}, for {self.patience} epoch(s) in a row, "
            + "; and ".join(result["reasons"])
            + ". The run is not learning. "
            + ADVICE
        )
        self.events.append({"step": step, "reasons": result["reasons"]})
        self.print_fn(message)
        if self.stop:
            self.print_fn("Stopping (--stop-on-collapse).")
            self.model.stop_training = True
