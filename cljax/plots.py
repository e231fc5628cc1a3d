"""The figures cljax draws: the training curves of a run, and a log-axis line
that keeps the values a log axis cannot show (zero error) visible.

matplotlib is imported inside the functions, so importing this module (and
the training loop, which calls :func:`training_curves`) does not need it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

# Losses are natural-log cross-entropies.
LOSS_UNIT = "nats"


def log_plot(ax: Any, x: Sequence[float], y: Sequence[float], *fmt: str,
             label: str | None = None, **kwargs: Any) -> list[Any]:
  """``ax.plot(x, y)`` on a log y-axis, with zeros drawn instead of dropped.

  A log axis silently drops values <= 0, so a measured error of exactly 0
  would leave no trace. Those points are drawn as open downward triangles on
  the bottom edge of the axes (in the line's colour) and get their own
  legend entry, "<label>: 0 (off the log scale)"; NaNs are dropped as
  usual. Sets the y scale to log.

  Args:
    ax: a matplotlib Axes.
    x, y: the data, float[n] each.
    *fmt: an optional matplotlib format string, as for ``ax.plot``.
    label: legend label of the line.
    **kwargs: more ``ax.plot`` keyword arguments (colour, marker, ...).

  Returns:
    The artists drawn: the line, and the zero marks if there are any.

  >>> import matplotlib
  >>> matplotlib.use("Agg")
  >>> import matplotlib.pyplot as plt
  >>> fig, ax = plt.subplots()
  >>> artists = log_plot(ax, [1, 2, 5], [0.1, 0.0, 0.0], "o-", label="error")
  >>> [a.get_label() for a in artists]
  ['error', 'error: 0 (off the log scale)']
  >>> plt.close(fig)
  """
  x, y = list(x), [float(v) for v in y]
  if len(x) != len(y):
    raise ValueError(f"log_plot: x has {len(x)} values but y has {len(y)}.")
  positive = [(a, b) for a, b in zip(x, y) if b > 0]
  zero = [a for a, b in zip(x, y) if b <= 0 and not math.isnan(b)]
  ax.set_yscale("log")
  line, = ax.plot([p[0] for p in positive], [p[1] for p in positive], *fmt,
                  label=label, **kwargs)
  artists = [line]
  if zero:
    # x in data units, y in axes units: 0 is the bottom edge at any limits.
    marks, = ax.plot(zero, [0.0] * len(zero), linestyle="none", marker="v",
                     markersize=9, markerfacecolor="none",
                     markeredgewidth=1.5, color=line.get_color(),
                     transform=ax.get_xaxis_transform(), clip_on=False,
                     label=f"{label or 'value'}: 0 (off the log scale)")
    artists.append(marks)
  return artists


def legend_below(ax: Any, *extra_axes: Any, ncol: int = 2) -> Any:
  """One legend for ``ax`` (and twin axes) under the axes, off the data."""
  handles, labels = ax.get_legend_handles_labels()
  for other in extra_axes:
    h, l = other.get_legend_handles_labels()
    handles, labels = handles + h, labels + l
  return ax.legend(handles, labels, loc="upper center", ncol=ncol,
                   bbox_to_anchor=(0.5, -0.16), frameon=False, fontsize=9)


def _series(rows, name):
  pts = [(r["step"], r[name]) for r in rows
         if name in r and r[name] is not None]
  return [p[0] for p in pts], [p[1] for p in pts]


def training_curves(rows: list[dict[str, Any]], path: str) -> None:
  """Draws a run's ``training_curves.png`` from its metrics.jsonl rows.

  Three panels over the training step: the optimised loss; every monitored
  loss (``train/dcl``, ``train/nscl``, ``train/ntxent``,
  ``train/supcon_out``, at the monitor temperature); the DCL - NSCL gap
  with its Theorem-1 bound (Luthra et al. 2025) and, on a log axis, NC1 of
  the head output z at the evaluations. Missing metrics are skipped.

  Args:
    rows: the run's logged rows, ``{"step": int, name: float, ...}``.
    path: the PNG to write.
  """
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
  axes[0].plot(*_series(rows, "train/loss"), label="optimised loss")
  axes[0].set_title("training loss")
  axes[0].set_ylabel(f"loss ({LOSS_UNIT})")
  for name in ("dcl", "nscl", "ntxent", "supcon_out"):
    steps, values = _series(rows, f"train/{name}")
    if steps:
      axes[1].plot(steps, values, label=name)
  axes[1].set_title("all losses (monitor temperature)")
  axes[1].set_ylabel(f"loss ({LOSS_UNIT})")
  axes[2].plot(*_series(rows, "train/gap"), label="DCL - NSCL gap")
  axes[2].plot(*_series(rows, "train/gap_bound"), "--",
               label="Theorem-1 bound")
  axes[2].set_title("gap vs bound")
  axes[2].set_ylabel(f"gap ({LOSS_UNIT})")
  twins = []
  steps, nc1 = _series(rows, "eval/z/nc1")
  if steps:
    twin = axes[2].twinx()
    log_plot(twin, steps, nc1, "k.-", label="NC1 of z (eval)")
    twin.set_ylabel(r"NC1 = tr($\Sigma_W \Sigma_B^+$)/C (unitless)")
    twins.append(twin)
  for ax in axes:
    ax.set_xlabel("training step")
  legend_below(axes[0])
  legend_below(axes[1])
  legend_below(axes[2], *twins)
  fig.tight_layout()
  fig.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(fig)
