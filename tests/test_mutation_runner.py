"""The mutation runner (benchmarks/mutation.py, `make mutation`) on a module small enough to
know every mutant's fate by hand."""

import ast
import importlib.util
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("mutation_runner",
                                              ROOT / "benchmarks" / "mutation.py")
mutation = importlib.util.module_from_spec(spec)
sys.modules["mutation_runner"] = mutation   # dataclasses look their module up by name
spec.loader.exec_module(mutation)

CLAMP = '''"""A docstring with 3 numbers and a < sign."""


def clamp(value: int, low: int, high: int) -> int:
    if value < low:
        raise ValueError(f"below {low + 1}")
    return min(value, high)
'''

CLAMP_TEST = '''from tiny import clamp
import pytest


def test_clamp():
    assert clamp(7, 0, 5) == 5
    with pytest.raises(ValueError):
        clamp(-1, 0, 5)
'''


def test_mutants_leave_docstrings_annotations_and_messages_alone():
    found = mutation.mutants(CLAMP)
    assert [(m.line, m.description) for m in found] == [
        (5, "condition negated"), (5, "`<` -> `<=`"), (7, "returns None")]
    mutated = mutation.mutated_source(CLAMP, found[1])
    assert "if value <= low:" in mutated
    assert ast.dump(ast.parse(mutated).body[0]) == ast.dump(ast.parse(CLAMP).body[0])


def test_imports_for_type_checkers_are_not_mutated():
    # Negated, `if TYPE_CHECKING:` imports at run time: only a fresh process would show
    # an import cycle, and the runner's modules are imported once, before the mutants.
    source = ("import typing\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
              "    import json\nif typing.TYPE_CHECKING:\n    import csv\nif DEBUG:\n"
              "    import os\n")
    assert [(m.line, m.description) for m in mutation.mutants(source)] == [
        (8, "condition negated")]


def test_runner_kills_tested_behaviour_and_reports_the_boundary_no_test_pins(tmp_path):
    (tmp_path / "tiny.py").write_text(CLAMP)
    (tmp_path / "test_tiny.py").write_text(CLAMP_TEST)
    report = io.StringIO()
    outcomes = mutation.run_module("tiny.py", ["test_tiny.py"], root=tmp_path,
                                   workdir=tmp_path / "work", out=report)
    assert {o.mutant.description: o.status for o in outcomes} == {
        "condition negated": "killed",
        "`<` -> `<=`": "survived",        # clamp(0, 0, 5) is never asked
        "returns None": "killed",
    }
    summary = mutation.summary("tiny.py", outcomes, CLAMP.splitlines())
    assert summary.startswith("tiny.py: score 66.7% (2 killed, 0 timeout, 1 survived")
    assert "#2 line 5:7 `<` -> `<=`: if value < low:" in summary


BASE = '''
class Base:
    def describe(self):
        return {"kind": "base"}


class Child(Base):
    def describe(self):
        return {**super().describe(), "size": 2}


def size():
    return Child().describe()["size"]
'''


def test_a_mutant_is_swapped_into_the_imported_module_in_place(tmp_path, monkeypatch):
    (tmp_path / "family.py").write_text(BASE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import family

    child, size = family.Child, family.size
    by_kind = {(m.line, m.description): m for m in mutation.mutants(BASE)}
    mutation.apply_mutant(family, mutation.mutated_source(BASE, by_kind[(9, "`2` -> `3`")]))
    assert size() == 3 and family.Child is child and family.size is size
    # `return super()...` -> `return`: the method loses its free variable and is replaced
    mutation.apply_mutant(family, mutation.mutated_source(BASE, by_kind[(9, "returns None")]))
    assert child().describe() is None
    mutation.apply_mutant(family, BASE)
    assert child().describe() == {"kind": "base", "size": 2}
    sys.modules.pop("family")


FROZEN = '''
import dataclasses


@dataclasses.dataclass(frozen=True)
class Method:
    name: str

    def label(self):
        return self.name.upper()


CLASSIFY = Method("classify")
'''


def test_a_module_level_frozen_dataclass_instance_keeps_its_class_under_a_mutant(
        tmp_path, monkeypatch):
    # A frozen dataclass refuses `instance.__class__ = ...`: swapping in any mutant of
    # such a module failed, and the runner counted every one of its mutants as killed.
    (tmp_path / "frozen.py").write_text(FROZEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    import frozen

    method = frozen.Method
    by_kind = {(m.line, m.description): m for m in mutation.mutants(FROZEN)}
    mutation.apply_mutant(frozen, mutation.mutated_source(FROZEN, by_kind[(10, "returns None")]))
    assert type(frozen.CLASSIFY) is method and frozen.CLASSIFY.label() is None
    sys.modules.pop("frozen")


def test_arguments_after_a_double_dash_select_the_tests_pytest_runs(tmp_path):
    # Everything after `--` reaches pytest after the tests, so `-k` selects among them:
    # with only test_clamp_low, no test reaches the return that test_clamp_high covers.
    arguments = mutation.parse_arguments(
        ["tiny.py", "--tests", "test_tiny.py", "--", "-k", "low and not high"])
    assert arguments.modules == ["tiny.py"]
    tests = mutation.module_tests("tiny.py", arguments)
    assert tests == ["test_tiny.py", "-k", "low and not high"]
    (tmp_path / "tiny.py").write_text(CLAMP)
    (tmp_path / "test_tiny.py").write_text(
        "from tiny import clamp\nimport pytest\n\n\n"
        "def test_clamp_high():\n    assert clamp(7, 0, 5) == 5\n\n\n"
        "def test_clamp_low():\n    with pytest.raises(ValueError):\n        clamp(-1, 0, 5)\n")
    outcomes = mutation.run_module("tiny.py", tests, root=tmp_path, workdir=tmp_path / "work",
                                   out=io.StringIO())
    assert {o.mutant.description: o.status for o in outcomes} == {
        "condition negated": "killed",    # clamp(-1, 0, 5) no longer raises
        "`<` -> `<=`": "survived",
        "returns None": "not covered",    # clamp(-1, 0, 5) raises before the return
    }


def test_without_a_double_dash_the_modules_own_tests_run_unchanged():
    arguments = mutation.parse_arguments(["memae_tf/thresholds.py"])
    assert arguments.pytest_args == []
    assert (mutation.module_tests("memae_tf/thresholds.py", arguments)
            == mutation.MODULES["memae_tf/thresholds.py"])
    extra = mutation.parse_arguments(["memae_tf/client/tensors.py", "--", "-k", "dtype"])
    assert mutation.module_tests("memae_tf/client/tensors.py", extra) == [
        *mutation.MODULES["memae_tf/client/tensors.py"], "-k", "dtype"]
