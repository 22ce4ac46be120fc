"""Datasets as a newcomer meets them in reports: every missing dataset named at once, plots whose tick labels
stay apart, whose predicted axis names its scale, and a synthetic tree labelled as such."""

import numpy as np
import pytest
import torch

import main
from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig
from nnet.data.datasets.presets import locate
from nnet.engine.distributed import Runtime
from nnet.engine.scoring.cross_dataset import load_datasets
from nnet.engine.training.logbook import Logbook
from nnet.errors import DataError
from nnet.plots import predicted_label, scatter_figure, spread_figure


def test_the_cross_dataset_pre_check_names_every_missing_dataset(tmp_path):
    configs = [(name, Config(name, ModelConfig(), DataConfig(dataset=name, root=str(tmp_path / f"no_{name}")),
                             OptimizerConfig())) for name in ("live", "tid2013", "kadid10k")]
    with pytest.raises(DataError) as error:
        load_datasets(configs, "all", Runtime(torch.device("cpu")))
    message = str(error.value)
    assert message.startswith("--datasets (3 datasets): 3 problems found")
    assert all(f"no_{name}" in message for name, _ in configs)


def tick_label_gap(figure) -> float:
    """The smallest horizontal gap in pixels between neighbouring visible x tick labels (negative: overlap)."""
    figure.canvas.draw()
    renderer, axes = figure.canvas.get_renderer(), figure.axes[0]
    low, high = sorted(axes.get_xlim())
    boxes = [label.get_window_extent(renderer) for label, tick in zip(axes.get_xticklabels(), axes.get_xticks(),
                                                                      strict=True) if low <= tick <= high]
    return min(right.x0 - left.x1 for left, right in zip(boxes, boxes[1:], strict=False))


@pytest.mark.parametrize(("start", "width"), [(-1503.3, 2.0), (-13000, 3000), (-1500, 400)])
def test_tick_labels_of_negated_predictions_do_not_collide(start, width):
    predicted = start - np.random.default_rng(0).random(50) * width
    for inches, dpi in ((5.0, 120), (4.0, 80)):  # the PNG files and TensorBoard's images
        assert tick_label_gap(scatter_figure(predicted, np.linspace(0, 1, 50), inches=inches, dpi=dpi)) > 0


def test_the_predicted_axis_names_its_scale_and_a_synthetic_tree_its_nature(tmp_path):
    assert predicted_label("PIPAL", False) == "predicted score, on PIPAL's scale (higher is better)"
    assert predicted_label("", True) == "predicted score, on the checkpoint's scale (lower is better)"
    synthetic = locate(DataConfig(dataset="PIPAL", root=str(tmp_path), synthetic=True))
    assert synthetic.label == "PIPAL (synthetic)" and synthetic.title == "PIPAL"
    assert locate(DataConfig(dataset="PIPAL", root=str(tmp_path))).label == "PIPAL"


def test_the_protocol_plots_legend_hides_no_split():
    """A split at the top of the first panel (where the legend used to sit) stays visible."""
    values = {"PLCC": [0.8575, 0.7715, 0.6841, 0.8145, 0.7455], "SRCC": [0.81, 0.74, 0.67, 0.31, 0.69]}
    intervals = {name: (float(np.mean(points)), 0.6, 0.9) for name, points in values.items()}
    figure = spread_figure(values, intervals, "test part of 5 splits")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legend = figure.legends[0].get_window_extent(renderer)
    assert len(figure.legends) == 1 and not any(axes.get_legend() for axes in figure.axes)
    assert not any(legend.overlaps(axes.get_window_extent(renderer)) for axes in figure.axes)


def test_the_tensorboard_scatter_names_the_checkpoints_scale_and_the_dataset(tiny_config, monkeypatch):
    seen = []
    monkeypatch.setattr(Logbook, "scatter", lambda self, tag, predicted, mos, step, x_label, y_label:
                        seen.append((tag, x_label, y_label)))
    assert main.main(["-c", str(tiny_config(epochs=1, data={"val_fraction": 0.34})), "--cpu"]) == 0
    assert seen == [("val/predicted_vs_mos", "predicted score, on PIPAL's scale (higher is better)",
                     "PIPAL score (higher is better)")]
