import dataclasses
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nnet import cli
from nnet.config import (
    MAX_AUTO_WORKERS,
    Config,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    apply_overrides,
    config_to_dict,
    resolve_num_workers,
)
from nnet.config_files import config_names, find_config, load_config
from nnet.engine import modes
from nnet.errors import ConfigError
from nnet.models import build_model
from nnet.models.backbone import OFFLINE_FIX
from nnet.trunk_geometry import feature_grid_size, smallest_input_size

HEADER = "from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig\n"
REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONFIGS = sorted(path for path in (REPO / "configs").rglob("*.py") if not path.name.startswith("_"))


def make_config(**changes) -> Config:
    fields = dict(name="test", model=ModelConfig(), data=DataConfig(), optimizer=OptimizerConfig())
    return Config(**{**fields, **changes})


def write_config(tmp_path, body: str, name: str = "run.py"):
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return path


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda path: path.name)
def test_every_shipped_config_loads_and_builds(path):
    config = load_config(path)
    assert isinstance(config, Config)
    model = build_model(config.model.architecture, dropout=config.model.dropout, crop_size=config.data.crop_size)
    assert model.architecture == config.model.architecture
    assert model.grid_size == 21  # every shipped config trains on 192×192 crops, like the published models


def test_loads_a_valid_file(tmp_path):
    path = write_config(tmp_path, """
        config = Config(
            name="IQA_Transformer",
            model=ModelConfig(architecture="IQA_Transformer"),
            data=DataConfig(val_fraction=0.1),
            optimizer=OptimizerConfig(lr=3e-4),
            epochs=2,
        )
    """)
    config = load_config(path)
    assert config == make_config(
        name="IQA_Transformer",
        model=ModelConfig(architecture="IQA_Transformer"),
        data=DataConfig(val_fraction=0.1),
        optimizer=OptimizerConfig(lr=3e-4),
        epochs=2,
    )


def test_loading_leaves_sys_modules_and_sys_path_alone(tmp_path):
    path = write_config(tmp_path, "config = Config('a', ModelConfig(), DataConfig(), OptimizerConfig())\n")
    modules, search_path = set(sys.modules), list(sys.path)
    load_config(path)
    assert set(sys.modules) == modules
    assert sys.path == search_path


def test_a_variant_changes_fields_with_replace(tmp_path):
    path = write_config(tmp_path, """
        import dataclasses
        base = Config(name="base", model=ModelConfig(), data=DataConfig(), optimizer=OptimizerConfig())
        config = dataclasses.replace(base, name="variant", epochs=5)
    """)
    assert load_config(path) == make_config(name="variant", epochs=5)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="nope.py: config file not found"):
        load_config(tmp_path / "nope.py")


def test_syntax_error_names_file_and_line(tmp_path):
    path = write_config(tmp_path, "x = 1\nconfig = Config(name='a'\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: syntax error: "):
        load_config(path)


def test_unknown_field_names_line_of_the_keyword_and_suggests(tmp_path):
    path = write_config(tmp_path, """
        config = Config(
            name="a",
            model=ModelConfig(),
            data=DataConfig(),
            optimizer=OptimizerConfig(),
            epoch=3,
        )
    """)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}:8: unknown field 'epoch' in Config (did you mean 'epochs'?)"


def test_unknown_field_in_a_nested_config_and_in_replace(tmp_path):
    path = write_config(tmp_path, "model = ModelConfig(architectur='IQA_Conformer')\n")
    expected = r":2: unknown field 'architectur' in ModelConfig \(did you mean 'architecture'\?\)"
    with pytest.raises(ConfigError, match=expected):
        load_config(path)
    path = write_config(tmp_path, """
        import dataclasses
        base = Config(name="base", model=ModelConfig(), data=DataConfig(), optimizer=OptimizerConfig())
        config = dataclasses.replace(base, batchsize=4)
    """)
    with pytest.raises(ConfigError, match=r":5: unknown field 'batchsize' in Config \(did you mean 'batch_size'\?\)"):
        load_config(path)


