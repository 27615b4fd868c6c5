"""Keras' image datasets read from Keras' own cache layout, offline-first, never a hanging download."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuning_service.core.errors import InputError
from tuning_service.core.job import Dataset

log = logging.getLogger(__name__)

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_test, y_test

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CIFAR10_ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# Seconds to wait for a download to start; an offline machine fails at once or after this.
CONNECT_TIMEOUT_S = 10.0
# Set to 1 on machines without internet: a missing file is reported without trying to download.
OFFLINE_ENV = "TUNING_SERVICE_OFFLINE"


def keras_cache_dir() -> Path:
    """Where `keras.datasets` keeps its files: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME") or Path(os.path.expanduser("~/.keras"))
    return Path(home) / "datasets"


def dataset_cache_dir(data_dir: str | Path | None = None) -> Path:
    """The dataset cache a job reads: ``data_dir`` (``~`` expanded) if given, else Keras'."""
    return Path(os.path.expanduser(data_dir)) if data_dir else keras_cache_dir()


@dataclass(frozen=True)
class ImageSource:
    """One Keras image dataset: the files it needs in the cache and how to read them.

    ``files`` are relative to the cache directory; ``layouts`` lists alternative
    folders holding them (Keras 3 and Keras 2 unpack CIFAR-10 differently). Each
    file is downloaded from ``origin + file``, or, with ``archive`` set, ``origin``
    is a tarball unpacked into that folder of the cache.
    """

    name: str
    files: tuple[str, ...]
    origin: str
    read: Callable[[Path], Arrays]
    layouts: tuple[str, ...] = ("",)
    archive: str | None = None

    def locate(self, cache_dir: Path) -> Path | None:
        """The folder holding every file, or None."""
        for layout in self.layouts:
            folder = cache_dir / layout
            if all((folder / f).is_file() for f in self.files):
                return folder
        return None

    def fetch(self, cache_dir: Path) -> None:
        """Download what is missing into ``cache_dir``, the way keras.datasets lays it out."""
        if self.archive is not None:
            tarball = cache_dir / Path(self.origin).name
            log.info("downloading %s to %s", self.origin, tarball)
            _download(self.origin, tarball)
            with tarfile.open(tarball) as tar:
                tar.extractall(cache_dir / self.archive, filter="data")
            tarball.unlink()
            return
        folder = cache_dir / self.layouts[0]
        for name in self.files:
            if not (folder / name).is_file():
                log.info("downloading %s%s to %s", self.origin, name, folder)
                _download(self.origin + name, folder / name)

    def how_to_get(self, cache_dir: Path) -> str:
        """What a user on a machine with internet should do, for the error message."""
        if self.archive is not None:
            return f"download {self.origin} and unpack it into {str(cache_dir / self.archive)!r}"
        urls = ", ".join(self.origin + f for f in self.files)
        return f"download {urls} into {str(cache_dir / self.layouts[0])!r}"


def load_arrays(source: ImageSource, data_dir: str | Path | None = None) -> Arrays:
    """The dataset's arrays from ``data_dir`` (default: Keras' cache), downloading only if absent."""
    cache_dir = dataset_cache_dir(data_dir)
    folder = source.locate(cache_dir)
    if folder is None:
        missing = next(f for f in source.files if not (cache_dir / source.layouts[0] / f).is_file())
        target = cache_dir / source.layouts[0] / missing
        if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
            reason = f"{OFFLINE_ENV} is set, so no download was tried"
        else:
            reason = _try_fetch(source, cache_dir)
        folder = source.locate(cache_dir)
        if folder is None:
            raise InputError(
                f"{source.name}: {str(target)!r} is missing ({reason}); on a machine with internet, "
                f"{source.how_to_get(cache_dir)}, or pass --data-dir DIR holding {_what_to_put(source)}"
            )
    try:
        return source.read(folder)
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise InputError(f"{source.name}: cannot read the files in {str(folder)!r} ({exc})") from None


def _what_to_put(source: ImageSource) -> str:
    folder = Path(source.layouts[0])
    if len(source.files) > 2:
        return f"{folder / source.files[0]} ... {folder / source.files[-1]}"
    return ", ".join(str(folder / f) for f in source.files)


