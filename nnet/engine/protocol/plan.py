"""The splits of a protocol: one config per split (``split_seed`` 0 … N−1, its own folder), and the
requests that cannot be met, refused before anything is trained."""

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from nnet.config import Config
from nnet.data.datasets.presets import read_dataset
from nnet.data.datasets.splits import distinct_splits, split_three_ways
from nnet.engine.training.loop import saves_epoch
from nnet.errors import ConfigError

log = logging.getLogger(__name__)
PROTOCOL_FOLDER = "protocol"


@dataclass(frozen=True)
class ProtocolSplit:
    """Split ``index`` of a protocol: the run's config with ``data.split_seed = index``, in its own folder."""

    index: int
    config: Config

    @property
    def folder(self) -> Path:
        return Path(self.config.callback_path)

    @property
    def swa_epochs(self) -> list[int]:
        first, last = self.config.swa_epochs
        return list(range(first, last + 1))


def protocol_folder(config: Config) -> Path:
    """``<callback_path>/protocol``: the splits' run folders and the report."""
    return Path(config.callback_path) / PROTOCOL_FOLDER


def split_config(config: Config, index: int) -> Config:
    """The single run that split ``index`` of the protocol equals: ``split_seed = index``, and the
    folder ``<callback_path>/protocol/split_<index>/``."""
    folder = protocol_folder(config) / f"split_{index}"
    return dataclasses.replace(config, callback_path=f"{folder}/", generation_path=f"{folder}/generation/",
                               data=dataclasses.replace(config.data, split_seed=index))


def plan_protocol(config: Config, splits: int) -> list[ProtocolSplit]:
    """The ``splits`` splits of ``config``'s protocol; ConfigError for a request that cannot be met
    (no test part, an averaging window that training does not save, more splits than the references
    allow). Reads the dataset's table (not its images)."""
    if splits < 1:
        raise ConfigError(f"--splits {splits}: a protocol needs at least 1 split; give e.g. --splits 10")
    data = config.data
    if data.test_fraction == 0:
        raise ConfigError(f"{config.name}: data.test_fraction is 0, so no references are held out for the test part "
                          "the protocol reports; set e.g. --set data.test_fraction=0.2 --set data.val_fraction=0.2 "
                          "(the 6:2:2 split of IQA papers)")
    first, last = config.swa_epochs
    unsaved = [epoch for epoch in range(first, last + 1) if epoch > config.epochs or not saves_epoch(config, epoch)]
    if unsaved:
        raise ConfigError(f"{config.name}: swa_epochs {first}-{last} names epochs that training does not save "
                          f"(epochs={config.epochs}, saving_period={config.saving_period}: {unsaved[0]} is not "
                          "saved); set swa_epochs within the saved epochs, e.g. --set "
                          f"swa_epochs=({config.epochs},{config.epochs})")
    records = read_dataset(data)
    references = len({str(record.reference) for record in records})
    possible = distinct_splits(references, data.val_fraction, data.test_fraction)
    if splits > possible:
        raise ConfigError(f"--splits {splits}: the {references} references of {config.name} allow only {possible} "
                          f"distinct splits with val_fraction={data.val_fraction}, test_fraction={data.test_fraction}; "
                          f"ask for at most {possible} splits")
    _warn_repeated_test_parts(config, records, splits)
    return [ProtocolSplit(index, split_config(config, index)) for index in range(splits)]


def _warn_repeated_test_parts(config: Config, records: list, splits: int) -> None:
    """Seeds are drawn independently, so on a small dataset two of them may hold out the same test references."""
    seen: dict[frozenset, int] = {}
    for index in range(splits):
        test = frozenset(str(record.reference) for record in split_three_ways(
            records, config.data.val_fraction, config.data.test_fraction, index).test)
        if test in seen:
            log.warning("splits %d and %d hold out the same test references: their test numbers are not "
                        "independent", seen[test], index)
        seen.setdefault(test, index)
