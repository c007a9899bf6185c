"""Mutation testing of memae-tf's core modules with the fast tests that cover them.

Each mutant is one small change to one module's syntax tree (a comparison flipped, an
arithmetic operator swapped, a number moved by one, a boolean or a condition negated, a
returned value dropped). The module's tests run against every mutant; a mutant that
makes a test fail is *killed*, one that passes them all *survives* and names a
behaviour no test pins down (or a change that does not alter behaviour: an equivalent
mutant).

TensorFlow takes seconds to import and pytest seconds to collect, so the runner imports
the heavy third-party packages once, collects the module's tests once in a forked
process, and from there forks a child per mutant. The child runs the mutated source and
moves its definitions into the already imported module (`apply_mutant`: functions and
methods keep their identity and take the mutant's code, so every module that imported
them sees it; the working tree is never written), then runs the collected tests up to the
first failure under a timeout (3x the unmutated run + 20 s). The lines the tests execute
are traced once on the unmutated code, and mutants on lines no test reaches are reported
as *not covered* without being run. Values other modules imported by name
(`from m import CONSTANT`) keep their original value.

Usage:

    python benchmarks/mutation.py                      # every module in MODULES
    python benchmarks/mutation.py memae_tf/thresholds.py
    python benchmarks/mutation.py memae_tf/thresholds.py --list
    python benchmarks/mutation.py memae_tf/thresholds.py --only 3 7
    python benchmarks/mutation.py memae_tf/thresholds.py --tests tests/test_x.py
    python benchmarks/mutation.py memae_tf/thresholds.py -- -k quantile

Arguments after `--` go to pytest as they are, after the module's tests (those of
`--tests`, else MODULES' own): a test selection such as `-k EXPRESSION` or `-m MARKER`.
A `-k` there takes the place of one in MODULES' entry, as pytest keeps the last `-k`.

`make mutation` runs the first form. Not part of `make test`: it takes tens of minutes.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import linecache
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CellType, FunctionType, ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Each core module with the tests that cover it quickly (no subprocesses, no training runs).
MODULES: dict[str, list[str]] = {
    "memae_tf/layers/memory.py": [
        "tests/test_memory_layer.py",
        *(f"tests/test_memory_init.py::test_adapt_{name}" for name in (
            "draws_distinct_items_from_the_query_vectors", "is_seeded",
            "with_fewer_queries_than_items_keeps_the_other_items", "rejects_bad_queries")),
    ],
    "memae_tf/layers/feature_scaler.py": [
        "tests/test_tabular_preset.py", "-k", "scaler or unknown_scaling or adapt_takes"],
    "memae_tf/thresholds.py": ["tests/test_thresholds.py"],
    "memae_tf/evaluation/metrics.py": [
        "tests/test_evaluation_protocols.py",
        "-k", "auroc or aupr or scorer or threshold_metrics or metrics_reject or frozen"],
    "memae_tf/client/tensors.py": [
        "tests/test_client_wire.py", "-k", "not importing_the_client"],
    "memae_tf/evaluation/video.py": [
        "tests/test_evaluation_protocols.py", "tests/test_frame_score.py",
        "-k", "(frame or clip or video or smoothing or regularity or normalis or auroc) "
              "and not score_video and not command_line"],
    "memae_tf/evaluation/frame_score.py": ["tests/test_frame_score.py"],
    "memae_tf/serving/batching.py": ["tests/test_serving_batching.py"],
    "memae_tf/serving/validation.py": [
        "tests/test_serving_validation.py", "tests/reliability/test_request_validation.py",
        "tests/reliability/test_non_finite_inputs.py"],
    "memae_tf/client/_protocol.py": [
        "tests/test_client_protocol.py", "tests/test_client_wire.py", "tests/test_client.py",
        "-k", "not importing_the_client and not import_no_training_code"],
    "memae_tf/data/idx.py": ["tests/test_data_idx.py", "tests/reliability/test_loader_errors.py"],
    "memae_tf/evaluation/one_class.py": [
        "tests/test_evaluation_protocols.py", "-k", "one_class or gcn or frozen"],
    "memae_tf/training/schedules.py": ["tests/test_lr_decay.py"],
    "memae_tf/training/memory_init.py": ["tests/test_memory_init.py"],
    "memae_tf/training/fused_adam.py": ["tests/test_fused_adam.py"],
    "memae_tf/training/config.py": [
        "tests/test_training.py", "tests/test_lr_decay.py", "tests/test_docstring_examples.py",
        "-k", "refused or numpy or frozen or same_config_class or defaults or has_schedule "
              "or test_lr_decay or training.config"],
    "memae_tf/serving/threads.py": ["tests/test_serving_config.py", "-m", "not slow"],
    "memae_tf/serving/flags.py": ["tests/test_serving_config.py", "-m", "not slow"],
    "memae_tf/models/subpixel.py": ["tests/test_subpixel.py"],
    "memae_tf/models/scaling.py": ["tests/test_tabular_preset.py"],
    "memae_tf/models/activations.py": ["tests/test_models.py"],
    "memae_tf/models/presets.py": ["tests/test_models.py", "tests/test_tabular_preset.py"],
    "memae_tf/export/warmup.py": [
        "tests/test_export.py", "tests/test_serving_servable.py",
        "-k", "warmup and not fresh_process and not saved_model_cli"],
    "memae_tf/serving/metrics.py": [
        "tests/test_serving_metrics.py", "tests/test_serving_batching.py",
        "tests/test_docstring_examples.py", "-k", "metric or queuing"],
    "memae_tf/serving/model_registry.py": [
        "tests/test_model_server.py",
        "-k", "not deployments and not command and not canary and not ssl"],
    "memae_tf/client/batching.py": ["tests/test_client.py", "-k", "batching_file"],
    "memae_tf/client/stream.py": [
        "tests/test_stream_scorer.py", "tests/test_video_streaming.py",
        "tests/test_docstring_examples.py",
        "-k", "stream_scorer or refuses_an_unknown or window_refuses or closed_stream "
              "or client.stream"],
    "memae_tf/data/moving_mnist.py": ["tests/test_data_moving_mnist.py"],
    "memae_tf/fault_tolerance.py": [
        "tests/reliability/test_training_faults.py", "-m", "not slow"],
    "memae_tf/inspection.py": [
        "tests/test_inspection.py", "tests/test_docstring_examples.py",
        "-k", "test_inspection or memae_tf.inspection"],
    "memae_tf/saving.py": ["tests/reliability/test_detector_files.py", "-m", "not slow"],
    "memae_tf/data/pipeline.py": ["tests/test_data_clips.py", "tests/test_data_pipeline.py"],
    "memae_tf/data/inputs.py": [
        "tests/test_data_inputs.py", "tests/test_docstring_examples.py",
        "-k", "test_data_inputs or data.inputs"],
    "memae_tf/data/preprocessing.py": [
        "tests/test_data_preprocessing.py", "tests/test_docstring_examples.py",
        "-k", "preprocessing"],
    "memae_tf/training/memory_check.py": [
        "tests/test_memory_check.py", "tests/test_docstring_examples.py",
        "-k", "not docstring or memory_check"],
    "memae_tf/serving/model_manager.py": [
        "tests/test_model_manager.py", "tests/test_serving_config.py",
        "-k", "test_model_manager or version_policy"],
    "memae_tf/serving/rest.py": [
        "tests/test_serving_rest_json.py", "tests/test_serving_rest_handler.py",
        "tests/test_serving.py", "tests/test_serving_rest_threads.py",
        "tests/reliability/test_request_validation.py",
        "tests/reliability/test_non_finite_inputs.py", "tests/test_serving_timeouts.py",
        "tests/test_serving_batched_server.py",
        "-m", "not slow", "-k", "rest or REST or metrics_page or metrics_path"],
    "memae_tf/client/monitor.py": ["tests/test_client_monitor.py"],
    "memae_tf/client/client.py": ["tests/test_client.py", "-m", "not slow"],
    "memae_tf/client/cli.py": ["tests/test_client_cli.py"],
    "memae_tf/client/errors.py": [
        "tests/test_client.py", "tests/test_client_protocol.py", "-m", "not slow"],
    "memae_tf/client/aio.py": ["tests/test_client.py", "-m", "not slow"],
    "memae_tf/serving/servable.py": [
        "tests/test_serving_servable.py",
        "tests/test_serving_batched_server.py::test_saved_model_loads_are_counted_by_path_and_outcome"],
    "memae_tf/serving/config.py": [
        "tests/test_serving_config.py", "tests/test_docstring_examples.py", "-m", "not slow",
        "-k", "configmaps or unknown_field or missing_file or model_list or model_name "
              "or duplicate_name or platform or serving.config"],
    "memae_tf/export/serving_config.py": [
        "tests/test_export.py", "tests/test_docstring_examples.py",
        "-k", "models_config or batching or config_file or keeps_entries or model_name_names "
              "or export.serving_config"],
    "memae_tf/serving/deadlines.py": [
        "tests/test_serving_timeouts.py", "tests/test_docstring_examples.py",
        "-k", "in_ms_is or milliseconds or serving.deadlines"],
    "memae_tf/common/contract.py": [
        "tests/test_foundations.py", "tests/test_docstring_examples.py",
        "-k", "test_foundations or common.contract"],
    "memae_tf/common/scaling.py": [
        "tests/test_client_protocol.py", "tests/test_docstring_examples.py",
        "-k", "uint8 or common.scaling"],
    "memae_tf/choices.py": [
        "tests/test_score_batch.py", "tests/test_foundations.py",
        "tests/test_docstring_examples.py",
        "-k", "largest_power or memae_tf.choices or video_protocols"],
    "memae_tf/common/deprecation.py": [
        "tests/test_client.py", "tests/test_docstring_examples.py", "-m", "not slow",
        "-k", "former or common.deprecation"],
    "memae_tf/common/checks.py": [
        "tests/test_foundations.py", "tests/test_docstring_examples.py",
        "-k", "positive or bools or none_is or common.checks"],
    "memae_tf/serving/tls.py": ["tests/reliability/test_tls.py", "-m", "not slow"],
    "memae_tf/serving/tensors.py": [
        "tests/test_serving_tensors.py", "tests/test_docstring_examples.py", "-k", "tensors"],
    "memae_tf/export/saved_model.py": [
        "tests/test_export.py",
        "tests/test_foundations.py::test_the_exported_signatures_follow_the_contract",
        "tests/test_video_streaming.py::test_only_video_models_export_frame_thresholds",
        "-k", "not fresh_process and not saved_model_cli"],
    "memae_tf/models/memory_block.py": [
        "tests/test_models.py", "tests/test_memory_init.py", "tests/test_memory_check.py",
        "tests/test_inspection.py", "tests/test_docstring_examples.py",
        "-k", "test_models or test_memory_init or test_memory_check or test_inspection "
              "or memory_block"],
    "memae_tf/detector.py": [
        "tests/test_detector.py", "tests/test_onednn_switch.py", "tests/test_tabular_preset.py",
        "tests/test_docstring_examples.py", "-m", "not slow",
        "-k", "(test_detector and not tf_data and not second_fit and not schedule) "
              "or memae_tf.detector or warns_once or no_warning "
              "or fit_defaults_come_from_the_preset"],
    "memae_tf/serving/errors.py": [
        "tests/test_serving.py", "-m", "not slow", "-k", "unknown_model or a_label_the_config"],
    "memae_tf/serving/core.py": [
        "tests/test_serving.py", "tests/test_serving_inference.py",
        "tests/test_serving_batched_server.py", "tests/test_serving_grpc_services.py",
        "-m", "not slow",
        "-k", "not swapped_in and not health_follows and not sigterm and not grace_period "
              "and not fails_to_load and not former_max and not splits_batches and not warmup"],
    "memae_tf/serving/inference.py": ["tests/test_serving_inference.py", "-m", "not slow"],
    "memae_tf/serving/rest_examples.py": [
        "tests/test_serving_inference.py", "tests/test_serving_rest_handler.py",
        "tests/test_docstring_examples.py", "-m", "not slow",
        "-k", "rest_example or refused_bodies or long_value or first_json_value "
              "or rest_classify_and_regress_answer or classify_and_regress_pass or first_event "
              "or quoted_as_rapidjsons or beyond_64_bits"],
    "memae_tf/serving/grpc_services.py": [
        "tests/test_serving_grpc_services.py", "tests/test_serving.py",
        "tests/test_serving_inference.py", "-m", "not slow",
        "-k", "wall_time or reload_answers or metadata_lists_the_signatures "
              "or unknown_model_is_not_found or classify_answers_each or regress_answers_one "
              "or multi_inference_runs_every"],
    "memae_tf/serving/json_reader.py": [
        "tests/test_serving_json_reader.py", "tests/test_serving_rest_json.py"],
    "memae_tf/serving/rest_predict.py": ["tests/test_serving_rest_json.py"],
    "memae_tf/serving/json_writer.py": [
        "tests/test_serving_json_writer.py", "tests/test_serving_rest_json.py",
        *(f"tests/test_serving_inference.py::test_{name}" for name in (
            "a_long_value_is_quoted_up_to_the_event_that_passes_256_bytes",
            "the_debug_string_stops_at_the_first_event_once_256_bytes_are_written"))],
    "memae_tf/serving/initial_load.py": [
        "tests/test_serving_initial_load.py",
        "tests/test_docstring_examples.py::"
        "test_docstring_examples_run_as_shown[memae_tf.serving.initial_load]"],
}

# Imported once in the parent, before forking, so that each mutant does not pay for them.
PRELOAD = ("numpy", "tensorflow", "keras", "sklearn", "grpc", "pytest")

# Calls whose arguments are messages, not behaviour.
_LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "warn"}

_COMPARE_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_BINOP_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
    ast.LShift: ast.RShift, ast.RShift: ast.LShift, ast.BitAnd: ast.BitOr,
}
_SYMBOLS: dict[type, str] = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.Mod: "%", ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&",
    ast.BitOr: "|", ast.And: "and", ast.Or: "or",
}


@dataclass(frozen=True)
class Mutant:
    """One change to a module: the `index`-th node of `ast.walk`, changed by `kind`."""

    number: int
    node_index: int
    kind: str
    line: int
    column: int
    description: str


def _skipped_subtrees(tree: ast.AST) -> set[int]:
    """Returns the ids of nodes that are never mutated: annotations, docstrings, messages,
    and `if TYPE_CHECKING:` blocks (imports for type checkers, which a mutant could only
    turn into an import cycle that the already imported modules never show)."""
    skipped: set[int] = set()

    def skip(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(id(child) for child in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            skip(node.returns)
            for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
                        node.args.vararg, node.args.kwarg):
                if arg is not None:
                    skip(arg.annotation)
        elif isinstance(node, ast.AnnAssign):
            skip(node.annotation)
        elif isinstance(node, ast.Raise):
            skip(node.exc)
        elif isinstance(node, ast.Call):
            func = node.func
            if ((isinstance(func, ast.Attribute) and func.attr in _LOG_METHODS)
                    or (isinstance(func, ast.Name) and func.id == "print")):
                skip(node)
        elif isinstance(node, ast.Assert):
            skip(node.msg)
        elif isinstance(node, ast.If) and ast.unparse(node.test) in (
                "TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skip(node)
    return skipped


def _kinds(node: ast.AST) -> Iterator[tuple[str, str]]:
    """Yields (kind, description) for each mutation that applies to `node`."""
    if isinstance(node, ast.Compare):
        for position, op in enumerate(node.ops):
            swap = _COMPARE_SWAPS.get(type(op))
            if swap is not None:
                which = f" (comparison {position + 1} of {len(node.ops)})" if len(
                    node.ops) > 1 else ""
                yield (f"compare:{position}",
                       f"`{_SYMBOLS[type(op)]}` -> `{_SYMBOLS[swap]}`{which}")
    elif isinstance(node, (ast.BinOp, ast.AugAssign)):
        swap = _BINOP_SWAPS.get(type(node.op))
        if swap is not None:
            yield "binop", f"`{_SYMBOLS[type(node.op)]}` -> `{_SYMBOLS[swap]}`"
    elif isinstance(node, ast.BoolOp):
        other = ast.Or if isinstance(node.op, ast.And) else ast.And
        yield "boolop", f"`{_SYMBOLS[type(node.op)]}` -> `{_SYMBOLS[other]}`"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        yield "unary", "`not` dropped" if isinstance(node.op, ast.Not) else "unary `-` dropped"
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield "constant", f"`{value}` -> `{not value}`"
        elif isinstance(value, (int, float)):
            yield "constant", f"`{value!r}` -> `{value + 1!r}`"
    elif isinstance(node, (ast.If, ast.While, ast.IfExp)):
        yield "negate", "condition negated"
    elif isinstance(node, ast.Return) and node.value is not None and not (
            isinstance(node.value, ast.Constant) and node.value.value is None):
        yield "return", "returns None"


def mutants(source: str) -> list[Mutant]:
    """Returns every mutant of `source`, numbered from 1 in source order."""
    tree = ast.parse(source)
    skipped = _skipped_subtrees(tree)
    found = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skipped:
            continue
        for kind, description in _kinds(node):
            found.append((getattr(node, "lineno", 0), getattr(node, "col_offset", 0),
                          index, kind, description))
    found.sort()
    return [Mutant(number, index, kind, line, column, description)
            for number, (line, column, index, kind, description) in enumerate(found, start=1)]


def _negated(test: ast.expr) -> ast.expr:
    return ast.UnaryOp(op=ast.Not(), operand=test)


def mutated_source(source: str, mutant: Mutant) -> str:
    """Returns `source` with `mutant` applied (formatting normalised by `ast.unparse`)."""
    tree = ast.parse(source)
    node = next(node for index, node in enumerate(ast.walk(tree))
                if index == mutant.node_index)
    kind = mutant.kind
    if kind.startswith("compare:"):
        position = int(kind.split(":")[1])
        node.ops[position] = _COMPARE_SWAPS[type(node.ops[position])]()
    elif kind == "binop":
        node.op = _BINOP_SWAPS[type(node.op)]()
    elif kind == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "unary":
        _replace(tree, node, node.operand)
    elif kind == "constant":
        node.value = (not node.value) if isinstance(node.value, bool) else node.value + 1
    elif kind == "negate":
        node.test = _negated(node.test)
    elif kind == "return":
        node.value = None
    else:
        raise ValueError(f"Unknown mutation kind {kind!r}.")
    return ast.unparse(ast.fix_missing_locations(tree))


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for position, item in enumerate(value):
                    if item is old:
                        value[position] = new
                        return
    raise ValueError("node not found")


def module_name(path: str) -> str:
    """Returns the dotted name of the module at `path` (relative to the repository)."""
    return ".".join(Path(path).with_suffix("").parts)


# --- swapping a mutant into the imported module ------------------------------------------------

_MISSING = object()


def _patch_function(old: Any, new: Any) -> bool:
    """Gives the function object `old` the code and defaults of `new`, keeping its identity
    (every module that imported it, every decorator that wrapped it, sees the mutant).
    Returns False where the code cannot be swapped (the mutant changed its free variables,
    e.g. a `return super()...` became `return`)."""
    swapped = True
    if isinstance(old, FunctionType) and isinstance(new, FunctionType):
        if old.__code__.co_freevars != new.__code__.co_freevars:
            return False
        old.__code__ = new.__code__
        old.__defaults__, old.__kwdefaults__ = new.__defaults__, new.__kwdefaults__
    for name in ("__wrapped__", "__func__", "fget", "fset", "fdel"):
        inner_old, inner_new = getattr(old, name, None), getattr(new, name, None)
        if inner_old is not None and inner_new is not None and inner_old is not old:
            swapped = _patch_function(inner_old, inner_new) and swapped
    return swapped


def _rebound(function: Any, cls: type) -> Any:
    """`function` (a mutated method) with its `__class__` cell (zero-argument `super()`)
    pointing at the original class."""
    if not isinstance(function, FunctionType) or "__class__" not in function.__code__.co_freevars:
        return function
    cells = tuple(CellType(cls) if name == "__class__" else cell for name, cell in
                  zip(function.__code__.co_freevars, function.__closure__, strict=True))
    rebound = FunctionType(function.__code__, function.__globals__, function.__name__,
                           function.__defaults__, cells)
    rebound.__kwdefaults__ = function.__kwdefaults__
    rebound.__qualname__ = function.__qualname__
    return rebound


def _patch_class(old: type, new: type) -> None:
    for name in set(vars(old)) - set(vars(new)) - {"__dict__", "__weakref__"}:
        with contextlib.suppress(AttributeError, TypeError):
            delattr(old, name)   # e.g. the __setattr__ of a dataclass no longer frozen
    for name, value in vars(new).items():
        if name in ("__dict__", "__weakref__", "__doc__"):
            continue
        current = vars(old).get(name, _MISSING)
        if isinstance(value, type) and isinstance(current, type):
            _patch_class(current, value)
        elif callable(value) or isinstance(value, (staticmethod, classmethod, property)):
            if current is _MISSING or not _patch_function(current, value):
                setattr(old, name, _rebound(value, old))
        else:
            with contextlib.suppress(AttributeError, TypeError):
                setattr(old, name, value)


def _keras_registry() -> list[dict]:
    """The dicts in which Keras registers serializable classes (re-running a module's
    decorators must not replace the registered class by its mutated copy)."""
    if "keras" not in sys.modules:
        return []
    from keras.src.saving import object_registration

    return [object_registration.GLOBAL_CUSTOM_OBJECTS, object_registration.GLOBAL_CUSTOM_NAMES]


def apply_mutant(module: ModuleType, source: str) -> None:
    """Runs `source` (the module's mutated text) and moves its definitions into `module`.

    Functions and methods keep their identity and take the mutant's code; classes keep
    their identity and take the mutant's attributes; other module-level values are
    replaced. Names other modules imported by value (`from m import CONSTANT`) keep the
    original value.
    """
    filename = module.__file__
    # AutoGraph (tf.function) re-reads a function's source through linecache; an entry
    # without mtime is kept as it is instead of being re-read from the file on disk.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    registries = [(registry, dict(registry)) for registry in _keras_registry()]
    namespace: dict[str, Any] = {"__name__": module.__name__, "__file__": filename,
                                 "__package__": module.__package__,
                                 "__builtins__": module.__builtins__}
    exec(compile(source, filename, "exec"), namespace)
    for registry, saved in registries:
        registry.clear()
        registry.update(saved)
    classes = {}
    for name, new in namespace.items():
        old = vars(module).get(name, _MISSING)
        if name.startswith("__") or new is old:
            continue
        if isinstance(new, type) and isinstance(old, type):
            _patch_class(old, new)
            classes[new] = old
        elif callable(new) and callable(old) and not isinstance(new, type):
            if not _patch_function(old, new):
                setattr(module, name, new)
        else:
            setattr(module, name, new)
    for name, value in vars(module).items():
        if type(value) in classes and not name.startswith("__"):
            with contextlib.suppress(TypeError):
                # object's own __setattr__: a frozen dataclass's refuses every attribute.
                object.__setattr__(value, "__class__", classes[type(value)])


# --- processes ---------------------------------------------------------------------------------


_CHILDREN: list[int] = []   # this process's running children (each leads its process group)


def _terminate(signum, frame) -> None:
    for pid in _CHILDREN:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    os._exit(128 + signum)


def run_in_child(function, timeout: float | None, log: Path, root: Path = ROOT,
                 poll=None) -> tuple[int | None, float]:
    """Forks; the child (its own process group, in `root`, output to `log`) returns
    `function()` as exit status. Returns (the status or None on timeout, seconds)."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            _CHILDREN.clear()
            signal.signal(signal.SIGTERM, _terminate)
            os.setpgid(0, 0)
            os.chdir(root)
            descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(descriptor, 1)
            os.dup2(descriptor, 2)
            code = int(function())
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    _CHILDREN.append(pid)
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if poll is not None:
                    poll()
                return os.waitstatus_to_exitcode(status), time.monotonic() - start
            if timeout is not None and time.monotonic() - start > timeout:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None, time.monotonic() - start
            if poll is not None:
                poll()
            time.sleep(0.05)
    except BaseException:   # interrupted: the child stops its own running mutant
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        raise
    finally:
        _CHILDREN.remove(pid)


def _pytest_arguments(root: Path) -> list[str]:
    arguments = ["-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly",
                 "-o", "addopts=", "--rootdir", str(root)]
    if (root / "setup.cfg").exists():
        arguments += ["-c", str(root / "setup.cfg")]
    return arguments


def _traced_tests(filename: str, tests: Sequence[str], root: Path, lines_out: Path) -> int:
    """Runs the tests once, unmutated, recording the lines of `filename` they execute."""
    lines: set[int] = set()

    def local(frame, event, arg):
        if event == "line":
            lines.add(frame.f_lineno)
        return local

    def tracer(frame, event, arg):
        if frame.f_code.co_filename == filename:
            lines.add(frame.f_lineno)
            return local
        return None

    import pytest

    sys.path.insert(0, str(root))
    sys.settrace(tracer)
    threading.settrace(tracer)
    code = pytest.main([*_pytest_arguments(root), *tests])
    sys.settrace(None)
    lines_out.write_text(json.dumps(sorted(lines)))
    return int(code)


def _run_items(session, mutant_source: str | None, name: str) -> int:
    """In a mutant's process: swaps the mutant in, runs the collected tests up to the first
    failure. Returns 1 if one failed, 0 if all passed."""
    if mutant_source is not None:
        try:
            apply_mutant(sys.modules[name], mutant_source)
        except Exception as error:  # the mutant breaks the module's import: killed
            print(f"importing the mutant failed: {error!r}")
            return 2
    items = session.items
    for index, item in enumerate(items):
        following = items[index + 1] if index + 1 < len(items) else None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=following)
        if session.testsfailed:
            return 1
    return 0


