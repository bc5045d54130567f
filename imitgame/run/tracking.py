"""Run tracking: TensorBoard scalars, an in-memory history, the convergence figure, results.json.

TensorBoard namespaces: ``loss/``, ``metrics/`` (regret, exploitability, relative_error),
``params/`` (θ entries of instance 0, by name — or, past ``MAX_PARAM_SCALARS`` learned entries,
their histogram and norm), ``lr/``; the resolved config is logged as text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from imitgame.problems.base import relative_error  # noqa: E402
from imitgame.solver.trainer import EvalRecord  # noqa: E402

MAX_PARAM_SCALARS = 20  # more learned entries than this: a histogram and the norm instead
MAX_TRACES = 10  # θ traces drawn in the convergence figure


class RunTracker:
    """Writes a run's TensorBoard events and keeps the history for the figure and checkpoints."""

    def __init__(
        self,
        run_dir: Path,
        param_names: list[str],
        learn_index: Tensor,
        theta_true: Tensor | None,
        *,
        purge_step: int | None = None,
        history: list[dict[str, Any]] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.param_names = param_names
        self.learn_index = learn_index
        self.theta_true = theta_true
        self.writer = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=purge_step)
        self.history: list[dict[str, Any]] = list(history or [])

    def log_config(self, text: str) -> None:
        self.writer.add_text("config", "```yaml\n" + text + "\n```", 0)

    def log(self, record: EvalRecord) -> dict[str, Any]:
        step = record.step
        row: dict[str, Any] = {
            "step": step,
            "regret": record.regret.mean().item(),
            "objective": record.value.mean().item(),
            "active": int(record.active.sum()),
        }
        if record.exploitability is not None:
            row["exploitability"] = record.exploitability.mean().item()
        if record.observation_loss is not None:
            row["observation_loss"] = record.observation_loss.mean().item()
        if self.theta_true is not None:
            row["relative_error"] = (
                relative_error(record.theta, self.theta_true, self.learn_index).mean().item()
            )
        row["theta"] = record.theta[0, self.learn_index].tolist()
        self.writer.add_scalar("loss/objective", row["objective"], step)
        self.writer.add_scalar("metrics/regret", row["regret"], step)
        if "exploitability" in row:
            self.writer.add_scalar("metrics/exploitability", row["exploitability"], step)
        if "observation_loss" in row:
            self.writer.add_scalar("loss/observation", row["observation_loss"], step)
        if "relative_error" in row:
            self.writer.add_scalar("metrics/relative_error", row["relative_error"], step)
        self.writer.add_scalar("metrics/active_instances", row["active"], step)
        if len(row["theta"]) <= MAX_PARAM_SCALARS:
            for j, value in zip(self.learn_index.tolist(), row["theta"]):
                self.writer.add_scalar(f"params/{self.param_names[j]}", value, step)
        else:
            learned = record.theta[0, self.learn_index].detach().cpu()
            self.writer.add_histogram("params/theta", learned, step)
            self.writer.add_scalar("params/theta_norm", float(learned.norm()), step)
        for name, lr in record.learning_rates.items():
            self.writer.add_scalar(f"lr/{name}", lr, step)
        self.history.append(row)
        return row

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()

    def figure(self, path: Path) -> None:
        """Convergence figure: regret/exploitability, relative error, and θ traces."""
        if not self.history:
            return
        steps = [r["step"] for r in self.history]
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        ax = axes[0]
        ax.semilogy(steps, [max(abs(r["regret"]), 1e-16) for r in self.history], label="|regret| ψ")
        if "exploitability" in self.history[0]:
            values = [max(abs(r["exploitability"]), 1e-16) for r in self.history]
            ax.semilogy(steps, values, label="exploitability φ")
        ax.set_xlabel("iteration")
        ax.set_title("regret and exploitability")
        ax.legend()
        ax = axes[1]
        if "relative_error" in self.history[0]:
            ax.semilogy(steps, [max(r["relative_error"], 1e-16) for r in self.history])
            ax.set_title("relative error of θ̂ (learned entries)")
        elif "observation_loss" in self.history[0]:
            ax.semilogy(steps, [max(r["observation_loss"], 1e-16) for r in self.history])
            ax.set_title("observation loss (no true θ)")
        else:
            ax.set_title("relative error: no true θ")
        ax.set_xlabel("iteration")
        ax = axes[2]
        names = [self.param_names[j] for j in self.learn_index.tolist()][:MAX_TRACES]
        traces = list(zip(*[r["theta"][:MAX_TRACES] for r in self.history]))
        for i, (name, trace) in enumerate(zip(names, traces)):
            line = ax.plot(steps, trace, label=name)[0]
            if self.theta_true is not None:
                true = self.theta_true[0, self.learn_index[i]].item()
                ax.axhline(true, color=line.get_color(), linestyle="--", linewidth=0.8)
        shown = "" if len(self.learn_index) <= MAX_TRACES else f", first {MAX_TRACES} entries"
        ax.set_title(f"θ̂ (instance 0{shown}; dashed: true)")
        ax.set_xlabel("iteration")
        if 0 < len(names) <= 10:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
