"""Ray Tune without Ray Data and pandas, and TensorFlow without TF Lite's API, until something
reads one of their names.

Ray Tune imports Ray AIR, which imports Ray Data: its operators, data sources and pyarrow's
file systems, about a quarter of a second of one core, although a sweep of Keras models passes
Tune no Ray Dataset. The sweep's driver and a kept fork server's Ray stage (`workerstage`)
import Tune on the start-up's critical path, on cores that Ray's start shares.

`defer_ray_data` adds an import finder. ``import ray.data`` then binds a module that runs Ray
Data's own code the first time one of its names is read (``ray.data.Dataset``, ``from ray.data
import ...``, a submodule's import), so code that uses Ray Data gets all of it, unchanged. Two
places in Tune read Ray Data's names where no Dataset can exist yet:

- `out_of_band_serialize_dataset`'s module annotates a function with ``ray.data.Dataset``,
  evaluated as it loads: that module is compiled with postponed annotations (PEP 563), which
  keep the annotation as text and change nothing else;
- its context, which wraps each save of Tune's experiment state, registers a pickler for
  ``ray.data.Dataset``: while Ray Data is not loaded there is no Dataset to pickle, so it
  registers none then.

`defer_pandas` defers pandas the same way (a quarter of a second more), in a trial's worker
(`workerimports`) and in the command's process: Tune imports it for the tables it reads a run's
results into as the run ends, which a worker never makes and a sweep's driver skips (it reads
its trials' results as rows: `resultrows`). Two of Tune's modules read pandas' names as they
load: `result_grid` annotates with ``pd.DataFrame`` (compiled with postponed annotations) and
`experiment_analysis` runs ``from pandas import DataFrame`` beside ``import pandas as pd``
(compiled with each read of ``DataFrame`` as ``pd.DataFrame``, read when its code runs). A job
whose data is a table loads pandas as it reads it, as do libraries that look for pandas'
objects once it is bound (scikit-learn's input checks).

`defer_tensorflow_lite` defers TensorFlow Lite's public modules (``tf.lite`` and
``tf.compat.v1.lite``, ``tf.compat.v2.lite``) the same way in a trial's worker
(`workerimports`): TensorFlow's package imports them with the rest of its API, and they load
TF Lite's converter and its schema, about a quarter of a second of the worker fork server's
TensorFlow import, on a first sweep's start-up path, for a trainable that never converts a
model. Reading one of their names (``tf.lite.TFLiteConverter``, Keras' LiteRT export) loads
them.

Where Ray's modules differ from these (a Ray upgrade), the finder leaves them to Python's own
import: the library then loads with Tune, as before; where TensorFlow's do, TF Lite loads with
TensorFlow.
"""

from __future__ import annotations
import __future__

import ast
import contextlib
import functools
import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

RAY_DATA = "ray.data"
PANDAS = "pandas"
# Tune's module whose annotation reads ``ray.data.Dataset`` as it loads.
DATASET_PICKLER = "ray.tune.impl.out_of_band_serialize_dataset"
DATASET_PICKLER_CONTEXT = "out_of_band_serialize_dataset"
# Tune's modules that read pandas' names as they load.
PANDAS_READERS = ("ray.tune.result_grid", "ray.tune.analysis.experiment_analysis")
# TensorFlow's API modules that import TF Lite: ``tf.lite`` and its two ``tf.compat`` aliases.
TENSORFLOW_LITE = (
    "tensorflow._api.v2.lite",
    "tensorflow._api.v2.compat.v1.lite",
    "tensorflow._api.v2.compat.v2.lite",
)
# Dunder names whose reading loads a deferred module; the import system looks up the others.
_LOADING_DUNDERS = ("__all__", "__version__")

_lock = threading.RLock()  # one load at a time; the loading thread may read its own names
_deferred: dict[str, _DeferLoader] = {}  # by name: the modules made whose code has not run
_loading: set[str] = set()
_deferring: frozenset[str] = frozenset()  # the packages this process defers (RAY_DATA, PANDAS...)


class DeferredModule(types.ModuleType):
    """A module whose code has not run yet: reading a name it lacks runs it, then reads the name."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name not in _LOADING_DUNDERS:
            raise AttributeError(name)  # what the import system looks up as it makes the module
        _load(self)
        if isinstance(self, DeferredModule):  # a failed load's module: Python's would be gone
            raise AttributeError(name)
        return getattr(self, name)


def ray_data_loaded() -> bool:
    """Whether Ray Data's code has run in this process (then a Ray Dataset may exist)."""
    return loaded(RAY_DATA)


