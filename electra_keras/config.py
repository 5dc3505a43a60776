"""Model and pretraining configuration, with size presets from the ELECTRA paper.

The numbers follow Clark et al. (2020), Table 6 and Appendix A, and
google-research/electra's `configure_pretraining.py`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
# `corpus_format` -> `doc_per_line` of the packing (None: detected per file).
CORPUS_FORMATS = {"auto": None, "sentence-per-line": False, "document-per-line": True}
MIXED_PRECISION_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
# "auto" resolves to one of the policies on the machine that trains (see
# `training.strategy.resolve_precision`).
PRECISION_CHOICES = ("auto",) + MIXED_PRECISION_POLICIES


class ConfigError(ValueError):
    """A configuration value is invalid or unknown."""


@dataclasses.dataclass
class ModelConfig:
    """Sizes of the discriminator and of the generator derived from it."""

    vocab_size: int = 30522  # WordPiece vocabulary size (BERT uncased: 30522).
    num_layers: int = 12  # Transformer layers (the generator has as many).
    num_heads: int = 4  # Attention heads of the discriminator.
    hidden_dim: int = 256  # Width of the discriminator's Transformer.
    intermediate_dim: int = 1024  # Feed-forward width of the discriminator.
    embedding_dim: int = 128  # Width of the shared token/position/segment tables.
    max_sequence_length: int = 512  # Rows of the position embedding table.
    num_segments: int = 2  # Rows of the segment embedding table.
    dropout: float = 0.1  # Dropout on embeddings, attention and FFN outputs.
    activation: str = "gelu"  # "gelu" (exact erf), "gelu_approximate" (tanh) or "relu".
    layer_norm_epsilon: float = 1e-12  # Epsilon of every LayerNorm.
    initializer_range: float = 0.02  # Stddev of the truncated-normal init.
    generator_fraction: float = 0.25  # Generator width / discriminator width.

    def __post_init__(self) -> None:
        positive = (
            "vocab_size",
            "num_layers",
            "num_heads",
            "hidden_dim",
            "intermediate_dim",
            "embedding_dim",
            "max_sequence_length",
            "num_segments",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(
                    f"`{name}` must be a positive integer, got {value!r}."
                )
        if self.hidden_dim % self.num_heads:
            raise ConfigError(
                f"`hidden_dim` ({self.hidden_dim}) must be divisible by "
                f"`num_heads` ({self.num_heads})."
            )
        if not 0.25 <= self.generator_fraction <= 1.0:
            raise ConfigError(
                "`generator_fraction` must be between 0.25 and 1.0 (the paper's "
                f"useful range), got {self.generator_fraction}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"`dropout` must be in [0, 1), got {self.dropout}.")

    def generator(self) -> ModelConfig:
        """The generator's config: same depth, `generator_fraction` of the width.

        Heads are `hidden_dim // 64` (at least one), as in the original code.
        """
        hidden = max(1, int(round(self.hidden_dim * self.generator_fraction)))
        heads = max(1, hidden // 64)
        while hidden % heads:
            heads -= 1
        return dataclasses.replace(
            self,
            hidden_dim=hidden,
            num_heads=heads,
            intermediate_dim=max(
                1, int(round(self.intermediate_dim * self.generator_fraction))
            ),
            generator_fraction=1.0,
        )

    def backbone_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `ElectraBackbone`."""
        return {
            "vocab_size": self.vocab_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "embedding_dim": self.embedding_dim,
            "max_sequence_length": self.max_sequence_length,
            "num_segments": self.num_segments,
            "dropout": self.dropout,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "initializer_range": self.initializer_range,
        }


