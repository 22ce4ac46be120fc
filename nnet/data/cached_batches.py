"""Training batches from decoded images, augmented a batch at a time on the images' device.

The fast counterpart of ``DataLoader(PairDataset(..., mode="train", seed=s))``: for the same
sample order and seed it yields the same tensors (bit for bit on the CPU), without decoding any
image again and without per-sample Python image work.

With ``shared_reference_group = g > 1`` a batch holds n = batch/g references with g distorted
images each, all g under the same augmentation, so each reference goes through the trunk once
(the reference batch is [n, …], the distorted one [g·n, …] laid out as g groups of n).
"""

from collections.abc import Sequence

import torch

from nnet.data.batch_augment import augment_batch, crop_pairs, normalize_pixels
from nnet.data.cache import DecodedImages
from nnet.data.normalize import MOSNormalizer
from nnet.data.records import PairRecord
from nnet.data.transforms import PairedTrainAugment, epoch_seed, sample_generator


class CachedTrainBatches:
    """Batches of ``records`` for one process; see the module docstring."""

    def __init__(self, records: Sequence[PairRecord], images: DecodedImages, normalizer: MOSNormalizer,
                 crop_size: int, seed: int, device: torch.device) -> None:
        self.records = list(records)
        self.images = images
        self.augment = PairedTrainAugment(crop_size)
        self.seed = seed
        self.device = device
        self.targets = torch.tensor([[normalizer.normalize(r.mos)] for r in self.records], dtype=torch.float32)

    def build(self, reference_indices: Sequence[int], distorted_indices: Sequence[int], epoch: int) -> dict:
        """Augmented crops for ``distorted_indices`` (g groups of n) and their n references.

        One parameter draw per reference entry, from the generator of that record's index, is
        shared by its g distorted images; with g = 1 this is exactly the per-image path.
        """
        parameters = [self.augment.draw(self.images.size(self.records[i].distorted), sample_generator(self.seed, epoch, i))
                      for i in reference_indices]
        groups = len(distorted_indices) // len(reference_indices)
        repeated = parameters * groups
        references = [self.images[self.records[i].reference] for i in reference_indices] * groups
        distorted = [self.images[self.records[i].distorted] for i in distorted_indices]
        crops = crop_pairs(references, distorted, repeated, self.augment.crop_size).to(self.device, non_blocking=True)
        pairs = augment_batch(normalize_pixels(crops), repeated, rotate=self.augment.rotate)  # [g·n, 6, c, c]
        return {
            "reference": pairs[:len(reference_indices), :3],  # [n, 3, c, c]
            "distorted": pairs[:, 3:],  # [g·n, 3, c, c]
            "target": self.targets[list(distorted_indices)].to(self.device, non_blocking=True),
            "name": [self.records[i].name for i in distorted_indices],
        }


def shared_reference_plan(records: Sequence[PairRecord], batch_size: int, group: int, seed: int, epoch: int,
                          rank: int = 0, world_size: int = 1) -> list[tuple[list[int], list[int]]]:
    """This process's batches of ``batch_size // group`` references × ``group`` of their distorted
    images, as (reference entries, distorted indices in g groups of n); incomplete groups are dropped."""
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    by_reference: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        by_reference.setdefault(str(record.reference), []).append(index)
    chunks = []
    for members in by_reference.values():
        shuffled = [members[i] for i in torch.randperm(len(members), generator=generator)]
        chunks += [shuffled[i:i + group] for i in range(0, len(shuffled) - group + 1, group)]
    chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator)][rank::world_size]
    per_batch = batch_size // group
    plan = []
    for start in range(0, len(chunks) - per_batch + 1, per_batch):
        selected = chunks[start:start + per_batch]
        plan.append(([chunk[0] for chunk in selected], [chunk[j] for j in range(group) for chunk in selected]))
    return plan
