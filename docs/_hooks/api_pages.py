"""MkDocs hook: one API reference page per package, generated from its `__all__`.

Each package of `memae_tf` lists its public names in `__all__`, either as
`from module import name` lines or through `lazy_exports(__name__, {module:
[names]})`. This hook reads those `__init__.py` files (statically: the build
imports neither the package nor TensorFlow) and writes `api/<package>.md` with
one mkdocstrings `::: module.name` block per public name, pointing at the module
that defines it, so the reference always covers exactly what is exported.
"""

from __future__ import annotations

import ast
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "memae_tf"


def _absolute(package: str, module: str, level: int = 0) -> str:
    """The absolute name of `module` as imported from `package`'s `__init__`."""
    if module.startswith("."):  # lazy_exports' relative names
        return package + module
    if level:  # `from .x import y` (level 1) or `from ..x import y`
        base = package.rsplit(".", level - 1)[0]
        return f"{base}.{module}" if module else base
    return module


def _export_table(node: ast.AST) -> dict[str, list[str]] | None:
    """`{module: [names]}` if `node` is a dict literal of that shape, else None."""
    if not isinstance(node, ast.Dict) or not node.keys:
        return None
    table = {}
    for key, value in zip(node.keys, node.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)
                and isinstance(value, (ast.List, ast.Tuple))
                and all(isinstance(v, ast.Constant) and isinstance(v.value, str)
                        for v in value.elts)):
            return None
        table[key.value] = [v.value for v in value.elts]
    return table


def public_names(init: Path, package: str) -> dict[str, str]:
    """`{public name: module that holds it}` for the names of a package's `__all__`.

    The modules come from the `from module import name` lines and from the
    `{module: [names]}` tables of names imported on first use (the argument of
    `lazy_exports`, or a package's own table). `__all__` is a list of names,
    where `*...` stands for the lazily imported ones, or is computed from such a
    table, in which case it is all of them.
    """
    tree = ast.parse(init.read_text())
    origin: dict[str, str] = {}
    lazy: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node in tree.body:
            for alias in node.names:
                origin[alias.asname or alias.name] = _absolute(
                    package, node.module or "", node.level)
        table = _export_table(node)
        if table and all(m.startswith((".", "memae_tf")) for m in table):
            for module, names in table.items():
                for name in names:
                    origin[name] = _absolute(package, module)
                    lazy.append(name)
    exported: list[str] | None = None
    for node in tree.body:
        targets = [t for target in getattr(node, "targets", []) for t in ast.walk(target)]
        if not any(getattr(t, "id", "") == "__all__" for t in targets):
            continue
        if isinstance(node.value, ast.List):
            exported = []
            for item in node.value.elts:
                exported += lazy if isinstance(item, ast.Starred) else [ast.literal_eval(item)]
        else:  # computed from the table: `lazy_exports(...)`, `sorted(_MODULES)`
            exported = list(lazy)
    return {name: origin.get(name, package) for name in exported or []}


def packages() -> dict[str, dict[str, str]]:
    """Every package of memae_tf with an `__all__`, top level first."""
    found = {}
    for init in sorted(PACKAGE.rglob("__init__.py")):
        package = ".".join(init.parent.relative_to(ROOT).parts)
        names = public_names(init, package)
        if names:
            found[package] = names
    return dict(sorted(found.items(), key=lambda item: (item[0] != "memae_tf", item[0])))


def page(package: str, names: dict[str, str]) -> str:
    docstring = ast.get_docstring(ast.parse((ROOT / package.replace(".", "/")
                                             / "__init__.py").read_text())) or ""
    lines = [f"# `{package}`", "", docstring.split("\n\n")[0], ""]
    for name, module in sorted(names.items(), key=lambda item: item[0].lower()):
        lines += [f"::: {module}.{name}", "    options:", "      show_root_heading: true",
                  "      show_root_full_path: false", ""]
    return "\n".join(lines)


def index(found: dict[str, dict[str, str]]) -> str:
    lines = ["# API reference", "",
             "Generated from the docstrings: one page per package, one entry per name of "
             "its `__all__`.", "", "| package | public names |", "|---|---|"]
    for package, names in found.items():
        lines.append(f"| [`{package}`]({package}.md) | {len(names)} |")
    return "\n".join(lines) + "\n"


def on_files(files: Files, config) -> Files:
    found = packages()
    files.append(File.generated(config, "api/index.md", content=index(found)))
    for package, names in found.items():
        files.append(File.generated(config, f"api/{package}.md", content=page(package, names)))
    return files