@dataclasses.dataclass
class PretrainingConfig:
    """Everything a pretraining run needs; `model` holds the network sizes."""

    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    # --- data ---
    seq_len: int = 128  # Tokens per example, [CLS] and [SEP]s included.
    batch_size: int = 128  # Global batch size (split over replicas).
    lowercase: bool = True  # Lower-case and strip accents before WordPiece.
    short_seq_prob: float = 0.05  # Chance of a shorter, random-length example.
    single_segment_prob: float = 0.1  # Chance of an example with one segment.
    # Corpus layout: "auto" (detected per file), "sentence-per-line" (blank
    # lines between documents) or "document-per-line".
    corpus_format: str = "auto"
    # --- masking and sampling ---
    mask_prob: float = 0.15  # Fraction of real tokens chosen for prediction.
    mask_token_rate: float = 0.85  # Of the chosen: replaced by [MASK].
    random_token_rate: float = 0.0  # Of the chosen: replaced by a random token.
    temperature: float = 1.0  # Softmax temperature when sampling replacements.
    # --- objective ---
    electra_objective: bool = True  # False: plain BERT-style MLM on the same path.
    mlm_weight: float = 1.0  # Weight of the generator's MLM loss.
    disc_weight: float = 50.0  # Weight of the discriminator's loss (lambda).
    # --- optimisation ---
    learning_rate: float = 5e-4  # Peak learning rate.
    warmup_steps: int = 10_000  # Linear warm-up steps.
    train_steps: int = 1_000_000  # Total steps; linear decay to zero at the end.
    weight_decay: float = 0.01  # AdamW decay (not on LayerNorm or biases).
    adam_epsilon: float = 1e-6  # Adam epsilon.
    # Adam bias correction. The original has none, which multiplies early
    # updates by (1 - 0.9**t) / sqrt(1 - 0.999**t) (6.3x at step 20, 3.2x at 100,
    # 1.3x at 1000): harmless under its 10k-step warm-up, fatal to short runs.
    adam_bias_correction: bool = False
    clipnorm: float = 1.0  # Global-norm gradient clipping.
    # --- execution ---
    seed: int = 0  # Seed of masking, sampling and data order.
    strategy: str = "default"  # default | mirrored | multi_worker | tpu.
    num_cpu_replicas: int = 0  # mirrored on CPU: logical devices (0: off).
    xla: str = "auto"  # "on", "off" or "auto" (GPU/TPU; CPU: float32 without oneDNN).
    # auto | float32 | mixed_bfloat16 | mixed_float16. "auto": bf16 where the
    # hardware computes it natively (AMX / AVX512-BF16 CPUs, GPUs of compute
    # capability >= 8.0, TPUs), float32 elsewhere.
    mixed_precision: str = "float32"
    steps_per_execution: int = 1  # Steps per tf.function call.
    steps_per_epoch: int = 1000  # Steps per Keras epoch: logs, checkpoints, resume.
    keep_checkpoints: int = 3  # Periodic weight checkpoints kept (0: none).
    # Steps between resume checkpoints (weights, optimizer, data position);
    # 0: every `steps_per_epoch` steps.
    checkpoint_every: int = 0
    # --- evaluation (held-out data, eval mode, fixed masks, every epoch) ---
    eval_fraction: float = 0.02  # Examples held out when no eval corpus is given.
    eval_steps: int = 20  # Eval batches per evaluation (0: no evaluation).
    stop_on_collapse: bool = False  # Stop when the collapse guard fires.

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        if self.seq_len < 8:
            raise ConfigError(f"`seq_len` must be at least 8, got {self.seq_len}.")
        if self.seq_len > self.model.max_sequence_length:
            raise ConfigError(
                f"`seq_len` ({self.seq_len}) is larger than the position table "
                f"(`max_sequence_length` = {self.model.max_sequence_length})."
            )
        if self.batch_size <= 0:
            raise ConfigError(f"`batch_size` must be positive, got {self.batch_size}.")
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"`mask_prob` must be in (0, 1), got {self.mask_prob}.")
        rates = (self.mask_token_rate, self.random_token_rate)
        if min(rates) < 0 or sum(rates) > 1.0 + 1e-9:
            raise ConfigError(
                "`mask_token_rate` and `random_token_rate` must be >= 0 and sum to "
                f"at most 1, got {self.mask_token_rate} and {self.random_token_rate}."
            )
        if self.temperature <= 0:
            raise ConfigError(
                f"`temperature` must be positive, got {self.temperature}."
            )
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"Unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}."
            )
        if self.mixed_precision not in PRECISION_CHOICES:
            raise ConfigError(
                f"Unknown mixed precision policy {self.mixed_precision!r}; choose one "
                f"of {', '.join(PRECISION_CHOICES)}."
            )
        if self.corpus_format not in CORPUS_FORMATS:
            raise ConfigError(
                f"Unknown corpus_format {self.corpus_format!r}; choose one of "
                f"{', '.join(CORPUS_FORMATS)}."
            )
        if self.xla not in ("on", "off", "auto"):
            raise ConfigError(f"`xla` must be 'on', 'off' or 'auto', got {self.xla!r}.")
        if self.train_steps <= 0 or self.warmup_steps < 0:
            raise ConfigError("`train_steps` must be positive and `warmup_steps` >= 0.")
        if not 0.0 <= self.eval_fraction < 0.5:
            raise ConfigError(
                f"`eval_fraction` must be in [0, 0.5), got {self.eval_fraction}."
            )
        if self.eval_steps < 0:
            raise ConfigError(f"`eval_steps` must be >= 0, got {self.eval_steps}.")
        if self.steps_per_epoch <= 0 or self.steps_per_execution <= 0:
            raise ConfigError(
                "`steps_per_epoch` and `steps_per_execution` must be positive."
            )
        if self.steps_per_epoch % self.steps_per_execution:
            # Keras runs whole groups of `steps_per_execution` steps: an
            # epoch would overrun, and resume epoch boundaries break.
            raise ConfigError(
                f"`steps_per_execution` ({self.steps_per_execution}) must divide "
                f"`steps_per_epoch` ({self.steps_per_epoch}): Keras runs whole "
                "groups of `steps_per_execution` steps, so each epoch would run "
                f"{_round_up(self.steps_per_epoch, self.steps_per_execution)} "
                "steps and the run would train past `train_steps`. Choose a "
                "divisor of `steps_per_epoch`, or change `steps_per_epoch`."
            )
        if self.checkpoint_every < 0:
            raise ConfigError(
                f"`checkpoint_every` must be >= 0, got {self.checkpoint_every}."
            )

    @property
    def max_predictions_per_seq(self) -> int:
        """Static number of predicted positions: int((mask_prob + 0.005) * seq_len)."""
        return max(1, int((self.mask_prob + 0.005) * self.seq_len))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PretrainingConfig:
        """Builds a config, rejecting unknown keys with a clear error."""
        values = dict(values)
        model = values.pop("model", {}) or {}
        _reject_unknown(cls, values, "pretraining")
        _reject_unknown(ModelConfig, model, "model")
        return cls(model=ModelConfig(**model), **values)

    def replace(self, **changes: Any) -> PretrainingConfig:
        """A copy with top-level or `model.*` fields changed (unknown keys rejected)."""
        model_changes = {k[6:]: v for k, v in changes.items() if k.startswith("model.")}
        top = {k: v for k, v in changes.items() if not k.startswith("model.")}
        _reject_unknown(type(self), top, "pretraining")
        _reject_unknown(ModelConfig, model_changes, "model")
        model = dataclasses.replace(self.model, **model_changes)
        return dataclasses.replace(self, model=model, **top)