class _MutantLoop:
    """A pytest plugin: after collection, runs the tests once per mutant in forked children."""

    def __init__(self, name: str, source: str, selected: Sequence[Mutant], covered: set[int],
                 workdir: Path, root: Path):
        self.name, self.source, self.selected = name, source, selected
        self.covered, self.workdir, self.root = covered, workdir, root

    def _record(self, **record) -> None:
        with (self.workdir / "outcomes.jsonl").open("a") as results:
            results.write(json.dumps(record) + "\n")

    def pytest_runtestloop(self, session) -> bool:
        if session.testsfailed or self.name not in sys.modules:
            self._record(error=f"collection failed or did not import {self.name}")
            return True
        # The unmutated source is swapped in as each mutant is: a module the swap cannot
        # take fails here instead of every mutant counting as killed.
        code, baseline = run_in_child(lambda: _run_items(session, self.source, self.name),
                                      None, self.workdir / "unmutated.log", self.root)
        if code != 0:
            self._record(error=f"the tests fail on the unmutated module swapped in as the "
                               f"mutants are (status {code})")
            return True
        timeout = 3 * baseline + 20
        self._record(baseline=baseline, timeout=timeout)
        for mutant in self.selected:
            if mutant.line not in self.covered:
                self._record(number=mutant.number, status="not covered", seconds=0.0)
                continue
            log = self.workdir / f"mutant-{mutant.number}.log"
            source = mutated_source(self.source, mutant)
            code, seconds = run_in_child(lambda source=source: _run_items(
                session, source, self.name), timeout, log, self.root)
            status = "timeout" if code is None else "survived" if code == 0 else "killed"
            if status != "survived":
                log.unlink(missing_ok=True)
            self._record(number=mutant.number, status=status, seconds=seconds)
        return True


