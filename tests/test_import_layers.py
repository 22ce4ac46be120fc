"""The import graph of the package: every import points down the layers of docs/architecture.md §7, and
no modules import one another in a circle (module-level and deferred imports alike)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nnet"

# A module belongs to the layer of its longest prefix below; a layer imports its own modules and those it names.
LAYERS = {
    "base": ("nnet.errors", "nnet.version", "nnet.trunk_geometry", "nnet.windows", "nnet.config",
             "nnet.config_files", "nnet.fileio", "nnet.agreement", "nnet.progress"),
    "models": ("nnet.models",),
    "data": ("nnet.data",),
    "checkpoint": ("nnet.checkpoint",),
    "plots": ("nnet.plots",),
    "registry": ("nnet.registry",),
    "runtime": ("nnet.runtime",),
    "engine (shared)": ("nnet.engine", "nnet.engine.distributed", "nnet.engine.run_data", "nnet.engine.paths",
                        "nnet.engine.precision", "nnet.engine.preflight", "nnet.engine.run_lock"),
    "scoring": ("nnet.engine.scoring",),
    "training": ("nnet.engine.training",),
    "protocol": ("nnet.engine.protocol",),
    "modes": ("nnet.engine.modes", "nnet.engine.onnx_export"),
    "command line": ("nnet.cli",),
    "public API": ("nnet",),  # nnet/__init__.py: lazy exports, loaded on first use
}
BELOW_ENGINE = {"checkpoint", "models", "data", "plots", "registry", "base"}
ALLOWED = {
    "base": set(),
    "models": {"base"},
    "data": {"base"},
    "checkpoint": {"models", "data", "base"},
    "plots": {"base"},
    "registry": {"data", "base"},
    "runtime": {"data", "base"},
    "engine (shared)": BELOW_ENGINE,
    "scoring": {"engine (shared)"} | BELOW_ENGINE,
    "training": {"scoring", "engine (shared)"} | BELOW_ENGINE,
    "protocol": {"training", "scoring", "engine (shared)"} | BELOW_ENGINE,
    "modes": {"protocol", "training", "scoring", "engine (shared)", "runtime"} | BELOW_ENGINE,
    "command line": {"modes", "engine (shared)", "registry", "base"},
    "public API": {"modes", "scoring", "checkpoint", "models", "registry", "base"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    matches = [(len(prefix), name) for name, prefixes in LAYERS.items() for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1]


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in its body (``from a import b`` counts ``a.b``
    when that is a module, else ``a``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("nnet"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("nnet"))
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {module: imported_modules(path, set(paths)) for module, path in paths.items()}


def test_every_module_has_a_layer_and_the_table_no_stale_entry():
    graph = import_graph()
    assert set(ALLOWED) == set(LAYERS)
    for prefixes in LAYERS.values():
        for prefix in prefixes:
            assert any(module == prefix or module.startswith(prefix + ".") for module in graph), prefix


def test_no_import_points_up_a_layer():
    upward = [f"{module} ({layer(module)}) imports {target} ({layer(target)})"
              for module, targets in sorted(import_graph().items()) for target in sorted(targets)
              if layer(target) != layer(module) and layer(target) not in ALLOWED[layer(module)]]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    graph = import_graph()
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                pytest.fail("import circle: " + " -> ".join(trail[trail.index(target):] + [module, target]))
            if target not in state:
                visit(target, trail + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
