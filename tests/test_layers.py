"""The package's layers (docs/architecture.md), checked on the source: no module imports upwards.

Every import of every module under ``tuning_service/`` counts: at module level, inside
functions, and in ``if TYPE_CHECKING:`` blocks. Lazy imports inside functions are how this
package keeps Ray and TensorFlow out of commands that do not need them, so they are exactly
the imports a check at module level alone would miss; a TYPE_CHECKING import still ties the
lower module's design to the upper one. One exception, in the Keras rule only: an import in
a TYPE_CHECKING block loads nothing at run time (the job API names ``keras.Model`` in its
types), so it does not count there. Names resolved at run time (registries' "module:function"
strings, ``importlib.import_module``) are not imports and are not checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import tuning_service

PACKAGE = Path(tuning_service.__file__).resolve().parent
NAME = "tuning_service"

# Lowest first: a module may import its own layer and the layers before it, never a later one.
LAYERS = ("base", "store", "keras", "data", "ray", "orchestration", "top")

# Module or package -> layer; the longest matching name decides (a package's modules follow it
# unless named themselves). Every module of the package must be covered: a new module goes into
# the package of the lowest layer it fits. The folders are the layers, one package each.
LAYER_OF = {
    # Plain values and files, no database, no Ray, no Keras.
    "tuning_service.core": "base",
    # The results database: tables, migrations, reads and writes.
    "tuning_service.store": "store",
    # Keras and TensorFlow.
    "tuning_service.training": "keras",
    # Jobs from tables and job files, and the catalog that finds them.
    "tuning_service.data": "data",
    # Ray and Ray Tune: the trainable, its callbacks, searchers, schedulers, the recording of a sweep.
    "tuning_service.raytune": "ray",
    # Whole sweeps: run, resume, submit, schedule, refit, and read them back (reports, aggregates).
    "tuning_service.sweeps": "orchestration",
    # The job API: thin re-exports at the import paths user jobs and the README name, each in the
    # layer of the module it re-exports (see JOB_API below).
    "tuning_service.errors": "base",
    "tuning_service.job": "base",
    "tuning_service.space": "base",
    "tuning_service.imagedata": "keras",
    "tuning_service.models": "keras",
    "tuning_service.tabular": "data",
    "tuning_service.aggregate": "orchestration",
    # What users and tests call: the command line, the dashboard, the package's own names.
    "tuning_service": "top",
    "tuning_service.__main__": "top",
    "tuning_service.cli": "top",
    "tuning_service.dashboard": "top",
    "tuning_service.testing": "top",
}

# The job API's re-export modules: for jobs and users only. The package imports the modules that
# hold the code, so the re-exports stay thin and can keep their paths whatever moves behind them.
JOB_API = (
    "tuning_service.aggregate",
    "tuning_service.errors",
    "tuning_service.imagedata",
    "tuning_service.job",
    "tuning_service.models",
    "tuning_service.space",
    "tuning_service.tabular",
)

# Upward imports still allowed: (importing module, imported module) -> why. Keep this short.
ALLOWED_UPWARD = {
    # `run --help` lists the searchers and schedulers (and their install extras) from their
    # registries, read when the help is shown; the registries import no Ray at module level.
    ("tuning_service.core.spec", "tuning_service.raytune.searchers"): "--searcher and --scheduler help text",
}

KERAS = ("keras", "tensorflow", "tf_keras")
# The only package that imports them (the built-in jobs in jobs/ may too; they are not checked).
KERAS_PACKAGE = "tuning_service.training"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports: a module of this package, or an outside top-level package
    line: int
    type_checking: bool  # inside an `if TYPE_CHECKING:` block


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(base: str, name: str, known: dict[str, Path]) -> str:
    """``from base import name``: the submodule when there is one, else ``base`` itself."""
    return f"{base}.{name}" if f"{base}.{name}" in known else base


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(module: str, path: Path, known: dict[str, Path]) -> Iterator[Import]:
    """Every import in the file, wherever it stands, resolved to an absolute name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            guarded.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                target = name if name.split(".")[0] == NAME else name.split(".")[0]
                yield Import(module, target, node.lineno, id(node) in guarded)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(
                    parts[: len(parts) - (node.level - 1)] + ([node.module] if node.module else [])
                )
            else:
                base = node.module or ""
            if base.split(".")[0] != NAME:
                yield Import(module, base.split(".")[0], node.lineno, id(node) in guarded)
                continue
            for alias in node.names:
                yield Import(module, _resolve(base, alias.name, known), node.lineno, id(node) in guarded)


