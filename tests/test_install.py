"""The package installs with pip (plain and editable) and works from any folder; its metadata agrees with itself.

Each install runs on a copy of the checkout, offline, in a fresh venv that sees exactly the packages of the
interpreter running the tests (torch and friends are not reinstalled; pip and setuptools are the ones
requirements-dev.txt installed, also when that interpreter is itself a venv over an older base Python), so
the checkout gets no build/ or *.egg-info folder.
"""

import importlib.util
import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import main
from nnet import cli
from nnet.version import __version__

REPO = Path(__file__).resolve().parents[1]
NOT_COPIED = (".git", "callbacks", "datasets", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
              ".hypothesis", ".benchmarks", ".venv", ".whl")
NOT_COPIED_BELOW_TOP = ("*.egg-info", "__pycache__", ".*_cache")  # not nnet/data/datasets, for one


def not_copied(folder: str, names: list[str]) -> set[str]:
    """shutil.copytree's ignore: the checkout's own outputs at the top, caches everywhere."""
    return shutil.ignore_patterns(*(NOT_COPIED if Path(folder) == REPO else NOT_COPIED_BELOW_TOP))(folder, names)


def run(command: list, cwd: Path) -> str:
    """stdout of ``command``; its output in the failure message when it fails."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def venv_over_this_interpreter(folder: Path) -> Path:
    """A new venv at ``folder`` whose packages are this interpreter's (its site folders, .pth files included,
    after the venv's own); its python.

    Not ``--system-site-packages``: that shows the *base* interpreter's packages, whose setuptools may be too
    old for PEP 639 metadata (``license = "MIT"``) when the tests run in a venv (README's fresh venv).
    """
    run([sys.executable, "-m", "venv", "--without-pip", folder], folder.parent)
    python = folder / "bin" / "python"
    own = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], folder.parent).strip())
    (own / "this-interpreter.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in site.getsitepackages()))
    return python


@pytest.mark.parametrize("editable", [False, True], ids=["pip-install", "pip-install-editable"])
def test_installed_package_works_from_another_folder(tmp_path, editable):
    checkout_before = sorted(path.name for path in REPO.iterdir())
    source = Path(shutil.copytree(REPO, tmp_path / "source", ignore=not_copied))
    python, command = venv_over_this_interpreter(tmp_path / "venv"), tmp_path / "venv" / "bin" / "nnet-iqa"
    found = run([python, "-c", "import importlib.util; print(importlib.util.find_spec('setuptools').origin)"], tmp_path)
    assert Path(found.strip()) == Path(importlib.util.find_spec("setuptools").origin)  # requirements-dev.txt's
    run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir", "-q",
         *(["-e"] if editable else []), "."], source)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    package = Path(run([python, "-c", "import nnet; print(nnet.__file__)"], elsewhere).strip()).parent
    assert package == (source / "nnet" if editable else tmp_path / "venv" / "lib" / f"python{sys.version_info.major}."
                       f"{sys.version_info.minor}" / "site-packages" / "nnet")
    assert "PIPAL/IQA_Conformer" in run([command, "--help"], elsewhere)
    found, name = run([python, "-c", "from nnet.config_files import find_config, load_config; "
                       "print(find_config('PIPAL/IQA_Transformer')); print(load_config('PIPAL/IQA_Transformer').name)"],
                      elsewhere).splitlines()
    assert Path(found) == (source / "configs" if editable else package / "configs") / "PIPAL" / "IQA_Transformer.py"
    assert name == "IQA_Transformer"  # the variant's relative import of its base worked, installed too
    submission = Path(run([python, "-c", "from nnet.registry import published_submission; "
                           "print(published_submission('iqa_conformer'))"], elsewhere).strip())
    assert submission == package / "registry" / "published" / "IQA_Conformer" / "output.txt" and submission.is_file()
    assert sorted(path.name for path in REPO.iterdir()) == checkout_before


def test_main_py_runs_what_the_console_command_runs():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"nnet-iqa": "nnet.cli:main"}
    assert main.main is cli.main


def test_dependencies_are_ranges_and_cover_the_pinned_requirements():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    ranges = {re.match(r"[\w-]+", requirement).group(0): requirement for requirement in project["dependencies"]}
    assert not [requirement for requirement in ranges.values() if "==" in requirement]
    assert ranges["torch"] == "torch>=2.4"
    pinned = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    names = {re.match(r"[\w-]+", line).group(0) for line in pinned if line}
    assert names == set(ranges), "requirements.txt and pyproject.toml list different runtime packages"
    assert "torch==" in (REPO / "requirements.txt").read_text()


def test_readme_test_command_is_the_one_ci_runs():
    readme = (REPO / "README.md").read_text()
    command = re.search(r"```bash\n(python3 -m pip install -r requirements-dev\.txt && .*)\n```", readme).group(1)
    assert command.endswith("python3 -m pytest")
    set_up = {"#!/usr/bin/env bash", "set -euo pipefail", 'cd "$(dirname "$0")/.."'}
    ci_commands = [line for line in (REPO / ".ci" / "run").read_text().splitlines()
                   if line.strip() and not line.startswith("# ") and line not in set_up]
    assert ci_commands == [command]  # CI runs README's command and nothing more (no extra installs)


def test_license_and_citation_describe_this_version():
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2026 the nnet authors\n")
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == "MIT"
    citation = (REPO / "CITATION.cff").read_text()
    top_level = dict(re.findall(r"^([\w-]+):[ ]*(.*)$", citation, re.MULTILINE))
    assert top_level["cff-version"] == "1.2.0"
    assert top_level["version"] == f'"{__version__}"'
    assert top_level["license"] == "MIT"
    assert {"message", "title", "authors", "references"} <= set(top_level)
    titles = re.findall(r"^  - type: conference-paper\n    title: (.*)$", citation, re.MULTILINE)
    assert titles == ["Perceptual Image Quality Assessment with Transformers",
                      "NTIRE 2022 Challenge on Perceptual Image Quality Assessment"]
    assert "\t" not in citation  # YAML forbids tabs in indentation