def loaded(name: str) -> bool:
    """Whether the package's code has run in this process."""
    module = sys.modules.get(name)
    return module is not None and not isinstance(module, DeferredModule)


def _load(module: types.ModuleType) -> None:
    """Run a deferred module's own code in it: in this thread, while another thread reading one
    of its names waits for it."""
    with _lock:
        name = module.__name__
        if name in _loading:  # its own code reads a name it has not defined yet
            raise AttributeError(f"partially initialized module {name!r} has no such attribute yet")
        loader = _deferred.get(name)
        if loader is None or loader.deferred is not module:
            return  # loaded (by another thread), or a failed load's
        real = loader.real
        assert real.loader is not None
        tail = name.rpartition(".")[2]
        holders = _holders(module, tail)
        _loading.add(name)
        try:
            module.__spec__, module.__loader__ = real, real.loader
            real.loader.exec_module(module)
            module.__class__ = types.ModuleType
            # What importing it gives, as Python's import does: the module its code left in
            # ``sys.modules`` (TensorFlow's v1 API puts a wrapper there). Those that bound the
            # deferred module bind that, also where a package its code imported took the name
            # as Python binds a submodule in its package (``tensorflow.lite`` for ``tf.lite``).
            imported = sys.modules.get(name, module)
            for holder in holders:
                if vars(holder).get(tail) is not imported:
                    setattr(holder, tail, imported)
        except BaseException:
            if sys.modules.get(name) is module:  # as a failed import leaves no module behind
                del sys.modules[name]
            raise
        finally:
            _loading.discard(name)
            del _deferred[name]


def _holders(module: types.ModuleType, tail: str) -> list[types.ModuleType]:
    """The loaded modules that bind ``module`` as ``tail`` (its package, what imported it)."""
    return [
        m
        for m in list(sys.modules.values())
        if isinstance(m, types.ModuleType) and m.__dict__.get(tail) is module
    ]


class _DeferLoader(importlib.abc.Loader):
    """Makes a `DeferredModule` of a package found by Python's path finder (``real``)."""

    def __init__(self, real: importlib.machinery.ModuleSpec) -> None:
        self.real = real
        self.deferred: types.ModuleType | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return DeferredModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing yet: the package's code runs when one of its names is read (`_load`)."""
        self.deferred = module
        _deferred[module.__name__] = self


class _LoadedLoader(importlib.abc.Loader):
    """Hands back, without running it again, a submodule that its package's code imported while
    it loaded (`_Finder`)."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self.spec  # the module's own spec again


def _handed_back(module: types.ModuleType) -> importlib.machinery.ModuleSpec:
    """A spec that gives the import system ``module`` as it is. Python's import, finding the
    module in ``sys.modules`` once the finder has run, loads the spec the module names, so the
    module names this one until the import system has it (`_LoadedLoader.exec_module`)."""
    spec = importlib.machinery.ModuleSpec(module.__name__, _LoadedLoader(module))
    module.__spec__ = spec
    return spec


class _PostponedAnnotationsLoader(importlib.machinery.SourceFileLoader):
    """Compiles the module with postponed annotations and pandas' names read where they are
    used, and keeps its Dataset pickler's context out of Ray Data's way until Ray Data is loaded."""

    def get_code(self, fullname: str) -> types.CodeType:
        source = self.get_source(fullname)
        if source is None:
            raise ImportError(f"no source for {fullname}", name=fullname)
        tree = pandas_names_read_late(ast.parse(source, self.path))
        code: types.CodeType = compile(
            tree, self.path, "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True
        )
        return code

    def exec_module(self, module: types.ModuleType) -> None:
        super().exec_module(module)
        rays = getattr(module, DATASET_PICKLER_CONTEXT, None)
        if callable(rays):
            setattr(module, DATASET_PICKLER_CONTEXT, while_ray_data_loaded(rays))


def pandas_names_read_late(tree: ast.Module) -> ast.Module:
    """``from pandas import X`` beside ``import pandas as pd`` at a module's top level: the
    statement goes, and each read of ``X`` becomes ``pd.X``, read when that code runs rather than
    as the module loads. A module that binds no such alias, or rebinds one of the names in a
    function or class, is left as it is (its import then loads pandas)."""
    statements = list(_top_level(tree.body))
    alias = next(
        (
            name.asname or name.name
            for statement in statements
            if isinstance(statement, ast.Import)
            for name in statement.names
            if name.name == PANDAS
        ),
        None,
    )
    names = {
        name.asname or name.name: name.name
        for statement in statements
        if isinstance(statement, ast.ImportFrom) and statement.module == PANDAS and not statement.level
        for name in statement.names
    }
    if alias is None or not names or "*" in names or _rebound_inside(tree, {alias, *names}):
        return tree
    _PandasNamesAsAttributes(alias, names).visit(tree)  # in place: the module node stays
    return ast.fix_missing_locations(tree)


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """A module's statements outside functions and classes (inside ``try`` and ``if`` too)."""
    for statement in body:
        yield statement
        if isinstance(statement, (ast.Try, ast.If)):
            for part in (statement.body, statement.orelse, getattr(statement, "finalbody", [])):
                yield from _top_level(part)
            for handler in getattr(statement, "handlers", []):
                yield from _top_level(handler.body)


