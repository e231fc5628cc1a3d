"""The figures cljax draws: the training curves of a run, and the helpers the
notebooks draw with: a log-axis line that keeps the values a log axis cannot
show (zero error) visible, a spectrum whose round-off values do not stretch
the axis, legends off the data without repeated entries, and a note in a
panel that has nothing to draw.

matplotlib is imported inside the functions, so importing this module (and
the training loop, which calls :func:`training_curves`) does not need it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

# Losses are natural-log cross-entropies.
LOSS_UNIT = "nats"


def log_plot(ax: Any, x: Sequence[float], y: Sequence[float], *fmt: str,
             label: str | None = None, zero_label: str | None = None,
             **kwargs: Any) -> list[Any]:
  """``ax.plot(x, y)`` on a log y-axis, with zeros drawn instead of dropped.

  A log axis silently drops values <= 0, so a measured error of exactly 0
  would leave no trace. Those points are drawn as open downward triangles on
  the bottom edge of the axes (in the line's colour) and get their own
  legend entry, ``zero_label`` (default "<label>: 0 (off the log scale)");
  NaNs are dropped as usual. Sets the y scale to log.

  Args:
    ax: a matplotlib Axes.
    x, y: the data, float[n] each.
    *fmt: an optional matplotlib format string, as for ``ax.plot``.
    label: legend label of the line.
    zero_label: legend label of the zero marks.
    **kwargs: more ``ax.plot`` keyword arguments (colour, marker, ...).

  Returns:
    The artists drawn: the line, and the zero marks if there are any.

  Examples:
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
                     label=zero_label or
                     f"{label or 'value'}: 0 (off the log scale)")
    artists.append(marks)
  return artists


def numerical_zeros(values: Sequence[float], *, dim: int | None = None,
                    eps: float | None = None) -> np.ndarray:
  """Which values of a spectrum are round-off, not signal.

  A singular value below ``max(values) * eps * dim`` cannot be told from 0
  in the precision it was computed in (the tolerance of
  ``numpy.linalg.matrix_rank``). On a log axis such values (1e-8 to 1e-15
  of the largest, where the exact value is 0) stretch the axis over many
  decades that say nothing.

  Args:
    values: the spectrum, float[k] >= 0, in any order.
    dim: the larger dimension of the matrix whose spectrum it is (default
      ``k``).
    eps: machine epsilon of the computation (default float32's: cljax's
      features and geometry are float32).

  Returns:
    bool[k], True where the value is a numerical zero (0 included; NaN is
    not).

  >>> numerical_zeros([2.0, 1.0, 1e-9, 0.0]).tolist()
  [False, False, True, True]
  """
  values = np.asarray(values, np.float64)
  dim = values.size if dim is None else int(dim)
  eps = float(np.finfo(np.float32).eps) if eps is None else float(eps)
  top = np.max(values[np.isfinite(values)], initial=0.0)
  return values <= top * eps * max(dim, 1)


def spectrum_plot(ax: Any, values: Sequence[float], *fmt: str,
                  label: str | None = None, dim: int | None = None,
                  eps: float | None = None, **kwargs: Any) -> list[Any]:
  """``s_i / s_max`` against ``i = 1..k`` on a log axis, round-off as zero.

  The numerical zeros (:func:`numerical_zeros`) are drawn as
  :func:`log_plot` draws zeros: hollow triangles on the bottom edge with a
  legend entry of their own, so the axis spans the resolved values only.

  Args:
    ax: a matplotlib Axes.
    values: the spectrum, float[k] >= 0, in the order to draw (descending
      for a spectrum plot).
    *fmt: an optional matplotlib format string.
    label: legend label of the line.
    dim, eps: see :func:`numerical_zeros`.
    **kwargs: more ``ax.plot`` keyword arguments.

  Returns:
    The artists drawn, as :func:`log_plot`.
  """
  values = np.asarray(values, np.float64)
  top = np.max(values[np.isfinite(values)], initial=0.0)
  # NaNs stay NaN, and log_plot drops them.
  ratio = np.where(numerical_zeros(values, dim=dim, eps=eps), 0.0,
                   values / (top if top > 0 else 1.0))
  artists = log_plot(ax, np.arange(1, values.size + 1), ratio, *fmt,
                     label=label, zero_label=(
                         f"{label or 'spectrum'}: round-off (0 in exact "
                         f"arithmetic)"), **kwargs)
  import matplotlib.ticker as ticker
  ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  return artists


def legend_below(ax: Any, *extra_axes: Any, ncol: int = 2) -> Any:
  """One legend for ``ax`` (and twin axes) under the axes, off the data.

  A label drawn more than once (the same run in several calls) is listed
  once, with its first handle. Returns None, drawing no legend, when
  nothing is labelled.
  """
  handles, labels = ax.get_legend_handles_labels()
  for other in extra_axes:
    h, l = other.get_legend_handles_labels()
    handles, labels = handles + h, labels + l
  first = {}
  for h, l in zip(handles, labels):
    first.setdefault(l, h)
  handles, labels = list(first.values()), list(first.keys())
  if not handles:
    return None
  return ax.legend(handles, labels, loc="upper center", ncol=ncol,
                   bbox_to_anchor=(0.5, -0.16), frameon=False, fontsize=9)


def has_data(ax: Any) -> bool:
  """Whether ``ax`` draws anything: a line with points, a collection,
  patch, image or text of its own."""
  return (any(len(line.get_xdata()) for line in ax.lines) or
          bool(ax.collections or ax.patches or ax.images or ax.texts))


def mark_empty(ax: Any, message: str) -> bool:
  """Writes ``message`` across ``ax`` if it has nothing to show.

  A panel whose runs are missing (e.g. a sweep without UCL runs) then says
  so instead of showing empty axes.

  Returns:
    Whether ``ax`` was empty.
  """
  if has_data(ax):
    return False
  ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True,
          transform=ax.transAxes, color="0.35")
  # tick_params, not set_xticks([]): axes made with sharex/sharey share
  # their tick locations, and the other panels keep theirs.
  ax.tick_params(left=False, labelleft=False, bottom=False,
                 labelbottom=False)
  return True


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

  def plot(ax, name, *fmt, label):
    steps, values = _series(rows, name)
    if steps:  # An empty line would still get a legend entry.
      ax.plot(steps, values, *fmt, label=label)

  fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
  plot(axes[0], "train/loss", label="optimised loss")
  axes[0].set_title("training loss")
  axes[0].set_ylabel(f"loss ({LOSS_UNIT})")
  for name in ("dcl", "nscl", "ntxent", "supcon_out"):
    plot(axes[1], f"train/{name}", label=name)
  axes[1].set_title("all losses (monitor temperature)")
  axes[1].set_ylabel(f"loss ({LOSS_UNIT})")
  plot(axes[2], "train/gap", label="DCL - NSCL gap")
  plot(axes[2], "train/gap_bound", "--", label="Theorem-1 bound")
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
  for ax, what in zip(axes, ("the optimised loss", "the monitored losses",
                             "the gap and NC1")):
    if not twins or ax is not axes[2]:
      mark_empty(ax, f"{what}: not logged")
  legend_below(axes[0])
  legend_below(axes[1])
  legend_below(axes[2], *twins)
  fig.tight_layout()
  fig.savefig(path, dpi=100, bbox_inches="tight")
  plt.close(fig)