def test_wrong_type_names_file_line_field_and_expected_type(tmp_path):
    path = write_config(tmp_path, "x = 1\nmodel = ModelConfig(calibration_images='64')\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == f"{path}:3: ModelConfig.calibration_images: expected int, got str '64'"


def test_other_exceptions_name_file_and_line(tmp_path):
    path = write_config(tmp_path, "config = Config(name='a', model=ModelConfg())\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: NameError: name 'ModelConfg' is not defined"):
        load_config(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x = 1\n", "defines no module-level 'config'"),
        ("config = {'name': 'a'}\n", "'config' is a dict, expected nnet.config.Config"),
    ],
)
def test_file_must_define_a_config(tmp_path, body, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, body))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ModelConfig(architecture="ViT"), "ModelConfig.architecture: must be one of 'IQA_Conformer', 'IQA_"),
        (lambda: ModelConfig(backbone_weights="file"), "ModelConfig.backbone_weights_file: required"),
        (lambda: DataConfig(val_fraction=1.0), "DataConfig.val_fraction: must satisfy 0 <= val_fraction < 1"),
        (lambda: DataConfig(dataset="csv"), "DataConfig.csv_path: required"),
        (lambda: OptimizerConfig(betas=(0.9, 1.5)), "OptimizerConfig.betas: each must be in"),
        (lambda: OptimizerConfig(betas=(0.9,)), r"OptimizerConfig.betas: expected tuple\[float, float\]"),
        (lambda: make_config(epochs=0), "Config.epochs: must be at least 1"),
        (lambda: make_config(precision="fp8"), "Config.precision: must be one of 'fp16', 'bf16'"),
        (lambda: make_config(mixed_precision=1), "Config.mixed_precision: expected bool, got int"),
        (lambda: make_config(epochs=True), "Config.epochs: expected int, got bool"),
        (lambda: make_config(steps_per_epoch=0), "Config.steps_per_epoch: must be None or at least 1"),
        (lambda: make_config(description="two\nlines"), "Config.description: must be one line"),
        (lambda: make_config(model=DataConfig()), "Config.model: expected ModelConfig, got DataConfig"),
    ],
)
def test_invalid_values_are_refused_when_built(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_float_fields_accept_ints_and_optional_fields_accept_none():
    config = make_config(optimizer=OptimizerConfig(lr=1, betas=(0, 0.5)), steps_per_epoch=None)
    assert config.optimizer.lr == 1


def test_overrides_parse_literals_and_nested_keys():
    config = apply_overrides(
        make_config(),
        ["epochs=2", "optimizer.lr=3e-4", "data.root='x'", "optimizer.betas=(0.8, 0.9)",
         "mixed_precision=False", "steps_per_epoch=None", "data.csv_path = 'table.csv'", "data.dataset=csv"],
    )
    assert config.epochs == 2
    assert config.optimizer.lr == 3e-4
    assert config.data.root == "x"
    assert config.optimizer.betas == (0.8, 0.9)
    assert config.mixed_precision is False
    assert config.steps_per_epoch is None
    assert config.data.csv_path == "table.csv"


def test_override_returns_a_new_config():
    config = make_config()
    assert apply_overrides(config, ["epochs=2"]) is not config
    assert config.epochs == 30


def test_override_of_a_str_field_falls_back_to_the_raw_text():
    config = apply_overrides(make_config(), ["data.root=datasets/X", "description=SWA of epochs 21-30"])
    assert config.data.root == "datasets/X"
    assert config.description == "SWA of epochs 21-30"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epoch=2", r"unknown key 'epoch' \(did you mean 'epochs'\?\)"),
        ("lr=1e-3", r"unknown key 'lr' \(did you mean 'optimizer.lr'\?\)"),
        ("data.rot=x", r"unknown key 'data.rot' \(did you mean 'data.root'\?\)"),
        ("model=x", "unknown key 'model'"),
        ("epochs", "expected KEY=VALUE"),
        ("epochs=two", r"'two' is not a Python literal \(expected int\)"),
        ("epochs=2.5", "expected int, got float 2.5"),
        ("epochs=True", "expected int, got bool True"),
        ("mixed_precision=1", "expected bool, got int 1"),
        ("name=3", "expected str, got int 3"),
        ("data.crop_size=None", "expected int, got NoneType None"),
        ("data.val_fraction=1.5", "DataConfig.val_fraction: must satisfy"),
    ],
)
def test_bad_overrides_are_refused(override, message):
    with pytest.raises(ConfigError, match=rf"override '{override}': .*{message}"):
        apply_overrides(make_config(), [override])


