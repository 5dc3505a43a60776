"""Training FLOPs of one pretraining step, counted from the model shapes.

Counts the multiply-adds of every matrix product (2 FLOPs each), as the
ELECTRA paper's compute comparisons do; embedding lookups, LayerNorm, softmax,
activations and the optimizer update are left out (a few percent at these
shapes). A training step costs 3x the forward pass (backward = 2x forward).

Per example, with sequence length S, width H, feed-forward width I, embedding
width E, vocabulary V and P predicted slots:

- embedding projection (when E != H): 2·S·E·H
- each Transformer layer: 8·S·H² (Q, K, V, output) + 4·S·H·I (feed-forward)
  + 4·S²·H (scores and the weighted sum of values)
- masked-LM head at the P slots: 2·P·H·E (dense to E) + 2·P·E·V (tied logits)
- discriminator head: 2·S·H² (dense) + 2·S·H (one logit per token)

ELECTRA runs the generator (its own H, I and layers) with the MLM head plus the
discriminator with its head; MLM runs the discriminator-sized network with the
MLM head only.
"""

from __future__ import annotations

from electra_keras.config import ModelConfig, PretrainingConfig

TRAIN_TO_FORWARD = 3  # forward + backward (2x forward)


def backbone_flops(model: ModelConfig, seq_len: int) -> int:
    """Forward FLOPs of one example through an `ElectraBackbone` of `model`."""
    s, h, i, e = seq_len, model.hidden_dim, model.intermediate_dim, model.embedding_dim
    projection = 2 * s * e * h if e != h else 0
    layer = 8 * s * h * h + 4 * s * h * i + 4 * s * s * h
    return projection + model.num_layers * layer


def masked_lm_head_flops(hidden_dim: int, model: ModelConfig, slots: int) -> int:
    """Forward FLOPs of the tied masked-LM head at `slots` positions."""
    e, v = model.embedding_dim, model.vocab_size
    return 2 * slots * hidden_dim * e + 2 * slots * e * v


def discriminator_head_flops(model: ModelConfig, seq_len: int) -> int:
    """Forward FLOPs of the replaced-token-detection head."""
    h = model.hidden_dim
    return 2 * seq_len * h * h + 2 * seq_len * h


def pretraining_flops(config: PretrainingConfig) -> dict[str, int]:
    """Training FLOPs of one step of `config`, by part and in total.

    Returns:
        dict with forward FLOPs per example of `generator`, `generator_head`,
        `discriminator`, `discriminator_head` (0 for parts an objective does
        not have), `train_per_example` (3x their sum) and `train_per_step`
        (times the global batch size).
    """
    s, slots, model = config.seq_len, config.max_predictions_per_seq, config.model
    parts = {
        "generator": 0,
        "generator_head": 0,
        "discriminator": backbone_flops(model, s),
        "discriminator_head": 0,
    }
    if config.electra_objective:
        generator = model.generator()
        parts["generator"] = backbone_flops(generator, s)
        parts["generator_head"] = masked_lm_head_flops(
            generator.hidden_dim, model, slots
        )
        parts["discriminator_head"] = discriminator_head_flops(model, s)
    else:
        # MLM: the head sits on the discriminator-sized network.
        parts["generator_head"] = masked_lm_head_flops(model.hidden_dim, model, slots)
    per_example = TRAIN_TO_FORWARD * sum(parts.values())
    return {
        **parts,
        "train_per_example": per_example,
        "train_per_step": per_example * config.batch_size,
    }


def equal_flops_steps(
    reference: PretrainingConfig, other: PretrainingConfig, steps: int
) -> int:
    """Steps of `other` that cost what `steps` steps of `reference` cost."""
    ratio = (
        pretraining_flops(reference)["train_per_step"]
        / pretraining_flops(other)["train_per_step"]
    )
    return max(1, round(steps * ratio))
