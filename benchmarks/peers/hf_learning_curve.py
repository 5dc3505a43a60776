"""transformers' ELECTRA, trained on our packed examples with our recipe: the reference curve.

Run by `benchmarks/learning_curve_parity.py` under a Python that has torch and
transformers (`../shared/perf/setup_venvs.sh` builds `/tmp/perf-hf`); not a
dependency of the project. It reads `examples.npz` (train and eval arrays of
`input_ids`, `input_mask`, `segment_ids`, written from our TFRecords) and the
run's `config.json`, builds `ElectraForPreTraining` and a generator
`ElectraForMaskedLM` that shares its embeddings (token, position, segment,
LayerNorm) and ties its output layer to the token table, and trains them
jointly as the original does: dynamic masking of `mask_prob` of the
non-special tokens (at most `max_predictions_per_seq`), `mask_token_rate` of
them shown as [MASK] and the rest kept, Gumbel-max samples from the
generator, `loss = mlm_weight * MLM + disc_weight * RTD`, AdamW without decay
on LayerNorm and biases, global clipping, linear warm-up and decay. Every
`--eval-every` steps it evaluates in eval mode on fixed masks and prints one
JSON line per evaluation.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from roc import roc_auc  # this script's folder is on sys.path when run
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining


def build_models(config: dict, vocab_size: int):
    model = config["model"]
    generator_hidden = max(1, round(model["hidden_dim"] * model["generator_fraction"]))
    common = dict(
        vocab_size=vocab_size,
        embedding_size=model["embedding_dim"],
        num_hidden_layers=model["num_layers"],
        max_position_embeddings=model["max_sequence_length"],
        type_vocab_size=model["num_segments"],
        hidden_act="gelu",
        hidden_dropout_prob=model["dropout"],
        attention_probs_dropout_prob=model["dropout"],
        layer_norm_eps=model["layer_norm_epsilon"],
        initializer_range=model["initializer_range"],
    )
    discriminator = ElectraForPreTraining(
        ElectraConfig(
            hidden_size=model["hidden_dim"],
            num_attention_heads=model["num_heads"],
            intermediate_size=model["intermediate_dim"],
            **common,
        )
    )
    generator = ElectraForMaskedLM(
        ElectraConfig(
            hidden_size=generator_hidden,
            num_attention_heads=max(1, generator_hidden // 64),
            intermediate_size=max(
                1, round(model["intermediate_dim"] * model["generator_fraction"])
            ),
            **common,
        )
    )
    generator.electra.embeddings = discriminator.electra.embeddings
    generator.generator_lm_head.weight = (
        discriminator.electra.embeddings.word_embeddings.weight
    )
    return discriminator, generator


class Masker:
    """The original's masking: positions, [MASK] or kept, static slot count."""

    def __init__(self, config: dict, special_ids: dict):
        self.mask_prob = config["mask_prob"]
        self.mask_token_rate = config["mask_token_rate"]
        self.slots = max(1, int((config["mask_prob"] + 0.005) * config["seq_len"]))
        self.mask_id = special_ids["mask_id"]
        self.specials = np.array(sorted(special_ids.values()))

    def __call__(self, ids: np.ndarray, padding: np.ndarray, rng: np.random.Generator):
        candidates = (padding == 1) & ~np.isin(ids, self.specials)
        counts = np.clip(
            np.round(candidates.sum(1) * self.mask_prob), 1, self.slots
        ).astype(int)
        scores = np.where(candidates, rng.random(ids.shape), -1.0)
        positions = np.argsort(-scores, axis=1, kind="stable")[:, : self.slots]
        weights = (np.arange(self.slots)[None] < counts[:, None]) & np.take_along_axis(
            candidates, positions, 1
        )
        shown = weights & (rng.random(weights.shape) < self.mask_token_rate)
        masked = ids.copy()
        rows = np.broadcast_to(np.arange(ids.shape[0])[:, None], positions.shape)
        masked[rows[shown], positions[shown]] = self.mask_id
        return masked, positions, weights


