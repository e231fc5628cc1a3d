"""cljax.plots: labelled axes, legends off the data, zeros kept on log axes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import image  # noqa: E402

from cljax import plots  # noqa: E402


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
