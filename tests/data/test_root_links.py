"""A dataset root means the real root: links that lead out of it are refused like .. paths, unless allowed."""

import os
import shutil

import fake_iqa_datasets as fake
import pytest

from nnet.config import DataConfig
from nnet.data.datasets.pairs_csv import scan_pairs_csv
from nnet.data.datasets.pipal import scan_pipal_test, scan_pipal_train
from nnet.data.datasets.presets import read_dataset
from nnet.data.synthetic.writer import generate_synthetic_pipal
from nnet.errors import DataError

FIX = "point the dataset's folder setting (data.root, data.ref_root) at the real folder, or set " \
      "data.allow_outside_root=True if the link is intended"


@pytest.fixture
def pipal(tmp_path):
    return generate_synthetic_pipal(tmp_path / "PIPAL", refs=2, distortions_per_ref=2, size=32, test_refs=1).root


def move_out_and_link(path, outside):
    """Move ``path`` to ``outside`` and leave a link to it in its place."""
    outside.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, outside)
    os.symlink(outside, path)


def test_a_pipal_reference_linking_outside_the_root_is_refused(pipal, tmp_path):
    reference = pipal / "Train_Ref" / "A0001.bmp"
    move_out_and_link(reference, tmp_path / "elsewhere" / "A0001.bmp")
    with pytest.raises(DataError) as error:
        scan_pipal_train(pipal)
    assert str(error.value) == (f"{reference} is a link to {tmp_path / 'elsewhere' / 'A0001.bmp'}, outside the dataset "
                                f"root {pipal}; move the file into the root, {FIX}")
    assert len(scan_pipal_train(pipal, allow_outside_root=True)) == 4


def test_a_pipal_folder_linking_outside_the_root_is_refused_once(pipal, tmp_path):
    folder = pipal / "Distortion1"
    move_out_and_link(folder, tmp_path / "big_disk" / "Distortion1")
    with pytest.raises(DataError, match=rf"^{folder} is a link to {tmp_path / 'big_disk' / 'Distortion1'}, outside"):
        scan_pipal_train(pipal)
    assert len(read_dataset(DataConfig(root=str(pipal), allow_outside_root=True))) == 4


def test_a_pipal_label_file_linking_outside_is_refused(pipal, tmp_path):
    labels = pipal / "Train_Label" / "A0002.txt"
    move_out_and_link(labels, tmp_path / "elsewhere" / "A0002.txt")
    with pytest.raises(DataError, match=rf"^{labels} is a link to .*outside the dataset root [^\n]*$"):
        scan_pipal_train(pipal)


def test_the_ntire_test_part_is_checked_too(pipal, tmp_path):
    distorted = next((pipal / "NTIRE2022_FR_Testing_Dis").iterdir())
    move_out_and_link(distorted, tmp_path / "elsewhere" / distorted.name)
    with pytest.raises(DataError, match="outside the dataset root"):
        scan_pipal_test(pipal)
    assert len(scan_pipal_test(pipal, allow_outside_root=True)) >= 1


def test_links_that_stay_inside_the_root_and_a_linked_root_are_fine(pipal, tmp_path):
    reference = pipal / "Train_Ref" / "A0001.bmp"
    shutil.move(reference, pipal / "A0001_original.bmp")
    os.symlink(pipal / "A0001_original.bmp", reference)
    os.symlink(pipal, tmp_path / "linked_root")
    assert len(scan_pipal_train(tmp_path / "linked_root")) == 4


def test_a_csv_image_linking_outside_the_root_is_refused_at_its_row(tmp_path):
    dataset = fake.kadid10k_pyiqa(tmp_path)
    distorted = dataset.root / "I02_07_03.png"
    move_out_and_link(distorted, tmp_path / "elsewhere" / "I02_07_03.png")
    with pytest.raises(DataError) as error:
        scan_pairs_csv(dataset.csv_path, dataset.root)
    assert str(error.value).startswith(f"{dataset.csv_path}:5: {distorted} is a link to {tmp_path / 'elsewhere'}")
    assert len(scan_pairs_csv(dataset.csv_path, dataset.root, allow_outside_root=True)) == 6


def test_a_linked_folder_inside_a_download_is_refused_for_every_preset_reader(tmp_path):
    dataset = fake.tid2013_download(tmp_path)
    move_out_and_link(dataset.root / "reference_images", tmp_path / "disk2" / "reference_images")
    data = DataConfig(dataset="tid2013", root=str(dataset.root))
    with pytest.raises(DataError, match=r"reference_images/I01\.BMP is a link to .*disk2.*outside the dataset root"):
        read_dataset(data)
    assert len(read_dataset(DataConfig(dataset="tid2013", root=str(dataset.root), allow_outside_root=True))) == 9
    live = fake.live_download(tmp_path)
    move_out_and_link(live.root / "jp2k" / "img2.bmp", tmp_path / "disk2" / "img2.bmp")
    with pytest.raises(DataError, match=r"dmos\.mat: entry 2: .*jp2k/img2\.bmp is a link to .*outside"):
        read_dataset(DataConfig(dataset="live", root=str(live.root)))
