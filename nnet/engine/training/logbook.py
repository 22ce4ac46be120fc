"""TensorBoard logging (main process only), with the predicted-vs-MOS scatter of :mod:`nnet.plots`."""

from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from nnet.plots import scatter_pixels


class Logbook:
    """Scalars and images for TensorBoard under ``<callback_path>logs``; silent on ranks other than 0."""

    def __init__(self, log_dir: str | Path | None) -> None:
        self.writer = SummaryWriter(str(log_dir)) if log_dir is not None else None

    def scalars(self, values: dict[str, float], step: int, prefix: str) -> None:
        if self.writer is None:
            return
        for name, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def scatter(self, tag: str, predicted: np.ndarray, mos: np.ndarray, step: int, x_label: str, y_label: str) -> None:
        """Predicted (x, named with its scale) against subjective scores (y) as an image."""
        if self.writer is None:
            return
        self.writer.add_image(tag, scatter_pixels(predicted, mos, f"{tag}, step {step}", x_label, y_label), step,
                              dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