def _rebound_inside(tree: ast.Module, names: set[str]) -> bool:
    """Whether a function or class of the module binds one of ``names`` (a local of that name).
    One pass over the tree: this runs as Tune loads, on the start-up's path."""
    finder = _Rebinding(names)
    finder.visit(tree)
    return finder.found


class _Rebinding(ast.NodeVisitor):
    def __init__(self, names: set[str]) -> None:
        self.names, self.depth, self.found = names, 0, False

    def _scope(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = visit_ClassDef = _scope

    def visit_Name(self, node: ast.Name) -> None:
        if self.depth and not isinstance(node.ctx, ast.Load) and node.id in self.names:
            self.found = True

    def visit_arg(self, node: ast.arg) -> None:
        if node.arg in self.names:  # only ever inside a function or lambda
            self.found = True


class _PandasNamesAsAttributes(ast.NodeTransformer):
    def __init__(self, alias: str, names: dict[str, str]) -> None:
        self.alias, self.names = alias, names

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        if node.module == PANDAS and not node.level:
            return ast.copy_location(ast.Pass(), node)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.names:
            read = ast.Attribute(ast.Name(self.alias, ast.Load()), self.names[node.id], ast.Load())
            return ast.copy_location(read, node)
        return node


def while_ray_data_loaded(rays: Callable[[], Any]) -> Callable[[], Any]:
    """Ray's Dataset pickler context where Ray Data is loaded; elsewhere one that does nothing."""

    @functools.wraps(rays)
    def context() -> Any:
        return rays() if ray_data_loaded() else contextlib.nullcontext()

    return context


class _Finder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path``: defers the packages this process defers and compiles the Tune
    modules that read their names as they load."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in _deferring:
            real = importlib.machinery.PathFinder.find_spec(fullname, path)
            if real is None or real.loader is None or real.submodule_search_locations is None:
                return None
            spec = importlib.machinery.ModuleSpec(
                fullname, _DeferLoader(real), origin=real.origin, is_package=True
            )
            spec.submodule_search_locations = real.submodule_search_locations
            spec.has_location = real.has_location
            return spec
        deferring = next((name for name in _deferring if fullname.startswith(name + ".")), None)
        if deferring is not None:
            package = sys.modules.get(deferring)
            if isinstance(package, DeferredModule) and deferring not in _loading:
                # As Python does: the package's code first.
                _load(package)
                module = sys.modules.get(fullname)
                if module is not None:  # the package imported it
                    return _handed_back(module)
            return None
        if fullname == DATASET_PICKLER or (PANDAS in _deferring and fullname in PANDAS_READERS):
            real = importlib.machinery.PathFinder.find_spec(fullname, path)
            if real is None or not isinstance(real.loader, importlib.machinery.SourceFileLoader):
                return None
            real.loader = _PostponedAnnotationsLoader(fullname, real.loader.path)
            return real
        return None


_finder = _Finder()


def defer_ray_data() -> None:
    """From now on in this process, Ray Data loads only when one of its names is read. Idempotent;
    nothing changes where Ray Data or Tune's Dataset pickler has loaded already."""
    _defer(RAY_DATA)


def defer_pandas() -> None:
    """From now on in this process, pandas loads only when one of its names is read (a trial's
    worker, the command's process: see the module's docstring). Idempotent; nothing changes where
    it has loaded already."""
    _defer(PANDAS)


def defer_tensorflow_lite() -> None:
    """From now on in this process, TensorFlow's ``tf.lite`` modules load only when one of their
    names is read (a trial's worker: see the module's docstring). Called before TensorFlow's
    import; idempotent."""
    _defer(*TENSORFLOW_LITE)


def _defer(*packages: str) -> None:
    global _deferring
    with _lock:
        _deferring = _deferring | set(packages)  # a new set: the finder may be reading the old one
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