def layer_of(module: str) -> str | None:
    """The layer of the longest name in LAYER_OF that is ``module`` or a package holding it.

    The package itself (``tuning_service``) counts only for its own ``__init__``: a module
    nobody placed has no layer, and `test_every_module_has_a_layer` says so.
    """
    holders = (n for n in LAYER_OF if module == n or (n != NAME and module.startswith(n + ".")))
    best = max(holders, key=len, default=None)
    return LAYER_OF[best] if best is not None else None


def all_imports() -> list[Import]:
    known = modules()
    return [found for module, path in known.items() for found in imports(module, path, known)]


def where(found: Import) -> str:
    guard = " (under TYPE_CHECKING)" if found.type_checking else ""
    return f"{found.module} line {found.line}: imports {found.target}{guard}"


def test_every_module_has_a_layer():
    missing = [m for m in modules() if layer_of(m) is None]
    assert not missing, f"modules with no layer in LAYER_OF (add them): {missing}"


def test_no_module_imports_a_higher_layer():
    wrong = []
    for found in all_imports():
        if found.target.split(".")[0] != NAME:
            continue
        own, theirs = layer_of(found.module), layer_of(found.target)
        if own is None or theirs is None or LAYERS.index(theirs) <= LAYERS.index(own):
            continue
        if (found.module, found.target) in ALLOWED_UPWARD:
            continue
        wrong.append(f"{where(found)} ({own} layer imports {theirs} layer)")
    assert not wrong, "imports of a higher layer:\n" + "\n".join(wrong)


def test_allowed_upward_imports_still_exist():
    """An exemption whose import is gone must leave the list, so the list stays short."""
    seen = {(f.module, f.target) for f in all_imports()}
    stale = [pair for pair in ALLOWED_UPWARD if pair not in seen]
    assert not stale, f"ALLOWED_UPWARD names imports that no longer exist: {stale}"


def test_the_store_imports_no_ray():
    """The store sits below Ray: the CLI's database commands and the dashboard read it without Ray."""
    wrong = [where(f) for f in all_imports() if layer_of(f.module) == "store" and f.target == "ray"]
    assert not wrong, "Ray imported by the store:\n" + "\n".join(wrong)


def test_only_the_training_package_imports_keras():
    wrong = [
        f"{where(found)} (only {KERAS_PACKAGE} may)"
        for found in all_imports()
        if found.target in KERAS
        and not found.type_checking
        and not found.module.startswith(KERAS_PACKAGE + ".")
    ]
    assert not wrong, "Keras or TensorFlow imported outside the training package:\n" + "\n".join(wrong)


def test_the_package_imports_no_job_api_module():
    """Only the job API modules themselves import the code they re-export; the rest imports that code."""
    wrong = [
        f"{where(found)} (import the module it re-exports)"
        for found in all_imports()
        if found.target in JOB_API and found.module != found.target
    ]
    assert not wrong, "job API re-exports imported inside the package:\n" + "\n".join(wrong)


def test_every_job_api_module_is_a_re_export():
    """A job API module imports only the module holding its code (and __future__), nothing more."""
    known = modules()
    for name in JOB_API:
        targets = {f.target for f in imports(name, known[name], known)}
        own = {t for t in targets if t.startswith(NAME + ".")}
        assert len(own) == 1 and layer_of(own.pop()) == layer_of(name), (name, targets)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from tuning_service.sweeps.runner import run_sweep\n", "imports tuning_service.sweeps.runner"),
        ("def f():\n    from tuning_service import cli\n", "imports tuning_service.cli"),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .dashboard import app\n",
            "imports tuning_service.dashboard.app (under TYPE_CHECKING)",
        ),
    ],
)
def test_an_upward_import_is_found(tmp_path, source, expected):
    """The walk sees module-level, function-level, relative and TYPE_CHECKING imports."""
    path = tmp_path / "tuning_service" / "errors_probe.py"
    path.parent.mkdir()
    path.write_text(source)
    known = modules()
    found = list(imports("tuning_service.errors_probe", path, known))
    assert expected in "\n".join(where(f) for f in found)
    assert all(layer_of(f.target) in ("orchestration", "top") for f in found if f.target.startswith(NAME))
