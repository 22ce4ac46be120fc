"""Where each epoch's training batches come from: decoded-image cache (fast) or per-image loading."""

import logging
import time
from collections.abc import Iterable

import torch
from torch.utils.data import DataLoader, DistributedSampler

from nnet.config import Config
from nnet.data import PairDataset
from nnet.data.cache import DecodedImages
from nnet.data.cached_batches import CachedTrainBatches, shared_reference_plan
from nnet.data.transforms import epoch_seed
from nnet.engine.distributed import Runtime
from nnet.engine.run_data import TrainingData

log = logging.getLogger(__name__)
GPU_CACHE_HEADROOM = 2.0  # leave the cache at most 1/2 of the free GPU memory


class TrainingBatches:
    """Per-epoch batches of this process, identical in content for both paths (see nnet.data.cached_batches).

    The sample order is a ``DistributedSampler`` permutation dealt out to the ranks, so N
    processes see the same global batches as one process with an N-times larger batch.
    """

    def __init__(self, data: TrainingData, config: Config, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        self.records = data.train
        self.dataset = PairDataset(data.train, data.normalizer, mode="train", crop_size=config.data.crop_size,
                                   seed=config.seed)
        self.cached = None
        if config.data.cache_images:
            started = time.perf_counter()
            images = DecodedImages(data.train, config.data.crop_size)
            device = self._cache_device(images.nbytes)
            if device.type != "cpu":
                images.images = images.images.to(device) if isinstance(images.images, torch.Tensor) else [
                    image.to(device) for image in images.images]
            self.cached = CachedTrainBatches(data.train, images, data.normalizer, config.data.crop_size,
                                             config.seed, runtime.device)
            if runtime.is_main:
                log.info("decoded %d images (%.2f GB) into the %s cache in %.1f s", len(images.position),
                         images.nbytes / 1e9, device, time.perf_counter() - started)

    def _cache_device(self, nbytes: int) -> torch.device:
        device = self.runtime.device
        if self.config.data.cache_device == "cpu" or device.type != "cuda":
            return torch.device("cpu")
        free, _ = torch.cuda.mem_get_info(device)
        return device if nbytes * GPU_CACHE_HEADROOM < free else torch.device("cpu")

    def epoch(self, epoch: int) -> tuple[Iterable[dict], int]:
        """(batches, how many) for ``epoch``."""
        config, runtime = self.config, self.runtime
        group = config.data.shared_reference_group
        if self.cached is not None and group > 1:
            plan = shared_reference_plan(self.records, config.batch_size, group, config.seed, epoch,
                                         runtime.rank, runtime.world_size)
            return (self.cached.build(refs, dists, epoch) for refs, dists in plan), len(plan)
        sampler = DistributedSampler(range(len(self.records)), num_replicas=runtime.world_size, rank=runtime.rank,
                                     shuffle=True, seed=config.seed, drop_last=True)
        sampler.set_epoch(epoch)
        if self.cached is not None:
            order = list(sampler)
            count = len(order) // config.batch_size
            chunks = (order[i * config.batch_size:(i + 1) * config.batch_size] for i in range(count))
            return (self.cached.build(chunk, chunk, epoch) for chunk in chunks), count
        self.dataset.set_epoch(epoch)
        # Its own generator (for the workers' seeds) leaves the global RNG, and so dropout, to the
        # model: both paths then draw the same dropout masks.
        loader = DataLoader(self.dataset, batch_size=config.batch_size, sampler=sampler, drop_last=True,
                            num_workers=config.num_workers, pin_memory=runtime.device.type == "cuda",
                            generator=torch.Generator().manual_seed(epoch_seed(config.seed, epoch)))
        return loader, len(loader)