def apply_overrides(
    config: PretrainingConfig, overrides: dict[str, Any]
) -> PretrainingConfig:
    """A copy of `config` with keyword overrides, for `from_preset(**overrides)`.

    Keys are `PretrainingConfig` fields (`batch_size`), `ModelConfig` fields
    written plainly (`num_layers`, `dropout`: the names do not overlap) or as
    `model.num_layers`; unknown keys are rejected with the known ones listed.

    Args:
        config: the config to start from.
        overrides: field name -> new value.
    """
    top = {f.name for f in dataclasses.fields(PretrainingConfig)} - {"model"}
    model = {f.name for f in dataclasses.fields(ModelConfig)}
    changes: dict[str, Any] = {}
    unknown = []
    for key, value in overrides.items():
        if key in top or (key.startswith("model.") and key[6:] in model):
            changes[key] = value
        elif key in model:
            changes["model." + key] = value
        else:
            unknown.append(key)
    if unknown:
        raise ConfigError(
            f"Unknown config key(s): {', '.join(sorted(unknown))}. Known keys: "
            f"{', '.join(sorted(top | model))}."
        )
    return config.replace(**changes)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _reject_unknown(cls: type, values: dict[str, Any], what: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"Unknown {what} config key(s): {', '.join(unknown)}. "
            f"Known keys: {', '.join(sorted(names))}."
        )


