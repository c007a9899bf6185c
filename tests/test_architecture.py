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
import pathlib
import subprocess
import sys
import textwrap

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "memae_tf"

# Lowest first. Each entry: the layer's name and its units.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Pure Python, no TensorFlow: argument checks, the serving contract, choices.
    ("foundations", ("memae_tf._lazy", "memae_tf._deprecation", "memae_tf.common",
                     "memae_tf.choices")),
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
    ("demo", ("memae_tf.demo",)),
    ("command line", ("memae_tf.cli",)),
]
# Old module paths kept for one release (memae_tf._deprecation): each belongs to the
# unit of the module it forwards to.
DEPRECATED_ALIASES = {
    "memae_tf.scoring": "memae_tf.scoring_graph",
    "memae_tf.inference": "memae_tf.models.bn_folding",
    "memae_tf.evaluation.scorers": "memae_tf.evaluation.experiment_models",
}
# Upward imports allowed by name, each inside a deprecated function body only.
ALLOWED_UPWARD = {
    # `memae_tf.serving.cli.add_serving_commands` forwards to `memae_tf.cli` until 0.2.
    ("memae_tf.serving.cli", "memae_tf.cli"),
}
# Units that must stay free of training code, with everything they may import.
ISOLATED = {
    "memae_tf.client": ("memae_tf.client", "memae_tf.common"),
    "memae_tf.serving": ("memae_tf.serving", "memae_tf.common", "memae_tf._lazy",
                         "memae_tf._deprecation"),
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
    module = DEPRECATED_ALIASES.get(module, module)
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
            if target == "memae_tf" or (module, target) in ALLOWED_UPWARD:
                continue
            other = unit_of(target)
            if other != unit and rank_of(other) >= rank_of(unit):
                wrong.append(f"{module} ({LAYERS[rank_of(unit)][0]}) imports {target} "
                             f"({LAYERS[rank_of(other)][0]})")
    assert not wrong, "\n".join(wrong)


def test_allowed_upward_imports_are_only_inside_functions():
    for module, target in ALLOWED_UPWARD:
        tree = ast.parse(MODULES[module].read_text())
        top_level = {node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))}
        names = {getattr(node, "module", None) for node in top_level}
        assert target not in names, f"{module} imports {target} at module level"


@pytest.mark.parametrize("unit, allowed", sorted(ISOLATED.items()))
def test_client_server_and_contract_import_no_training_code(unit, allowed):
    for module in MODULES:
        if module == unit or module.startswith(unit + "."):
            extra = {target for target in imports_of(module)
                     if not target.startswith(allowed) and (module, target) not in ALLOWED_UPWARD}
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
    # The walker itself: the deprecated forwarder's import sits in a function body.
    assert "memae_tf.cli" in imports_of("memae_tf.serving.cli")
    assert "memae_tf.detector" in imports_of("memae_tf.cli")  # imported inside commands


def test_old_module_paths_warn_and_forward():
    # One fresh interpreter for every alias (each start imports TensorFlow): each old
    # path is imported once, after its new module, so its warning is its own.
    script = textwrap.dedent(
        f"""
        import importlib, warnings
        for old_name, new_name in {sorted(DEPRECATED_ALIASES.items())!r}:
            new = importlib.import_module(new_name)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                old = importlib.import_module(old_name)
            assert any(issubclass(w.category, DeprecationWarning) and new_name in str(w.message)
                       for w in caught), (old_name, [str(w.message) for w in caught])
            public = [name for name in vars(old) if not name.startswith("_")
                      and name not in ("warn_moved",)
                      and not isinstance(getattr(old, name), type(old))]
            assert public, f"the alias {{old_name}} re-exports nothing"
            moved = [name for name in public if getattr(old, name) is not getattr(new, name)]
            assert not moved, (old_name, moved)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)


def test_top_level_names_import_without_deprecation_warnings():
    # What the notebooks import must not hit a deprecated alias.
    script = textwrap.dedent(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import memae_tf
            from memae_tf import MemAE, data, evaluation, inspection, plot, client
            from memae_tf.serving import serve
            from memae_tf.evaluation import TrainingConfig, make_scorer
        ours = [str(w.message) for w in caught if "memae-tf 0.2" in str(w.message)]
        assert not ours, ours
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)


def test_the_old_add_serving_commands_warns_and_forwards_to_the_cli():
    import memae_tf.cli
    import memae_tf.serving.cli

    with pytest.warns(DeprecationWarning, match="memae_tf.cli.add_serving_commands"):
        forwarded = memae_tf.serving.cli.add_serving_commands
    assert forwarded is memae_tf.cli.add_serving_commands