def test_dict_round_trip_through_torch_save(tmp_path):
    config = make_config(
        model=ModelConfig(backbone_weights="file", backbone_weights_file="w.pth"),
        data=DataConfig(dataset="csv", csv_path="t.csv", val_fraction=0.2),
        optimizer=OptimizerConfig(betas=(0.5, 0.6)),
        steps_per_epoch=7,
    )
    values = config_to_dict(config)
    torch.save({"config": values}, tmp_path / "c.ckpt")
    assert torch.load(tmp_path / "c.ckpt", weights_only=True)["config"] == values


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_config().epochs = 3


# --- light imports --------------------------------------------------------------------------------------------------


def test_config_modules_and_the_package_import_without_torch_or_timm():
    code = ("import sys, nnet, nnet.config, nnet.config_files; nnet.__version__; "
            "print(sorted(name for name in ('torch', 'timm') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("option", ["-h", "--version"])
def test_command_line_help_and_version_load_no_torch(option):
    code = (f"import sys, contextlib, io\nfrom nnet import cli\nwith contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try: cli.main([{option!r}])\n    except SystemExit: pass\n"
            "print(sorted(name for name in ('torch', 'timm') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_package_exports_load_on_first_use():
    import nnet
    from nnet.checkpoint import load_model
    from nnet.models import IQAConformer, IQATransformer

    assert (nnet.load_model, nnet.build_model) == (load_model, build_model)
    assert (nnet.IQAConformer, nnet.IQATransformer) == (IQAConformer, IQATransformer)
    assert {"create_metric", "load_model", "__version__"} <= set(nnet.__all__) <= set(dir(nnet))
    with pytest.raises(AttributeError, match="has no attribute 'load_modle'"):
        nnet.load_modle  # noqa: B018


# --- named configs and configs that build on another -----------------------------------------------------------------


def test_shipped_configs_resolve_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = REPO / "configs" / "PIPAL" / "IQA_Transformer.py"
    for name in ("PIPAL/IQA_Transformer", "PIPAL/IQA_Transformer.py", "configs/PIPAL/IQA_Transformer.py"):
        assert find_config(name) == expected
    variant = load_config("PIPAL/IQA_Transformer")
    base = load_config(REPO / "configs" / "PIPAL" / "IQA_Conformer.py")
    assert (variant.name, variant.model.architecture) == ("IQA_Transformer", "IQA_Transformer")
    assert dataclasses.replace(variant, name=base.name, model=base.model, callback_path=base.callback_path,
                               generation_path=base.generation_path, description=base.description) == base
    names = config_names()  # every shipped file, by its name
    assert names == sorted(path.relative_to(REPO / "configs").with_suffix("").as_posix() for path in SHIPPED_CONFIGS)
    assert {"Demo/IQA_Conformer", "PIPAL/IQA_Conformer", "PIPAL/IQA_Transformer"} <= set(names)


def test_an_existing_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    (tmp_path / "PIPAL").mkdir()
    write_config(tmp_path / "PIPAL", "config = Config('mine', ModelConfig(), DataConfig(), OptimizerConfig())\n",
                 "IQA_Conformer.py")
    monkeypatch.chdir(tmp_path)
    assert load_config("PIPAL/IQA_Conformer.py").name == "mine"
    assert load_config("PIPAL/IQA_Conformer").name == "IQA_Conformer"  # not a file here: the shipped one


def test_an_unknown_name_lists_the_shipped_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^PIPAL/IQA_Conformr: config file not found; .*PIPAL/IQA_Conformer, "):
        load_config("PIPAL/IQA_Conformr")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("../configs/PIPAL/IQA_Conformer")  # names never leave the configs folders


def write_variant(folder: Path, base_body: str = "") -> Path:
    """``base.py`` and ``variant.py`` (built on it with a relative import) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_config(folder, base_body or "config = Config('base', ModelConfig(), DataConfig(), OptimizerConfig())\n",
                 "base.py")
    return write_config(folder, """
        import dataclasses
        from .base import config as base
        config = dataclasses.replace(base, name="variant", epochs=5)
    """, "variant.py")


def test_a_variant_imports_its_base_relatively_from_any_folder(tmp_path, monkeypatch):
    variant = write_variant(tmp_path / "configs")
    monkeypatch.chdir(tmp_path / "configs")
    modules, search_path = set(sys.modules), list(sys.path)
    assert load_config("variant.py") == load_config(variant) == make_config(name="variant", epochs=5)
    assert set(sys.modules) == modules
    assert sys.path == search_path


def test_a_variant_imports_a_base_from_a_sibling_folder(tmp_path):
    write_variant(tmp_path / "configs" / "recipes")
    (tmp_path / "configs" / "datasets").mkdir()
    derived = write_config(tmp_path / "configs" / "datasets", """
        import dataclasses
        from ..recipes.variant import config as recipe
        config = dataclasses.replace(recipe, name="derived")
    """, "derived.py")
    modules = set(sys.modules)
    assert load_config(derived) == make_config(name="derived", epochs=5)
    assert set(sys.modules) == modules


def test_errors_in_a_base_name_the_base_file_and_line(tmp_path):
    base = tmp_path / "configs" / "base.py"
    variant = write_variant(tmp_path / "configs", "x = 1\nconfig = Config('a', ModelConfig(), DataConfig(mos_std=0),\n"
                            "    OptimizerConfig())\n")
    with pytest.raises(ConfigError) as error:
        load_config(variant)
    assert str(error.value) == f"{base}:3: DataConfig.mos_std: must be positive, got 0"
    base.write_text(HEADER + "config = Config('a',, ModelConfig())\n")
    with pytest.raises(ConfigError, match=rf"^{base}:2: syntax error: .*correct that line"):
        load_config(variant)


def test_a_missing_base_is_named_without_the_private_package(tmp_path):
    path = write_config(tmp_path, "from .nowhere import config\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}:2: ModuleNotFoundError: No module named 'nowhere'; ")
    assert "from .NAME import config" in str(error.value) and "_nnet" not in str(error.value)


# --- overrides, all applied and then checked together ----------------------------------------------------------------


WEIGHTS_FILE = ("model.backbone_weights=file", "model.backbone_weights_file=weights.safetensors")


@pytest.mark.parametrize("overrides", [WEIGHTS_FILE, WEIGHTS_FILE[::-1]], ids=["readme-order", "reverse"])
def test_override_order_does_not_matter(overrides):
    config = apply_overrides(make_config(), overrides)
    assert (config.model.backbone_weights, config.model.backbone_weights_file) == ("file", "weights.safetensors")


def test_a_failed_check_names_the_overrides_of_that_section():
    with pytest.raises(ConfigError) as error:
        apply_overrides(make_config(), ["epochs=3", "model.backbone_weights=file"])
    assert str(error.value) == (
        "override 'model.backbone_weights=file': ModelConfig.backbone_weights_file: required when "
        'backbone_weights="file"; set model.backbone_weights_file=PATH (a timm weights file)'
    )
    with pytest.raises(ConfigError, match=r"^overrides 'batch_size=6', 'data.shared_reference_group=4': Config.batch"):
        apply_overrides(make_config(), ["batch_size=6", "data.shared_reference_group=4"])


def test_the_later_of_two_overrides_of_one_key_wins():
    assert apply_overrides(make_config(), ["epochs=3", "epochs=4"]).epochs == 4


@pytest.mark.parametrize("text", ["README.md", "OFFLINE_FIX"])
def test_the_documented_offline_weights_line_works_as_written(text, tmp_path):
    """README's (and the offline error message's) --set line, applied through the command line as printed."""
    source = (REPO / "README.md").read_text() if text == "README.md" else OFFLINE_FIX
    line = re.search(r"--set model\.backbone_weights=file --set model\.backbone_weights_file=PATH", source)
    assert line, f"{text} no longer documents the offline weights line"
    weights = tmp_path / "model.safetensors"
    arguments = shlex.split(line.group(0).replace("PATH", str(weights)))
    config = modes.load_run_config(cli.parse_arguments(["-c", "PIPAL/IQA_Conformer", *arguments]))
    assert (config.model.backbone_weights, config.model.backbone_weights_file) == ("file", str(weights))


# --- every number checked -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.mos_mean=1e999", "DataConfig.mos_mean: must be a finite number, got inf"),
        ("data.mos_mean=-1e999", "DataConfig.mos_mean: must be a finite number, got -inf"),
        ("data.mos_std=1e999", "DataConfig.mos_std: must be a finite number, got inf"),
        ("data.mos_std=0", "DataConfig.mos_std: must be positive, got 0"),
        ("data.val_fraction=-1e999", "DataConfig.val_fraction: must be a finite number"),
        ("model.dropout=1e999", "ModelConfig.dropout: must be a finite number"),
        ("optimizer.lr=1e999", "OptimizerConfig.lr: must be a finite number"),
        ("optimizer.lr=0", "OptimizerConfig.lr: must be positive"),
        ("optimizer.eps=-1e-8", "OptimizerConfig.eps: must be positive"),
        ("optimizer.weight_decay=1e999", "OptimizerConfig.weight_decay: must be a finite number"),
        ("optimizer.betas=(0.9, 1e999)", r"OptimizerConfig.betas: must be a finite number, got \(0.9, inf\)"),
        ("data.crop_size=7", "DataConfig.crop_size: must be at least 27, got 7"),
        ("seed=-1", "Config.seed: must satisfy 0 <= seed < 4294967296, got -1"),
        ("seed=4294967296", "Config.seed: must satisfy 0 <= seed < 4294967296"),
        ("swa_epochs=(6, 4)", r"Config.swa_epochs: must be \(first, last\) with 1 <= first <= last, got \(6, 4\)"),
        ("swa_epochs=(0, 4)", r"Config.swa_epochs: must be \(first, last\) with 1 <= first <= last"),
        ("num_workers=-1", "Config.num_workers: must be None or non-negative"),
        ("swa_bn_steps=0", "Config.swa_bn_steps: must be None or at least 1"),
    ],
)
def test_numbers_out_of_range_are_refused(override, message):
    with pytest.raises(ConfigError, match=rf"^override '{re.escape(override)}': {message}"):
        apply_overrides(make_config(), [override])


@pytest.mark.parametrize(("field", "value"), [("mos_mean", 'float("nan")'), ("mos_std", 'float("inf")'),
                                              ("mos_mean", "10**400")])
def test_non_finite_numbers_in_a_config_file_are_refused(tmp_path, field, value):
    body = f"config = Config('a', ModelConfig(), DataConfig({field}={value}), OptimizerConfig())\n"
    path = write_config(tmp_path, body)
    with pytest.raises(ConfigError, match=rf"^{path}:2: DataConfig.{field}: must be a finite number, got "):
        load_config(path)


def test_the_smallest_crop_is_the_smallest_input_the_trunk_accepts():
    smallest = smallest_input_size()
    assert feature_grid_size(smallest) == 1 and feature_grid_size(smallest - 1) < 1
    assert DataConfig(crop_size=smallest).crop_size == smallest
    with pytest.raises(ConfigError, match=f"DataConfig.crop_size: must be at least {smallest}"):
        DataConfig(crop_size=smallest - 1)
    model = build_model("IQA_Transformer", crop_size=smallest).eval()
    images = torch.zeros(1, 3, smallest, smallest)
    with torch.no_grad():
        assert model(images, images).shape == (1, 1)
    assert model.backbone(images).shape[-2:] == (1, 1)
    with pytest.raises(RuntimeError):
        model.backbone(images[..., 1:, 1:])


# --- data-loading workers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cores", "expected"), [(2, 2), (6, 6), (64, MAX_AUTO_WORKERS)])
def test_num_workers_defaults_to_the_usable_cores_at_most_8(monkeypatch, cores, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert make_config().num_workers is None
    assert resolve_num_workers(None) == expected
    assert resolve_num_workers(0) == 0 and resolve_num_workers(12) == 12  # a value that is set is kept


def test_the_command_lines_modes_are_the_ones_dispatched():
    """nnet.cli lists the modes without importing the engine (fast help); the two lists stay one."""
    assert list(cli.MODES) == list(modes.MODES)
