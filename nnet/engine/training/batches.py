"""Each epoch's training batches: which samples go together, and where they are built.

The plan (which records form each batch) comes first: a ``DistributedSampler`` permutation dealt
out to the ranks and cut into batches, so N processes see the same global batches as one process
with an N-times larger batch; or, with ``data.shared_reference_group`` > 1, groups of distorted
images per reference (:func:`~nnet.data.batches.builder.shared_reference_plan`). Every batch is then
made by :class:`~nnet.data.batches.builder.PairBatchBuilder`, either

* in this process from the decoded-image cache (``data.cache_images``, the fast path), or
* in ``num_workers`` DataLoader workers that decode the images from disk (datasets larger than
  memory); worker ``k`` builds whole planned batches.

A batch depends only on its plan entry, the seed and the epoch, so both ways give the same
tensors, whatever the number of workers.
"""

import logging
import time
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from nnet.config import Config, resolve_num_workers
from nnet.data.batches.builder import PairBatchBuilder, shared_reference_plan
from nnet.data.batches.image_store import DecodedImages, ImageFiles
from nnet.data.batches.transforms import epoch_seed
from nnet.data.pair_checks import validate_images
from nnet.data.records import PairRecord
from nnet.engine.distributed import Runtime
from nnet.engine.run_data import TrainingData
from nnet.errors import IQAError

log = logging.getLogger(__name__)
GPU_CACHE_HEADROOM = 2.0  # leave the cache at most 1/2 of the free GPU memory

BatchPlan = list[tuple[list[int], list[int]]]  # (reference entries, distorted indices) per batch


class TrainingBatches:
    """Per-epoch batches of this process (see the module docstring)."""

    def __init__(self, data: TrainingData, config: Config, runtime: Runtime,
                 images: DecodedImages | None = None) -> None:
        """``images``: a decoded-image cache holding (at least) the training images, shared with other
        runs (the protocol's splits draw on one cache of the whole dataset); None decodes this run's."""
        self.config = config
        self.runtime = runtime
        self.records = data.train
        self.cached = config.data.cache_images
        if self.cached:
            images = images if images is not None else decode_images(data.train, config, runtime)
            self.builder = PairBatchBuilder(data.train, images, data.score_scale, config.data.crop_size,
                                            config.seed, runtime.device)
        else:
            # Every header now, so that all problems are reported together before training starts.
            validate_images(data.train, config.data.crop_size)
            # Built in DataLoader workers, on the CPU; the training loop moves batches to the device.
            self.builder = PairBatchBuilder(data.train, ImageFiles(), data.score_scale, config.data.crop_size,
                                            config.seed)

    def plan(self, epoch: int) -> BatchPlan:
        """This process's batches of ``epoch``, as record indices (incomplete batches are dropped)."""
        config, runtime = self.config, self.runtime
        group = config.data.shared_reference_group
        if group > 1:
            return shared_reference_plan(self.records, config.batch_size, group, config.seed, epoch,
                                         runtime.rank, runtime.world_size)
        sampler = DistributedSampler(range(len(self.records)), num_replicas=runtime.world_size, rank=runtime.rank,
                                     shuffle=True, seed=config.seed, drop_last=True)
        sampler.set_epoch(epoch)
        order, size = list(sampler), config.batch_size
        chunks = [order[start:start + size] for start in range(0, len(order) - size + 1, size)]
        return [(chunk, chunk) for chunk in chunks]

    def epoch(self, epoch: int) -> tuple[Iterable[dict], int]:
        """(batches, how many) for ``epoch``."""
        plan = self.plan(epoch)
        if self.cached:
            return (self.builder.build(references, distorted, epoch) for references, distorted in plan), len(plan)
        # Its own generator (for the workers' seeds) leaves the global RNG, and so dropout, to the
        # model: both ways then draw the same dropout masks.
        loader = DataLoader(PlannedBatches(self.builder, plan, epoch), batch_size=None,
                            num_workers=resolve_num_workers(self.config.num_workers),
                            pin_memory=self.runtime.device.type == "cuda",
                            generator=torch.Generator().manual_seed(epoch_seed(self.config.seed, epoch)))
        return _raise_errors(loader), len(plan)


def decode_images(records: Sequence[PairRecord], config: Config, runtime: Runtime) -> DecodedImages:
    """The images of ``records`` decoded into the cache: on the GPU when training on one and they fit
    (``data.cache_device``), else in CPU memory."""
    started = time.perf_counter()
    images = DecodedImages(records, config.data.crop_size)
    device = _cache_device(images.nbytes, config, runtime)
    images.to(device)
    if runtime.is_main:
        log.info("decoded %d images (%.2f GB) into the %s cache in %.1f s", len(images.position),
                 images.nbytes / 1e9, device, time.perf_counter() - started)
    return images


def _cache_device(nbytes: int, config: Config, runtime: Runtime) -> torch.device:
    device = runtime.device
    if config.data.cache_device == "cpu" or device.type != "cuda":
        return torch.device("cpu")
    free, _ = torch.cuda.mem_get_info(device)
    return device if nbytes * GPU_CACHE_HEADROOM < free else torch.device("cpu")


class PlannedBatches(Dataset):
    """Item ``i``: planned batch ``i`` of ``epoch``, built by ``builder`` (in a DataLoader worker).

    An input error (a bad image) comes back as the item, so that the training process raises it
    with its own one-line message rather than DataLoader's wrapped traceback.
    """

    def __init__(self, builder: PairBatchBuilder, plan: BatchPlan, epoch: int) -> None:
        self.builder = builder
        self.plan = plan
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> dict | IQAError:
        references, distorted = self.plan[index]
        try:
            return self.builder.build(references, distorted, self.epoch)
        except IQAError as error:
            return error


def _raise_errors(batches: Iterable[dict | IQAError]) -> Iterator[dict]:
    for batch in batches:
        if isinstance(batch, IQAError):
            raise batch
        yield batch
