"""cljax.analysis.plots: labelled axes, legends off the data, zeros kept on log axes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import image  # noqa: E402

from cljax.analysis import plots  # noqa: E402


def _rows():
  rows = []
  for step in range(10, 110, 10):
    rows.append({"step": step, "train/loss": 4 - step / 100,
                 "train/dcl": 4.1, "train/nscl": 4.0, "train/ntxent": 4.2,
                 "train/supcon_out": 4.05, "train/gap": 0.1,
                 "train/gap_bound": 0.45})
  rows[4]["eval/z/nc1"] = 0.3
  rows[9]["eval/z/nc1"] = 0.0  # Exact collapse: invisible on a plain log axis.
  return rows


def test_log_plot_marks_zeros_on_the_bottom_edge():
  fig, ax = plt.subplots()
  line, marks = plots.log_plot(ax, [1, 2, 3, 4], [0.5, 0.0, float("nan"), 0.1],
                               "o-", label="error")
  assert ax.get_yscale() == "log"
  np.testing.assert_array_equal(line.get_xdata(), [1, 4])
  np.testing.assert_array_equal(marks.get_xdata(), [2])
  # Axes coordinates: y = 0 is the bottom edge whatever the limits.
  assert marks.get_ydata()[0] == 0 and not marks.get_clip_on()
  assert marks.get_label() == "error: 0 (off the log scale)"
  assert marks.get_color() == line.get_color()
  assert len(plots.log_plot(ax, [1], [1.0], label="positive")) == 1
  plt.close(fig)


def test_log_plot_rejects_mismatched_lengths():
  fig, ax = plt.subplots()
  try:
    plots.log_plot(ax, [1, 2], [1.0])
  except ValueError as e:
    assert "x has 2 values but y has 1" in str(e)
  else:
    raise AssertionError("no error")
  plt.close(fig)


def test_training_curves_labels_every_axis_and_keeps_legends_off_the_data(
    tmp_path, monkeypatch):
  figures, close = [], plt.close
  monkeypatch.setattr(plt, "close", figures.append)  # Inspect, then close.
  path = str(tmp_path / "training_curves.png")
  plots.training_curves(_rows(), path)
  assert image.imread(path).shape[2] == 4
  (fig,) = figures
  renderer = fig.canvas.get_renderer()
  axes = fig.get_axes()
  assert len(axes) == 4  # Three panels and NC1's twin axis.
  assert all(ax.get_ylabel() for ax in axes)
  for ax in axes[:3]:
    assert "nats" in ax.get_ylabel() and "step" in ax.get_xlabel()
    legend = ax.get_legend()
    assert legend is not None
    assert not legend.get_window_extent(renderer).overlaps(
        ax.get_window_extent(renderer))
  labels = [t.get_text() for t in axes[2].get_legend().get_texts()]
  assert "NC1 of z (eval): 0 (off the log scale)" in labels
  assert "Theorem-1 bound" in labels
  close(fig)


def _drawn(ax):
  """Whether a panel shows something (a line with points, a patch, text)."""
  return bool(any(len(line.get_xdata()) for line in ax.lines) or
              ax.collections or ax.patches or ax.images or ax.texts)


def _legend_labels(ax):
  legend = ax.get_legend()
  return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def test_numerical_zeros_follow_the_matrix_rank_tolerance():
  eps = float(np.finfo(np.float32).eps)
  s = [1.0, 0.5, 2 * eps * 4, 0.5 * eps * 4, 0.0]
  # Default dim: the number of values (5), so 2 * eps * 4 < eps * 5 too.
  assert plots.numerical_zeros(s[:4]).tolist() == [False, False, False, True]
  assert plots.numerical_zeros(s).tolist() == [False, False, False, True,
                                               True]
  assert plots.numerical_zeros(s, dim=100).tolist() == [False, False, True,
                                                        True, True]
  assert plots.numerical_zeros(s, eps=1e-16).tolist() == [False] * 4 + [True]
  # A NaN (non-finite features) is neither the scale nor a zero.
  assert plots.numerical_zeros([np.nan, 1.0, 1e-9]).tolist() == [False, False,
                                                                 True]


def test_spectrum_plot_spans_only_the_resolved_values():
  # The class-mean spectrum of 6 classes: the 6th value is 0 in exact
  # arithmetic and ~1e-15 of the largest in floating point.
  s = np.array([4.0, 2.0, 1.0, 0.5, 4e-15])
  fig, ax = plt.subplots()
  line, marks = plots.spectrum_plot(ax, s, "o-", label="class means")
  np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
  np.testing.assert_allclose(line.get_ydata(), [1.0, 0.5, 0.25, 0.125])
  np.testing.assert_array_equal(marks.get_xdata(), [5])
  assert marks.get_ydata()[0] == 0 and marks.get_transform() is not (
      ax.transData)
  low, high = ax.get_ylim()
  # The axis covers 0.125..1 with margins: one decade, not fifteen.
  assert 0.1 < low < 0.125 and 1.0 < high < 1.25, (low, high)
  assert marks.get_label() == "class means: round-off (0 in exact arithmetic)"
  plt.close(fig)


def test_legend_below_lists_each_label_once_and_skips_empty_axes():
  fig, (ax, empty) = plt.subplots(1, 2)
  first, = ax.plot([0, 1], [0, 1], label="SCL")
  ax.plot([0, 1], [1, 0], label="SCL")
  ax.plot([0, 1], [2, 2], label="UCL")
  plots.legend_below(ax)
  assert _legend_labels(ax) == ["SCL", "UCL"]
  assert ax.get_legend().legend_handles[0].get_color() == first.get_color()
  assert plots.legend_below(empty) is None and empty.get_legend() is None
  plt.close(fig)


def test_mark_empty_says_why_a_panel_has_nothing():
  fig, (ax, empty) = plt.subplots(1, 2)
  ax.plot([0, 1], [0, 1])
  assert [plots.mark_empty(a, "no UCL runs") for a in (ax, empty)] == [
      False, True]
  assert not ax.texts
  assert [t.get_text() for t in empty.texts] == ["no UCL runs"]
  assert all(_drawn(a) for a in fig.get_axes())
  plt.close(fig)
  # With a shared y axis the drawn panel keeps its ticks.
  fig, (ax, empty) = plt.subplots(1, 2, sharey=True)
  ax.plot([0, 1], [0, 1])
  plots.mark_empty(empty, "no runs")
  fig.canvas.draw()
  assert len([t for t in ax.get_yticklabels() if t.get_text()]) >= 2
  plt.close(fig)


def test_training_curves_has_no_empty_panel_or_repeated_entry(
    tmp_path, monkeypatch):
  figures, close = [], plt.close
  monkeypatch.setattr(plt, "close", figures.append)
  # A run whose monitor logged nothing (no all-losses panel to draw).
  rows = [{"step": s, "train/loss": 1.0 / s, "train/gap": 0.1,
           "train/gap_bound": 0.4} for s in (1, 2, 3)]
  plots.training_curves(rows, str(tmp_path / "curves.png"))
  (fig,) = figures
  assert all(_drawn(ax) for ax in fig.get_axes())
  assert [t.get_text() for t in fig.get_axes()[1].texts] == [
      "the monitored losses: not logged"]
  for ax in fig.get_axes():
    labels = _legend_labels(ax)
    assert len(labels) == len(set(labels))
  close(fig)
