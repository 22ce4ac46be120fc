"""Train/validation/test splits as IQA papers make them: by reference, seeded, covering everything."""

import random

import pytest
from test_splits import fake_records, references

from nnet.config import DataConfig
from nnet.data.datasets.splits import split_three_ways
from nnet.errors import ConfigError, DataError
from tests.oracles import split_by_reference


@pytest.mark.parametrize(("val", "test", "counts"), [
    (0.2, 0.2, (60, 20, 20)),  # 6:2:2
    (0.0, 0.2, (80, 0, 20)),  # 8:2, train and test
    (0.2, 0.0, (80, 20, 0)),  # 8:2, train and validation
    (0.1, 0.3, (60, 10, 30)),
])
def test_parts_are_reference_disjoint_sized_and_cover_everything(val, test, counts):
    records = fake_records(100)
    split = split_three_ways(records, val, test, seed=3)
    parts = (split.train, split.validation, split.test)
    assert tuple(len(references(part)) for part in parts) == counts
    assert all(references(a).isdisjoint(references(b)) for a, b in ((parts[0], parts[1]), (parts[0], parts[2]),
                                                                    (parts[1], parts[2])))
    assert sorted(split.train + split.validation + split.test, key=lambda r: r.name) == records
    assert all(part == [r for r in records if r in part] for part in parts)  # file order kept


def test_the_split_depends_only_on_the_seed_and_the_references():
    records = fake_records(40)
    shuffled = records[:]
    random.Random(5).shuffle(shuffled)
    first, again = split_three_ways(records, 0.2, 0.2, seed=11), split_three_ways(shuffled, 0.2, 0.2, seed=11)
    assert (references(first.validation), references(first.test)) == (references(again.validation),
                                                                      references(again.test))
    other = split_three_ways(records, 0.2, 0.2, seed=12)
    assert references(other.test) != references(first.test)


def test_the_test_part_does_not_depend_on_the_validation_fraction():
    """Runs with 6:2:2 and 8:0:2 are tested on the same references, so their numbers compare."""
    records = fake_records(50)
    with_validation, without = split_three_ways(records, 0.2, 0.2, 0), split_three_ways(records, 0, 0.2, 0)
    assert references(with_validation.test) == references(without.test)


def test_without_a_test_part_it_is_the_two_way_split():
    records = fake_records(30)
    split = split_three_ways(records, 0.25, 0.0, seed=4)
    assert (split.train, split.validation) == split_by_reference(records, 0.25, seed=4) and split.test == []


def test_tiny_fractions_and_tiny_datasets():
    split = split_three_ways(fake_records(3), 0.01, 0.01, seed=0)
    assert [len(references(part)) for part in (split.train, split.validation, split.test)] == [1, 1, 1]
    with pytest.raises(DataError, match="cannot split 2 references into train, validation and test; use "
                                        "val_fraction=0 and test_fraction=0 or a dataset with more references"):
        split_three_ways(fake_records(2), 0.2, 0.2, seed=0)


@pytest.mark.parametrize(("val", "test", "message"), [
    (0.0, 1.0, "DataConfig.test_fraction: must satisfy 0 <= test_fraction < 1; use e.g. 0.2"),
    (0.0, -0.1, "DataConfig.test_fraction: must satisfy"),
    (0.5, 0.5, r"DataConfig.test_fraction: plus val_fraction \(0.5\) must be below 1, to leave references"),
])
def test_the_config_refuses_fractions_that_leave_nothing_to_split(val, test, message):
    """The one check of the fractions: split_three_ways takes them from a DataConfig."""
    with pytest.raises(ConfigError, match=message):
        DataConfig(val_fraction=val, test_fraction=test)