@dataclass
class Outcome:
    """The result of one mutant: `killed`, `survived`, `timeout` or `not covered`."""

    mutant: Mutant
    status: str
    seconds: float


def run_module(path: str, tests: Sequence[str], only: Sequence[int] = (), root: Path = ROOT,
               workdir: Path | None = None, out=sys.stdout) -> list[Outcome]:
    """Mutation-tests the module at `path` (relative to `root`) with `tests` (pytest
    arguments: paths, node ids, `-k` expressions)."""
    filename = str(root / path)
    name = module_name(path)
    source = Path(filename).read_text()
    workdir = workdir or Path(os.environ.get("TMPDIR", "/tmp")) / f"mutation-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    lines_file, results = workdir / "lines.json", workdir / "outcomes.jsonl"
    results.unlink(missing_ok=True)
    code, _ = run_in_child(lambda: _traced_tests(filename, tests, root, lines_file), None,
                           workdir / "traced.log", root)
    if code != 0:
        raise RuntimeError(f"The tests fail on the unmutated {path} (pytest exit code "
                           f"{code}); see {workdir / 'traced.log'}.")
    covered = set(json.loads(lines_file.read_text()))
    every = {mutant.number: mutant for mutant in mutants(source)}
    selected = [mutant for mutant in every.values() if not only or mutant.number in only]
    print(f"{path}: {len(every)} mutants, tests {' '.join(tests)}", file=out, flush=True)
    outcomes: list[Outcome] = []
    seen = 0

    def report() -> None:
        nonlocal seen
        if not results.exists():
            return
        lines = results.read_text().splitlines()
        for line in lines[seen:]:
            record = json.loads(line)
            if "error" in record:
                raise RuntimeError(f"{path}: {record['error']}; see {workdir}.")
            if "baseline" in record:
                print(f"  unmutated {record['baseline']:.1f} s, timeout "
                      f"{record['timeout']:.0f} s", file=out, flush=True)
                continue
            mutant = every[record["number"]]
            outcomes.append(Outcome(mutant, record["status"], record["seconds"]))
            print(f"  #{mutant.number} line {mutant.line}:{mutant.column} {mutant.description}: "
                  f"{record['status']} ({record['seconds']:.1f} s)", file=out, flush=True)
        seen = len(lines)

    def session() -> int:
        import pytest

        sys.path.insert(0, str(root))
        plugin = _MutantLoop(name, source, selected, covered, workdir, root)
        return int(pytest.main([*_pytest_arguments(root), *tests], plugins=[plugin]))

    run_in_child(session, None, workdir / "session.log", root, poll=report)
    if len(outcomes) != len(selected):
        raise RuntimeError(f"{path}: {len(outcomes)} of {len(selected)} mutants ran; see "
                           f"{workdir / 'session.log'}.")
    return outcomes


