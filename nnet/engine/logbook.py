"""TensorBoard logging (main process only) and the predicted-vs-MOS scatter plot image."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torch.utils.tensorboard import SummaryWriter

SCATTER_SIZE = 320
_MARGIN = 36


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

    def scatter(self, tag: str, predicted: np.ndarray, mos: np.ndarray, step: int) -> None:
        if self.writer is None:
            return
        self.writer.add_image(tag, np.asarray(scatter_plot(predicted, mos)), step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def scatter_plot(predicted: np.ndarray, mos: np.ndarray, size: int = SCATTER_SIZE) -> Image.Image:
    """A small RGB scatter of predicted score (x) against MOS (y) with the identity line."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    low = float(min(predicted.min(), mos.min()))
    high = float(max(predicted.max(), mos.max()))
    span = (high - low) or 1.0
    inner = size - 2 * _MARGIN

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        return _MARGIN + (x - low) / span * inner, size - _MARGIN - (y - low) / span * inner

    draw.rectangle([_MARGIN, _MARGIN, size - _MARGIN, size - _MARGIN], outline="black")
    draw.line([to_pixel(low, low), to_pixel(high, high)], fill=(160, 160, 160))
    for x, y in zip(predicted.tolist(), mos.tolist()):
        px, py = to_pixel(x, y)
        draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=(31, 119, 180))
    draw.text((_MARGIN, size - _MARGIN + 8), f"predicted  [{low:.0f}, {high:.0f}]", fill="black")
    draw.text((4, 4), "MOS", fill="black")
    return image
