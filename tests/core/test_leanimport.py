"""Importing a library with its optional integrations hidden: what it sees, and what is left after."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tuning_service.core.leanimport import _Hidden, import_without

# A library with an optional integration it guards, as Keras guards scikit-learn.
LIBRARY = """
try:
    import {optional}.part
    HAS_OPTIONAL = True
except ImportError:
    HAS_OPTIONAL = False
"""


@pytest.fixture
def packages(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A library and its optional package, under names no other test imports."""
    suffix = request.node.name.replace("[", "_").replace("]", "_").replace("-", "_")
    library, optional = f"lean_lib_{suffix}", f"lean_opt_{suffix}"
    (tmp_path / optional).mkdir()
    (tmp_path / optional / "__init__.py").write_text("")
    (tmp_path / optional / "part.py").write_text("VALUE = 1\n")
    (tmp_path / f"{library}.py").write_text(LIBRARY.format(optional=optional))
    sys.path.insert(0, str(tmp_path))
    try:
        yield library, optional
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith((library, optional))]:
            del sys.modules[name]


def test_the_library_loads_as_if_the_hidden_package_were_not_installed(packages):
    library, optional = packages
    finders = list(sys.meta_path)

    module = import_without(library, [optional])

    assert module.HAS_OPTIONAL is False
    assert optional not in sys.modules
    assert sys.meta_path == finders
    # Hidden only while the library loaded: the package imports as usual afterwards.
    assert __import__(f"{optional}.part", fromlist=["VALUE"]).VALUE == 1


def test_a_package_already_imported_is_not_hidden(packages):
    library, optional = packages
    __import__(f"{optional}.part")

    assert import_without(library, [optional]).HAS_OPTIONAL is True


def test_a_library_imported_already_is_returned_as_it_is(packages):
    library, optional = packages
    first = __import__(library)

    assert import_without(library, [optional]) is first
    assert first.HAS_OPTIONAL is True


def test_the_finder_is_removed_when_the_library_fails_to_load(packages, tmp_path):
    library, optional = packages
    (tmp_path / f"{library}.py").write_text(f"import {optional}\n")  # a dependency, not optional
    finders = list(sys.meta_path)

    with pytest.raises(ModuleNotFoundError, match="hidden while another library loads"):
        import_without(library, [optional])
    assert sys.meta_path == finders
    assert library not in sys.modules


def test_other_threads_import_the_hidden_package_as_usual():
    finder = _Hidden(["sklearn"])
    seen: list[object] = []
    other = threading.Thread(target=lambda: seen.append(finder.find_spec("sklearn.base")))
    other.start()
    other.join()

    assert seen == [None]
    with pytest.raises(ModuleNotFoundError):
        finder.find_spec("sklearn.base")
    assert finder.find_spec("sklearnish") is None  # only the package itself and its modules


def test_tensorboard_files_are_written_without_importing_pytorch(tmp_path):
    # The driver's TensorBoard logger loads tensorboardX this way; PyTorch is installed here.
    script = textwrap.dedent(
        f"""
        import sys
        from tuning_service.raytune.tensorboard import load_tensorboard_writer
        load_tensorboard_writer()
        from tensorboardX import SummaryWriter
        writer = SummaryWriter({str(tmp_path)!r})
        writer.add_scalar("val_accuracy", 0.5, 1)
        writer.close()
        print("torch" in sys.modules)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False"]
    assert list(tmp_path.glob("events.out.tfevents.*"))