def summary(path: str, outcomes: Sequence[Outcome], source_lines: Sequence[str],
            seconds: float | None = None) -> str:
    """Returns the score line and the surviving mutants of one module."""
    count = {status: sum(outcome.status == status for outcome in outcomes)
             for status in ("killed", "timeout", "survived", "not covered")}
    total = len(outcomes)
    score = (count["killed"] + count["timeout"]) / total if total else float("nan")
    text = [f"{path}: score {score:.1%} ({count['killed']} killed, {count['timeout']} "
            f"timeout, {count['survived']} survived, {count['not covered']} not covered, "
            f"of {total}" + ("" if seconds is None else f"; {seconds / 60:.1f} min") + ")"]
    for outcome in outcomes:
        if outcome.status in ("survived", "not covered"):
            mutant = outcome.mutant
            line = source_lines[mutant.line - 1].strip()
            text.append(f"  {outcome.status:11} #{mutant.number} line {mutant.line}:"
                        f"{mutant.column} {mutant.description}: {line}")
    return "\n".join(text)


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The command line's options; `pytest_args` holds what follows `--`, for pytest."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        usage="%(prog)s [modules ...] [options] [-- PYTEST_ARGS ...]",
        epilog="Arguments after `--` go to pytest after the module's tests, e.g. "
               "-- -k quantile (a -k there replaces the one in MODULES).")
    parser.add_argument("modules", nargs="*", help="module paths (default: all of MODULES)")
    parser.add_argument("--tests", nargs="+", help="test paths instead of MODULES' own")
    parser.add_argument("--only", nargs="+", type=int, default=(), help="mutant numbers")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--show", type=int, help="print one mutant's source and stop")
    parser.add_argument("--json", type=Path, help="write the outcomes to this file")
    argv = list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    arguments = parser.parse_args(argv[:cut])
    arguments.pytest_args = argv[cut + 1:]
    return arguments


