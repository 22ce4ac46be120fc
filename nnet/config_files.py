"""Config files: find one by path or by name (``PIPAL/IQA_Conformer``) and run it.

Names resolve against the repository's ``configs/`` folder when nnet runs from a checkout (or an
editable install), then against the copy installed with the package (``nnet/configs``). A config
may build on another one in its folder with a relative import::

    from .IQA_Conformer import config as conformer

which works from any working folder and when installed: while a file runs, its folder is a private
package, registered under a unique name and removed again afterwards (``sys.path`` is not touched).
"""

import ast
import contextlib
import dataclasses
import importlib.machinery
import importlib.util
import itertools
import os
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

from nnet.config import CONFIG_CLASSES, Config, did_you_mean
from nnet.errors import ConfigError
from nnet.fileio import note_inputs

PACKAGE_FOLDER = Path(__file__).resolve().parent
CHECKOUT_CONFIGS = PACKAGE_FOLDER.parent / "configs"  # the repository's configs/, when running from a checkout
INSTALLED_CONFIGS = PACKAGE_FOLDER / "configs"  # the copy a (non-editable) install ships
RELATIVE_IMPORT_HINT = "a config imports another one in its folder with: from .NAME import config"

_package_counter = itertools.count()
_UNEXPECTED_KEYWORD = re.compile(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'")


def config_folders() -> list[Path]:
    """The folders named configs are looked up in, in order: the checkout's, then the installed copy."""
    checkout = [CHECKOUT_CONFIGS] if (PACKAGE_FOLDER.parent / "pyproject.toml").is_file() else []
    return [folder for folder in [*checkout, INSTALLED_CONFIGS] if folder.is_dir()]


def config_names() -> list[str]:
    """Names of the shipped configs, e.g. ``PIPAL/IQA_Conformer`` (files starting with _ are not listed)."""
    names = set()
    for folder in config_folders():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if not any(part.startswith("_") for part in parts):
                names.add("/".join(parts))
    return sorted(names)


def find_config(reference: str | os.PathLike) -> Path:
    """The config file ``reference`` names: an existing file, else a shipped config of that name
    (``PIPAL/IQA_Conformer``, with or without ``.py`` or a leading ``configs/``)."""
    path = Path(reference)
    if path.is_file():
        return path
    if path.name and not path.is_absolute() and ".." not in path.parts:
        name = path if path.suffix == ".py" else path.with_name(f"{path.name}.py")
        names = [name, Path(*name.parts[1:])] if name.parts[0] == "configs" and len(name.parts) > 1 else [name]
        for folder in config_folders():
            for candidate in names:
                if (folder / candidate).is_file():
                    return folder / candidate
    shipped = config_names()
    choices = f" or the name of a shipped config ({', '.join(shipped)})" if shipped else ""
    raise ConfigError(f"{reference}: config file not found; give the path of a config file{choices}")


def load_config(reference: str | os.PathLike) -> Config:
    """Run the config file ``reference`` (a path or a name, see :func:`find_config`) and return its ``config``.

    Every problem (missing file, syntax error, unknown field, wrong type or value, exception while
    running the file or a config it imports) is raised as a ``ConfigError`` that starts with
    ``<file>:<line>:``.
    """
    path = find_config(reference)
    if path.suffix != ".py":
        raise ConfigError(f"{path}: not a config file of nnet's kind (Python, .py); a config is a Python file that "
                          "ends with config = Config(...), e.g. configs/PIPAL/IQA_Conformer.py: write one like it")
    note_inputs(path)
    filename = str(path)
    tree = _parse(path)
    with _folder_package(path.parent) as package:
        spec = importlib.util.spec_from_file_location(f"{package}.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        try:
            exec(compile(tree, filename, "exec"), module.__dict__)
        except Exception as error:
            raise ConfigError(_describe_failure(error, path, package)) from None
    if "config" not in module.__dict__:
        raise ConfigError(f"{filename}: defines no module-level 'config'; end the file with config = Config(...)")
    config = module.config
    if not isinstance(config, Config):
        raise ConfigError(f"{filename}: 'config' is a {type(config).__name__}, expected nnet.config.Config")
    return config


def _parse(path: Path) -> ast.Module:
    try:
        return compile(path.read_bytes(), str(path), "exec", ast.PyCF_ONLY_AST)
    except SyntaxError as error:
        raise ConfigError(_syntax_error(error)) from None


def _syntax_error(error: SyntaxError) -> str:
    return f"{error.filename}:{error.lineno}: syntax error: {error.msg}; correct that line (configs are Python)"


@contextlib.contextmanager
def _folder_package(folder: Path) -> Iterator[str]:
    """Register ``folder`` and its parent as uniquely named packages for as long as a config in it runs,
    so that its relative imports find the files beside it (``from .IQA_Conformer import config``) and in
    sibling folders (``from ..PIPAL.IQA_Conformer import config``); afterwards sys.modules is as it was."""
    parent = f"_nnet_config_folder_{next(_package_counter)}"
    name = f"{parent}.{folder.name}"
    searched = [str(folder.parent), str(folder)]
    cached_finders = {path for path in searched if path in sys.path_importer_cache}
    for package, path in ((parent, folder.parent), (name, folder)):
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(path)]
        sys.modules[package] = importlib.util.module_from_spec(spec)
    try:
        yield name
    finally:
        for module_name in [key for key in sys.modules if key == parent or key.startswith(f"{parent}.")]:
            del sys.modules[module_name]
        for path in searched:  # the finders import created for the folders; a later load must see new files
            if path not in cached_finders:
                sys.path_importer_cache.pop(path, None)


def _describe_failure(error: Exception, path: Path, package: str) -> str:
    """``file:line: message`` for an exception raised while running the config file ``path`` (the
    line is in the last config file of that folder that the traceback passes through)."""
    if isinstance(error, SyntaxError) and error.filename:  # in a config the file imports
        return _syntax_error(error)
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if Path(frame.filename).parent == path.parent]
    # The private packages' names mean nothing to a user.
    message = str(error).replace(f"{package}.", "").replace(f"{package.rsplit('.', 1)[0]}.", "")
    if not frames:
        return f"{path}: {type(error).__name__}: {message}"
    frame = frames[-1]
    line = frame.lineno
    unknown = _UNEXPECTED_KEYWORD.search(message) if isinstance(error, TypeError) else None
    if unknown and unknown.group(1) in CONFIG_CLASSES:
        class_name, field = unknown.groups()
        message = f"unknown field {field!r} in {class_name}{did_you_mean(field, _field_names(class_name))}"
        line = _keyword_line(frame, field)
    elif isinstance(error, ModuleNotFoundError):
        message = f"{type(error).__name__}: {message}; {RELATIVE_IMPORT_HINT}"
    elif not isinstance(error, ConfigError):
        message = f"{type(error).__name__}: {message}"
    return f"{frame.filename}:{line}: {message}"


def _field_names(class_name: str) -> list[str]:
    return [field.name for field in dataclasses.fields(CONFIG_CLASSES[class_name])]


def _keyword_line(frame: traceback.FrameSummary, keyword: str) -> int:
    """The line of the misspelt ``keyword=`` within the call at ``frame`` (not the call's first line)."""
    call_lines = range(frame.lineno, (frame.end_lineno or frame.lineno) + 1)
    tree = ast.parse(Path(frame.filename).read_bytes())
    lines = [node.lineno for node in ast.walk(tree)
             if isinstance(node, ast.keyword) and node.arg == keyword and node.lineno in call_lines]
    return min(lines, default=frame.lineno)
