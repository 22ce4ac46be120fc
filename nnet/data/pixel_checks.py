"""Whether float pixels are on the [0, 1] scale the models take: shared by the metric API
(``nnet.engine.scoring.metric``) and the ONNX runtime (``nnet.runtime``), so both refuse alike."""


def float_range_problem(name: str, low: float, high: float) -> str | None:
    """Why float pixels with values in [``low``, ``high``] cannot be scored, or None; names the usual mix-ups
    (images normalised to [-1, 1], or kept at 0..255) with their fix."""
    if 0.0 <= low and high <= 1.0:  # False for NaN too
        return None
    hint = ""
    if -1.0 <= low < 0.0 and high <= 1.0:
        hint = " (it looks normalised to [-1, 1]: pass (x + 1) / 2)"
    elif 1.0 < high <= 255.0 and low >= 0.0:
        hint = " (it looks like 0..255: divide by 255)"
    return f"{name}: values in [{low:.4g}, {high:.4g}], but images must be floats in [0, 1]{hint}"