def module_tests(path: str, arguments: argparse.Namespace) -> list[str]:
    """pytest's arguments for the module at `path`: its tests, then those after `--`."""
    return [*(arguments.tests or MODULES[path]), *arguments.pytest_args]


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    modules = arguments.modules or list(MODULES)
    if arguments.list or arguments.show:
        for path in modules:
            source = (ROOT / path).read_text()
            for mutant in mutants(source):
                if arguments.show == mutant.number:
                    print(mutated_source(source, mutant))
                elif arguments.list:
                    print(f"{path} #{mutant.number} line {mutant.line}:{mutant.column} "
                          f"{mutant.description}")
        return 0
    for package in PRELOAD:
        __import__(package)
    reports, records = [], []
    for path in modules:
        start = time.monotonic()
        # The lines the mutants are made of: the file may be edited while they run.
        lines = (ROOT / path).read_text().splitlines()
        outcomes = run_module(path, module_tests(path, arguments), arguments.only)
        reports.append(summary(path, outcomes, lines, time.monotonic() - start))
        records += [{"module": path, "number": o.mutant.number, "line": o.mutant.line,
                     "mutation": o.mutant.description, "status": o.status,
                     "seconds": round(o.seconds, 2)} for o in outcomes]
    print("\n" + "\n".join(reports))
    if arguments.json:
        arguments.json.write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
