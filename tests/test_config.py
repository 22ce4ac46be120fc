import dataclasses
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nnet.config import (
    Config,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    apply_overrides,
    config_to_dict,
    load_config,
)
from nnet.errors import ConfigError
from nnet.models import build_model

HEADER = "from nnet.config import Config, DataConfig, ModelConfig, OptimizerConfig\n"
SHIPPED_CONFIGS = sorted(
    path for path in (Path(__file__).parents[1] / "configs").rglob("*.py") if not path.name.startswith("_")
)


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
    model = build_model(config.model.architecture, dropout=config.model.dropout, input_size=config.data.crop_size)
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
         "mixed_precision=False", "steps_per_epoch=None", "data.csv_path = 'table.csv'"],
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
        ("data.root=None", "expected str, got NoneType None"),
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
