"""The one place training batches are built: augmented crops of image pairs, a whole batch at a time.

A batch is ``dict(reference, distorted, target, name)``. Pixels come from an image store
(:mod:`nnet.data.batches.image_store`): decoded once into memory, or decoded from disk per batch.
Each sample's augmentation is drawn from its own generator, seeded by ``(seed, epoch, record index)``
(:func:`~nnet.data.batches.transforms.sample_generator`), with the distribution of
:class:`~nnet.data.batches.transforms.PairedTrainAugment`; the crops, flips and rotations of the
whole batch are then applied at once on the builder's device (:mod:`nnet.data.batches.augment`),
bit for bit what ``PairedTrainAugment`` does to one sample on the CPU. A batch therefore depends
only on its indices, the seed and the epoch: not on which process or DataLoader worker builds it.

With ``shared_reference_group = g > 1`` a batch holds n = batch/g references with g distorted
images each, all g under the same augmentation, so each reference goes through the trunk once
(the reference batch is [n, …], the distorted one [g·n, …] laid out as g groups of n).
"""

import math
from collections.abc import Sequence

import torch
from torchvision.transforms import functional as F

from nnet.data.batches.augment import augment_batch, crop_pairs, host_to_device
from nnet.data.batches.image_store import DecodedImages, ImageFiles
from nnet.data.batches.pixels import normalize_pixels
from nnet.data.batches.transforms import PairedTrainAugment, epoch_seed, sample_generator
from nnet.data.pair_checks import pair_size_problem
from nnet.data.records import PairRecord, group_indices
from nnet.data.score_scale import ScoreScale
from nnet.errors import DataError


class PairBatchBuilder:
    """Batches of ``records`` from ``images``, built on ``device``; see the module docstring.

    Targets are the normalised scores (NaN for unlabelled records), float32 ``[B, 1]``.
    """

    def __init__(self, records: Sequence[PairRecord], images: DecodedImages | ImageFiles,
                 score_scale: ScoreScale = ScoreScale(), crop_size: int = 192, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        _check_score_direction(records, score_scale)
        self.records = list(records)
        self.images = images
        self.augment = PairedTrainAugment(crop_size)
        self.seed = seed
        self.device = torch.device(device)
        self.targets = torch.tensor([[math.nan if r.mos is None else score_scale.normalize(r.mos)]
                                     for r in self.records], dtype=torch.float32)  # [N, 1]

    @property
    def crop_size(self) -> int:
        return self.augment.crop_size

    def build(self, reference_indices: Sequence[int], distorted_indices: Sequence[int], epoch: int) -> dict:
        """Augmented crops for ``distorted_indices`` (g groups of n) and their n references.

        One parameter draw per reference entry, from the generator of that record's index, is
        shared by its g distorted images; with g = 1 this is exactly the per-image path.
        """
        references = [self.images[self.records[i].reference] for i in reference_indices]
        distorted = [self.images[self.records[i].distorted] for i in distorted_indices]
        self._check_sizes(distorted_indices)
        parameters = [self.augment.draw(self.images.size(self.records[i].distorted),
                                        sample_generator(self.seed, epoch, i)) for i in reference_indices]
        groups = len(distorted_indices) // len(reference_indices)
        repeated = parameters * groups
        crops = crop_pairs(references * groups, distorted, repeated, self.crop_size).to(self.device, non_blocking=True)
        pairs = augment_batch(normalize_pixels(crops), repeated, rotate=self.augment.rotate)  # [g·n, 6, c, c]
        return {
            "reference": pairs[:len(reference_indices), :3],  # [n, 3, c, c]
            "distorted": pairs[:, 3:],  # [g·n, 3, c, c]
            "target": host_to_device(self.targets[list(distorted_indices)], torch.float32, self.device),
            "name": [self.records[i].name for i in distorted_indices],
        }

    def center_crops(self, indices: Sequence[int]) -> dict:
        """The central crops of the pairs ``indices``: ``reference`` and ``distorted`` ``[k, 3, c, c]``,
        normalised (deterministic; the backbone's BatchNorm calibration)."""
        references = [self.images[self.records[i].reference] for i in indices]
        distorted = [self.images[self.records[i].distorted] for i in indices]
        self._check_sizes(indices)
        window = [self.crop_size, self.crop_size]
        crops = {name: torch.stack([F.center_crop(image, window) for image in images]).to(self.device)
                 for name, images in (("reference", references), ("distorted", distorted))}
        return {name: normalize_pixels(pixels) for name, pixels in crops.items()}

    def _check_sizes(self, indices: Sequence[int]) -> None:
        """A DataError for the first pair that cannot be cropped (cheap: sizes are known by now)."""
        for index in indices:
            record = self.records[index]
            problem = pair_size_problem(record.reference, record.distorted, self.images.size(record.reference)[::-1],
                                        self.images.size(record.distorted)[::-1], self.crop_size)
            if problem:
                raise DataError(problem)


def _check_score_direction(records: Sequence[PairRecord], score_scale: ScoreScale) -> None:
    mismatched = [r for r in records if r.mos is not None and r.lower_is_better != score_scale.lower_is_better]
    if mismatched:
        raise DataError(f"{mismatched[0].distorted}: its score is "
                        f"{'lower' if mismatched[0].lower_is_better else 'higher'}-is-better "
                        f"but the score_scale has lower_is_better={score_scale.lower_is_better};"
                        f" build the score_scale with the dataset's score direction")


def shared_reference_plan(records: Sequence[PairRecord], batch_size: int, group: int, seed: int, epoch: int,
                          rank: int = 0, world_size: int = 1) -> list[tuple[list[int], list[int]]]:
    """This process's batches of ``batch_size // group`` references × ``group`` of their distorted
    images, as (reference entries, distorted indices in g groups of n); incomplete groups are dropped."""
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    chunks = []
    for members in group_indices([record.reference for record in records]):
        shuffled = [members[i] for i in torch.randperm(len(members), generator=generator)]
        chunks += [shuffled[i:i + group] for i in range(0, len(shuffled) - group + 1, group)]
    chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator)][rank::world_size]
    per_batch = batch_size // group
    plan = []
    for start in range(0, len(chunks) - per_batch + 1, per_batch):
        selected = chunks[start:start + per_batch]
        plan.append(([chunk[0] for chunk in selected], [chunk[j] for j in range(group) for chunk in selected]))
    return plan