def forward(discriminator, generator, masker, config, batch, rng):
    ids = torch.from_numpy(batch["input_ids"]).long()
    padding = torch.from_numpy(batch["input_mask"]).long()
    segments = torch.from_numpy(batch["segment_ids"]).long()
    masked, positions, weights = masker(batch["input_ids"], batch["input_mask"], rng)
    positions = torch.from_numpy(positions).long()
    weights = torch.from_numpy(weights).float()
    logits = generator(
        input_ids=torch.from_numpy(masked).long(),
        attention_mask=padding,
        token_type_ids=segments,
    ).logits
    vocab = logits.shape[-1]
    logits = torch.gather(logits, 1, positions[..., None].expand(-1, -1, vocab))
    targets = torch.gather(ids, 1, positions)
    per_slot = F.cross_entropy(
        logits.reshape(-1, vocab), targets.reshape(-1), reduction="none"
    )
    mlm_loss = (per_slot * weights.reshape(-1)).sum() / weights.sum().clamp(min=1)
    mlm_correct = ((logits.argmax(-1) == targets).float() * weights).sum()
    uniform = torch.from_numpy(rng.random(logits.shape)).float().clamp(1e-9, 1 - 1e-9)
    sampled = (
        logits.detach() / config["temperature"] - torch.log(-torch.log(uniform))
    ).argmax(-1)
    corrupted = ids.clone()
    rows = torch.arange(ids.shape[0])[:, None].expand_as(positions)
    chosen = weights.bool()
    corrupted[rows[chosen], positions[chosen]] = sampled[chosen]
    labels = ((corrupted != ids) & (padding == 1)).float()
    disc_logits = discriminator(
        input_ids=corrupted, attention_mask=padding, token_type_ids=segments
    ).logits
    token_weights = padding.float()
    disc_loss = (
        F.binary_cross_entropy_with_logits(disc_logits, labels, reduction="none")
        * token_weights
    ).sum() / token_weights.sum()
    return {
        "mlm_loss": mlm_loss,
        "disc_loss": disc_loss,
        "mlm_correct": mlm_correct.item(),
        "mlm_count": weights.sum().item(),
        "disc_logits": disc_logits.detach()[padding == 1].numpy(),
        "disc_labels": labels[padding == 1].numpy(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", required=True, help="examples.npz")
    parser.add_argument("--config", required=True, help="The run's config.json.")
    parser.add_argument("--special-ids", required=True, help="JSON of special ids.")
    parser.add_argument("--vocab-size", type=int, required=True)
    parser.add_argument("--eval-every", type=int, required=True)
    parser.add_argument("--eval-batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with open(args.config) as f:
        config = json.load(f)
    special_ids = json.loads(args.special_ids)
    torch.manual_seed(config["seed"])
    rng = np.random.default_rng(config["seed"])
    data = np.load(args.examples)
    train = {k[6:]: data[k] for k in data.files if k.startswith("train_")}
    evals = {k[5:]: data[k] for k in data.files if k.startswith("eval_")}
    discriminator, generator = build_models(config, args.vocab_size)
    masker = Masker(config, special_ids)
    named = {}
    for module in (discriminator, generator):
        for name, parameter in module.named_parameters():
            named.setdefault(id(parameter), (name, parameter))
    no_decay = [p for n, p in named.values() if "LayerNorm" in n or n.endswith("bias")]
    decay = [
        p for n, p in named.values() if not ("LayerNorm" in n or n.endswith("bias"))
    ]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config["learning_rate"],
        eps=config["adam_epsilon"],
    )
    steps, warmup = config["train_steps"], config["warmup_steps"]

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    batch_size = config["batch_size"]

    def evaluate(step: int, started: float) -> None:
        discriminator.eval()
        generator.eval()
        eval_rng = np.random.default_rng(12345)
        mlm, disc, correct, count, logits, labels = [], [], 0.0, 0.0, [], []
        with torch.no_grad():
            for i in range(args.eval_batches):
                batch = {
                    k: v[i * batch_size : (i + 1) * batch_size]
                    for k, v in evals.items()
                }
                if len(batch["input_ids"]) < batch_size:
                    break
                out = forward(discriminator, generator, masker, config, batch, eval_rng)
                mlm.append(out["mlm_loss"].item())
                disc.append(out["disc_loss"].item())
                correct += out["mlm_correct"]
                count += out["mlm_count"]
                logits.append(out["disc_logits"])
                labels.append(out["disc_labels"])
        discriminator.train()
        generator.train()
        print(
            json.dumps(
                {
                    "step": step,
                    "mlm_loss": float(np.mean(mlm)),
                    "mlm_accuracy": correct / max(count, 1.0),
                    "disc_loss": float(np.mean(disc)),
                    "disc_auc": roc_auc(np.concatenate(labels), np.concatenate(logits)),
                    "seconds": round(time.time() - started, 1),
                }
            ),
            flush=True,
        )

    started = time.time()
    order, cursor = rng.permutation(len(train["input_ids"])), 0
    all_parameters = [p for _, p in named.values()]
    for step in range(steps):
        if cursor + batch_size > len(order):
            order, cursor = rng.permutation(len(order)), 0
        index = order[cursor : cursor + batch_size]
        cursor += batch_size
        out = forward(
            discriminator,
            generator,
            masker,
            config,
            {k: v[index] for k, v in train.items()},
            rng,
        )
        loss = (
            config["mlm_weight"] * out["mlm_loss"]
            + config["disc_weight"] * out["disc_loss"]
        )
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(all_parameters, config["clipnorm"])
        optimizer.step()
        scheduler.step()
        if (step + 1) % args.eval_every == 0:
            evaluate(step + 1, started)
    if not math.isfinite(loss.item()):
        raise SystemExit("transformers run diverged (non-finite loss)")


if __name__ == "__main__":
    main()
