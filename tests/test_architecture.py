"""The package's layers: every import points down, and the bottom stays light.

`LAYERS` is the one declaration of the dependency order (README, "Architecture").
A module may import modules of its own unit (the package or module named in the
table) and of any unit in a lower layer; units that share a layer are
independent of each other. Every import counts, including those inside
functions, which is where upward imports used to hide.

Why `export` sits below the detector: exporting needs a model, its scoring
graph and a threshold, not the detector, so `MemAE.export` calls down into
`memae_tf.export` and `memae export` calls `MemAE.export` (one export path).
The data flow still runs detector → export → server → client.
"""

import ast
import importlib
import pathlib
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "memae_tf"

# Lowest first. Each entry: the layer's name and its units.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Pure Python, no TensorFlow: argument checks, the serving contract, choices.
    ("foundations", ("memae_tf._lazy", "memae_tf.common", "memae_tf.choices")),
    # Keras layers, loaders and tf.data pipelines, figures, backup callbacks.
    ("building blocks", ("memae_tf.layers", "memae_tf.data", "memae_tf.plot",
                         "memae_tf.fault_tolerance")),
    ("models", ("memae_tf.models",)),
    # What is computed on a built model: scores, thresholds, memory statistics,
    # distributed replicas, the .keras file.
    ("model computations", ("memae_tf.scoring_graph", "memae_tf.thresholds",
                            "memae_tf.inspection", "memae_tf.distribute", "memae_tf.saving")),
    ("training and export", ("memae_tf.training", "memae_tf.export")),
    ("detector", ("memae_tf.detector",)),
    # Users of the detector or of the exported SavedModel.
    ("applications", ("memae_tf.serving", "memae_tf.client", "memae_tf.evaluation")),
    # Users of the detector and the evaluation kit: the demo, video files scored offline.
    ("demo", ("memae_tf.demo", "memae_tf.video_scoring")),
    ("command line", ("memae_tf.cli",)),
]
# The module paths renamed in 0.1 and removed in 0.2.0 (CHANGELOG.md), with their
# successors.
REMOVED_IN_0_2 = {
    "memae_tf.scoring": "memae_tf.scoring_graph",
    "memae_tf.inference": "memae_tf.models.bn_folding",
    "memae_tf.evaluation.scorers": "memae_tf.evaluation.experiment_models",
    "memae_tf._deprecation": None,
}
# Units that must stay free of training code, with everything they may import.
ISOLATED = {
    "memae_tf.client": ("memae_tf.client", "memae_tf.common"),
    "memae_tf.serving": ("memae_tf.serving", "memae_tf.common", "memae_tf._lazy"),
    "memae_tf.common": ("memae_tf.common",),
}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _lazy_exports(package: str) -> dict[str, str]:
    """Name → module of a package `__init__` that uses `lazy_exports(__name__, {...})`."""
    tree = ast.parse(MODULES[package].read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lazy_exports"
                and len(node.args) == 2):
            exports = ast.literal_eval(node.args[1])
            return {name: package + module if module.startswith(".") else module
                    for module, names in exports.items() for name in names}
    return {}


def _resolve(package: str, name: str) -> str:
    """The module that `from package import name` loads."""
    if f"{package}.{name}" in MODULES:
        return f"{package}.{name}"
    return _lazy_exports(package).get(name, package) if package in MODULES else package


def imports_of(module: str) -> set[str]:
    """Every `memae_tf` module that `module` imports, at any depth of its code."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + is_package]
                package = ".".join(base + ([node.module] if node.module else []))
            else:
                package = node.module or ""
            found.update(_resolve(package, alias.name) for alias in node.names)
    return {name for name in found if name.split(".")[0] == "memae_tf"}


def unit_of(module: str) -> str:
    """The unit (longest prefix in `LAYERS`) a module belongs to."""
    units = [unit for _, units in LAYERS for unit in units
             if module == unit or module.startswith(unit + ".")]
    if not units:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return max(units, key=len)


def rank_of(unit: str) -> int:
    return next(rank for rank, (_, units) in enumerate(LAYERS) if unit in units)


def test_every_module_has_a_place_in_the_layers():
    for module in MODULES:
        if module != "memae_tf":  # the root package: lazy top-level names only
            unit_of(module)


def test_no_module_imports_a_module_above_it_or_beside_it():
    wrong = []
    for module in MODULES:
        if module == "memae_tf":
            continue
        unit = unit_of(module)
        for target in imports_of(module):
            if target == "memae_tf":
                continue
            other = unit_of(target)
            if other != unit and rank_of(other) >= rank_of(unit):
                wrong.append(f"{module} ({LAYERS[rank_of(unit)][0]}) imports {target} "
                             f"({LAYERS[rank_of(other)][0]})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("unit, allowed", sorted(ISOLATED.items()))
def test_client_server_and_contract_import_no_training_code(unit, allowed):
    for module in MODULES:
        if module == unit or module.startswith(unit + "."):
            extra = {target for target in imports_of(module) if not target.startswith(allowed)}
            assert not extra, f"{module} imports {sorted(extra)}"


def test_the_contract_and_checks_use_only_the_standard_library():
    for module, path in MODULES.items():
        if not module.startswith("memae_tf.common"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name.startswith("memae_tf.common"), (
                    f"{module} imports {name}"
                )


def test_import_walker_sees_imports_inside_functions():
    # The walker itself: the cli imports the detector inside its command functions only.
    assert "memae_tf.detector" in imports_of("memae_tf.cli")


@pytest.mark.parametrize("old_name", sorted(REMOVED_IN_0_2))
def test_module_paths_removed_in_0_2_are_gone(old_name):
    assert old_name not in MODULES
    successor = REMOVED_IN_0_2[old_name]
    assert successor is None or successor in MODULES
    with pytest.raises(ModuleNotFoundError, match=old_name.replace(".", r"\.")):
        importlib.import_module(old_name)


def test_add_serving_commands_lives_only_in_the_cli():
    import memae_tf.cli
    import memae_tf.serving.cli

    assert callable(memae_tf.cli.add_serving_commands)
    assert not hasattr(memae_tf.serving.cli, "add_serving_commands")
