"""The study's table, ordering check and bar chart."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

MODEL_LABELS = {"electra": "ELECTRA", "mlm": "MLM (BERT)", "random": "random init"}


def describe(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (0 for one value) and the values."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "values": list(values)}


def ordering(finetuning: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Whether ELECTRA > MLM > random init (by mean) on every task."""
    per_task = {}
    for task, result in finetuning.items():
        means = {m: result[m]["mean"] for m in ("electra", "mlm", "random")}
        per_task[task] = {
            "electra_minus_mlm": means["electra"] - means["mlm"],
            "mlm_minus_random": means["mlm"] - means["random"],
            "electra_minus_random": means["electra"] - means["random"],
            "holds": means["electra"] > means["mlm"] > means["random"],
        }
    return {
        "electra_gt_mlm_gt_random_everywhere": all(
            t["holds"] for t in per_task.values()
        ),
        "tasks": per_task,
    }


def format_table(summary: Mapping[str, Any]) -> str:
    """A plain-text table: one row per task, mean ± std per model."""
    seeds = summary["seeds"]
    header = ["task (metric)"] + [f"{MODEL_LABELS[m]}" for m in MODEL_LABELS]
    rows = []
    for task, result in summary["finetuning"].items():
        cells = [f"{task} ({result['metric']})"]
        for model in MODEL_LABELS:
            cells.append(
                f"{100 * result[model]['mean']:.1f} ± {100 * result[model]['std']:.1f}"
            )
        rows.append(cells)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))

    pre = summary["pretraining"]
    lines = [
        f"Study ({summary['preset']} preset, budget {summary['budget']}, {seeds} "
        f"fine-tuning seed(s); dev scores x100, mean ± std):",
        line(header),
        line(["-" * w for w in widths]),
        *(line(r) for r in rows),
        "Pretraining at equal FLOPs: "
        + ", ".join(
            f"{name.upper()} {p['steps']} steps ({p['train_flops'] / 1e12:.1f} TFLOP)"
            for name, p in pre.items()
        ),
    ]
    order = summary.get("ordering") or ordering(summary["finetuning"])
    verdict = (
        "holds" if order["electra_gt_mlm_gt_random_everywhere"] else "does NOT hold"
    )
    lines.append(f"ELECTRA > MLM > random init on every task: {verdict}.")
    return "\n".join(lines)


def bar_chart(summary: Mapping[str, Any], path: str) -> str:
    """Grouped bars (mean, error bar = std) per task and model, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(summary["finetuning"])
    models = list(MODEL_LABELS)
    width = 0.8 / len(models)
    figure, axes = plt.subplots(figsize=(2.2 + 1.8 * len(tasks), 3.6))
    for i, model in enumerate(models):
        means = [100 * summary["finetuning"][t][model]["mean"] for t in tasks]
        stds = [100 * summary["finetuning"][t][model]["std"] for t in tasks]
        positions = [j + (i - (len(models) - 1) / 2) * width for j in range(len(tasks))]
        axes.bar(
            positions, means, width, yerr=stds, capsize=3, label=MODEL_LABELS[model]
        )
    axes.set_xticks(range(len(tasks)))
    axes.set_xticklabels(
        [f"{t}\n({summary['finetuning'][t]['metric']})" for t in tasks]
    )
    axes.set_ylabel("dev score x100")
    axes.set_title(
        f"Fine-tuned from equal-FLOP pretraining ({summary['preset']}, "
        f"budget {summary['budget']}, {summary['seeds']} seeds)",
        fontsize=9,
    )
    lows = [
        100 * (summary["finetuning"][t][m]["mean"] - summary["finetuning"][t][m]["std"])
        for t in tasks
        for m in models
    ]
    axes.set_ylim(max(0.0, min(lows) - 5), None)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