def _try_fetch(source: ImageSource, cache_dir: Path) -> str:
    """Download the source's files; return why it failed, or '' on success."""
    try:
        source.fetch(cache_dir)
    except (OSError, TimeoutError, tarfile.TarError) as exc:
        detail = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
        return f"downloading it failed: {detail}"
    return "the download did not contain it"


def _open_url(url: str) -> object:
    """Open ``url`` within `CONNECT_TIMEOUT_S`, name resolution included (urlopen's timeout skips DNS)."""
    from tuning_service.core.deadline import within

    return within(
        CONNECT_TIMEOUT_S,
        lambda: urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT_S),  # noqa: S310 - fixed https origins
        what=url,
    )


def _download(url: str, dest: Path) -> None:
    """Stream ``url`` to ``dest`` through a temporary file, so a broken download leaves nothing."""
    response = _open_url(url)  # before any folder is made: a failed download leaves nothing
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, response:  # type: ignore[attr-defined]
            shutil.copyfileobj(response, out)  # type: ignore[arg-type,type-var]
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- readers: the formats keras.datasets reads, parsed the same way ----------------------


def _read_mnist_npz(folder: Path) -> Arrays:
    with np.load(folder / "mnist.npz", allow_pickle=False) as f:
        return f["x_train"], f["y_train"], f["x_test"], f["y_test"]


def _idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


def _read_fashion(folder: Path) -> Arrays:
    y_train, y_test = (
        _idx(folder / "train-labels-idx1-ubyte.gz", 8),
        _idx(folder / "t10k-labels-idx1-ubyte.gz", 8),
    )
    x_train = _idx(folder / "train-images-idx3-ubyte.gz", 16).reshape(len(y_train), 28, 28)
    x_test = _idx(folder / "t10k-images-idx3-ubyte.gz", 16).reshape(len(y_test), 28, 28)
    return x_train, y_train, x_test, y_test


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from keras.src.datasets.cifar import load_batch

    data, labels = load_batch(str(path))
    return data.transpose(0, 2, 3, 1), np.asarray(labels, dtype="uint8")


def _read_cifar10(folder: Path) -> Arrays:
    batches = [_read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _read_cifar_batch(folder / "test_batch")
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]), x_test, y_test


_FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)

SOURCES: dict[str, ImageSource] = {
    "mnist": ImageSource("mnist", ("mnist.npz",), KERAS_ORIGIN, _read_mnist_npz),
    "fashion_mnist": ImageSource(
        "fashion_mnist", _FASHION_FILES, KERAS_ORIGIN, _read_fashion, layouts=("fashion-mnist",)
    ),
    "cifar10": ImageSource(
        "cifar10",
        tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",),
        CIFAR10_ORIGIN,
        _read_cifar10,
        # Keras 3 unpacks into a "-target" folder, Keras 2 straight into the cache.
        layouts=("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"),
        archive="cifar-10-batches-py-target",
    ),
}


def image_dataset(
    name: str,
    *,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    seed: int = 0,
    val_size: int = 5000,
    standardize: bool = False,
) -> Dataset:
    """Pixels to [0, 1]; a seeded validation split of up to ``val_size`` train images.

    ``standardize`` centres and scales each pixel with train statistics (the SELU
    nets need standardized inputs); ``limit`` caps the training images.
    """
    x_train, y_train, x_test, y_test = load_arrays(SOURCES[name], data_dir)
    y_train, y_test = y_train.reshape(-1).astype("int64"), y_test.reshape(-1).astype("int64")
    order = np.random.default_rng(seed).permutation(len(x_train))
    n_val = min(val_size, max(1, len(x_train) // 10))
    val, train = order[:n_val], order[n_val:]
    if limit is not None:
        train = train[:limit]
    x_fit = x_train[train].astype("float32") / 255.0

    def scale(x: np.ndarray) -> np.ndarray:
        return x.astype("float32") / 255.0

    x_val, x_held = scale(x_train[val]), scale(x_test)
    if standardize:
        mean, std = x_fit.mean(axis=0), x_fit.std(axis=0)
        std = np.where(std < 1e-6, 1.0, std)  # a constant pixel stays centred, not blown up
        x_fit, x_val, x_held = (x_fit - mean) / std, (x_val - mean) / std, (x_held - mean) / std
    return Dataset(
        x_fit, y_train[train], x_val, y_train[val], x_held, y_test, task="multiclass", num_classes=10
    )