def _preset(model: dict[str, Any], **training: Any) -> PretrainingConfig:
    return PretrainingConfig(model=ModelConfig(**model), **training)


def _presets() -> dict[str, PretrainingConfig]:
    return {
        # CPU demos and tests: trains in about 10 minutes on 2 cores. Its
        # 200-step warm-up is far too short to hide the original's missing
        # Adam bias correction (6x larger updates at step 20 collapsed the
        # discriminator within 20 steps), so it corrects the bias; with that,
        # lr 1e-3 trains stably (docs/recipe.md).
        "tiny": _preset(
            dict(
                num_layers=2,
                num_heads=2,
                hidden_dim=128,
                intermediate_dim=512,
                embedding_dim=64,
                max_sequence_length=128,
                generator_fraction=0.25,
            ),
            # Short sequences: steps cost half of seq_len 128 and the
            # downstream demo tasks (mr, trec) are short sentences; the
            # position table keeps 128 rows for fine-tuning.
            seq_len=64,
            batch_size=32,
            learning_rate=1e-3,
            warmup_steps=200,
            train_steps=1500,
            steps_per_epoch=250,
            adam_bias_correction=True,
        ),
        # ELECTRA-Small (paper: 14M params, 1M steps, batch 128, lr 5e-4).
        "small": _preset(
            dict(
                num_layers=12,
                num_heads=4,
                hidden_dim=256,
                intermediate_dim=1024,
                embedding_dim=128,
                generator_fraction=0.25,
            ),
            seq_len=128,
            batch_size=128,
            learning_rate=5e-4,
            warmup_steps=10_000,
            train_steps=1_000_000,
        ),
        # ELECTRA-Base (766k steps, batch 256, lr 2e-4, generator 1/3).
        "base": _preset(
            dict(
                num_layers=12,
                num_heads=12,
                hidden_dim=768,
                intermediate_dim=3072,
                embedding_dim=768,
                generator_fraction=1 / 3,
            ),
            seq_len=512,
            batch_size=256,
            learning_rate=2e-4,
            warmup_steps=10_000,
            train_steps=766_000,
        ),
        # ELECTRA-Large (1.75M steps, batch 2048, lr 2e-4, mask 25%).
        "large": _preset(
            dict(
                num_layers=24,
                num_heads=16,
                hidden_dim=1024,
                intermediate_dim=4096,
                embedding_dim=1024,
                generator_fraction=0.25,
            ),
            seq_len=512,
            batch_size=2048,
            mask_prob=0.25,
            learning_rate=2e-4,
            warmup_steps=10_000,
            train_steps=1_750_000,
        ),
    }


PRESET_NAMES = ("tiny", "small", "base", "large")


def get_preset(name: str) -> PretrainingConfig:
    """Returns a fresh copy of a size preset's pretraining config."""
    presets = _presets()
    if name not in presets:
        raise ConfigError(
            f"Unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}."
        )
    return presets[name]
