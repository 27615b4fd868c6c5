"""Import a library without the optional integrations it loads but our processes never use.

Keras loads scikit-learn (for its estimator wrappers) and Matplotlib (for its plotting
helpers) as it starts, and TensorFlow loads Keras; tensorboardX loads PyTorch to accept its
tensors. A trial's worker uses neither integration, nor does the driver's TensorBoard logger
(Tune writes floats), yet they cost seconds of CPU before a sweep's first epoch
(`python -m benchmarks.startup` on 2 slow cores: the trial workers' 17.1 s -> 13.6 s, the
driver's 8.4 s -> 5.9 s). Optuna's importance module loads scikit-learn for two evaluators
the report does not use. Each library guards these imports with ``except ImportError``, so
hiding the package while the library loads gives exactly what the library does where that
package is not installed.

Only the importing thread is affected, only for the duration of the import, and a package
already imported is never hidden (its cost is paid; the library gets it as usual).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Iterable, Sequence
from types import ModuleType

# Library -> optional packages it loads for integrations a sweep's processes do not use.
# With Keras loaded this way, `keras.wrappers`' scikit-learn estimators and `keras.visualization`
# report those packages missing in that process. `python -m benchmarks.startup` reports what each
# entry saves a new process, importing the library plainly and lean.
LEAN = {
    # Through Keras, which TensorFlow loads; SciPy for TensorFlow's own Keras 1 code, which
    # checks for SciPy's sparse matrices; pandas for Keras' slicing of DataFrames passed to `fit`
    # (a trial hands Keras tensors; a process that has loaded pandas first keeps it for Keras).
    "tensorflow": ("sklearn", "matplotlib", "scipy", "pandas"),
    "tensorboardX": ("torch",),
    # For its fANOVA and impurity evaluators (scikit-learn, with SciPy and pandas); the
    # report's PED-ANOVA uses neither.
    "optuna.importance": ("sklearn",),
}


class _Hidden(importlib.abc.MetaPathFinder):
    """A finder that makes the named top-level packages unimportable for one thread."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)
        self.thread = threading.get_ident()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self.names and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"{fullname} is hidden while another library loads", name=fullname)
        return None


def import_without(module: str, hidden: Iterable[str]) -> ModuleType:
    """Import ``module`` as if the ``hidden`` packages (those not imported yet) were not installed."""
    if module in sys.modules:
        return sys.modules[module]
    finder = _Hidden(name for name in hidden if name not in sys.modules)
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(module)
    finally:
        sys.meta_path.remove(finder)


def lean_import(module: str) -> ModuleType:
    """Import ``module`` without the integrations `LEAN` lists for it (a plain import otherwise)."""
    return import_without(module, LEAN.get(module, ()))
