"""The original code's IQA Conformer parity fixture, in the compact form that ships with the repository.

The full fixtures (29 MB, ``../shared/fixtures/upstream`` in the authors' workspace) are the original code's
two checkpoints (random weights) and the inputs and outputs of its forward pass. The IQA Conformer's part
ships as ``tests/fixtures/upstream/iqa_conformer_seed0.npz`` (9.8 MB):

* the checkpoint's tensors, in the order, shapes and dtypes of the shipped key listing; each float32
  tensor as its four byte planes (little-endian), deflated: the sign-and-exponent bytes of random
  weights compress, the low mantissa bytes do not (a plain deflate gives 10.6 MB);
* ``original_outputs``: the original code's eval-mode outputs ``[4, 1]`` on the fixture's pairs.

The pairs are regenerated from their recipe (:func:`fixture_pairs`; bit for bit the full fixture's). The
checkpoint is rebuilt in the original code's file layout (``Model.save``), so the tests load it through
the same path as the original file.

    python -m tests.upstream_fixture PATH/TO/fixtures/upstream    # rewrite the compact file from the full ones
"""

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SHIPPED = Path(__file__).resolve().parent / "fixtures" / "upstream"
STEM = "iqa_conformer_seed0"
COMPACT = SHIPPED / f"{STEM}.npz"
LISTING = SHIPPED / "state_dict_keys_conformer.txt"
NOISE_LEVELS = (0.05, 0.1667, 0.2833, 0.4)  # of the distorted images, as torch.linspace(0.05, 0.4, 4)


def fixture_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """The fixture's reference and distorted images ``[4, 3, 192, 192]`` in [-1, 1], from their recipe
    (fixtures README): seeded uniform noise at 24×24, bilinearly upsampled, plus fine noise; the distorted
    images add Gaussian noise of four levels; both clipped to [0, 1], then mapped to [-1, 1]."""
    generator = torch.Generator().manual_seed(1)
    coarse = torch.rand(4, 3, 24, 24, generator=generator)
    upsampled = F.interpolate(coarse, size=192, mode="bilinear", align_corners=False)
    reference = (upsampled + torch.randn(4, 3, 192, 192, generator=generator) * 0.08).clamp(0, 1)
    levels = torch.linspace(NOISE_LEVELS[0], NOISE_LEVELS[-1], 4).view(4, 1, 1, 1)
    distorted = (reference + torch.randn(4, 3, 192, 192, generator=generator) * levels).clamp(0, 1)
    return (reference - 0.5) / 0.5, (distorted - 0.5) / 0.5


def listing() -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """(key, shape, dtype) of every entry of the original checkpoint's state dict, in its order."""
    entries = []
    for line in LISTING.read_text().splitlines():
        if line.strip():
            key, shape, dtype = line.split()
            dimensions = tuple(int(size) for size in shape.strip("[]").split(",") if size)
            entries.append((key, dimensions, getattr(torch, dtype.removeprefix("torch."))))
    return entries


def pack(full_folder: Path) -> Path:
    """Write :data:`COMPACT` from the full fixtures' Conformer checkpoint and outputs."""
    state = torch.load(full_folder / f"{STEM}.ckpt", weights_only=True)["model_state_dict"]
    outputs = torch.load(full_folder / f"{STEM}_io.pt", weights_only=True)["out"]
    arrays = {}
    for key, shape, dtype in listing():
        tensor = state[key]
        assert tuple(tensor.shape) == shape and tensor.dtype == dtype, key
        array = tensor.contiguous().numpy()
        if dtype == torch.float32:  # [4, n]: byte k of every value, then byte k + 1
            array = np.ascontiguousarray(array.reshape(-1).astype("<f4").view(np.uint8).reshape(-1, 4).T)
        arrays[key] = array
    np.savez_compressed(COMPACT, original_outputs=outputs.numpy(), **arrays)
    return COMPACT


def unpack(folder: Path) -> Path:
    """Write ``{STEM}.ckpt`` (the original code's file layout) and ``{STEM}_io.pt`` (``ref``, ``dist``,
    ``out``) into ``folder`` from :data:`COMPACT`; returns ``folder``."""
    state = collections.OrderedDict()
    with np.load(COMPACT, allow_pickle=False) as arrays:
        for key, shape, dtype in listing():
            array = arrays[key]
            if dtype == torch.float32:
                array = np.ascontiguousarray(array.T).view("<f4").astype(np.float32)
            state[key] = torch.from_numpy(np.array(array).reshape(shape))
        outputs = torch.from_numpy(arrays["original_outputs"])
    torch.save({"model_state_dict": state, "optimizer_state_dict": None, "model_step": torch.tensor(1),
                "is_distributed": False, "ema_model_state_dict": None}, folder / f"{STEM}.ckpt")
    reference, distorted = fixture_pairs()
    torch.save({"ref": reference, "dist": distorted, "out": outputs}, folder / f"{STEM}_io.pt")
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.upstream_fixture", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("full_folder", type=Path, help="the folder of the full fixtures (iqa_conformer_seed0.ckpt, "
                                                       "iqa_conformer_seed0_io.pt)")
    print(f"wrote {pack(parser.parse_args(argv).full_folder)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
