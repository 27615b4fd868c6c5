"""Image jobs through the real loaders, offline: tiny files in Keras' cache layout."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from jobs import cifar10, fashion_mnist, mnist
from tuning_service.cli import main
from tuning_service.core.errors import InputError
from tuning_service.training import imagedata


def test_mnist_reads_keras_npz(tiny_files, tmp_path, offline):
    tiny_files.mnist(tmp_path)
    data = mnist.JOB.load_data(data_dir=tmp_path)
    assert data.x_train.shape[1:] == (28, 28) and data.x_train.dtype == np.float32
    assert data.sizes() == {
        "train": tiny_files.images - tiny_files.images // 10,
        "validation": tiny_files.images // 10,
        "test": tiny_files.images // 2,
    }
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    assert data.task == "multiclass" and data.num_classes == 10


def test_fashion_mnist_reads_the_idx_gz_files(tiny_files, tmp_path, offline):
    tiny_files.fashion(tmp_path)
    data = fashion_mnist.JOB.load_data(data_dir=tmp_path, limit=20)
    assert data.x_train.shape == (20, 28, 28) and len(data.x_test) == tiny_files.images // 2
    assert set(np.unique(data.y_test)) == set(range(10))


@pytest.mark.parametrize("layout", ["cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"])
def test_cifar10_reads_both_keras_layouts_and_standardizes_on_train(tiny_files, tmp_path, offline, layout):
    tiny_files.cifar10(tmp_path, layout)
    data = cifar10.JOB.load_data(data_dir=tmp_path)
    assert data.x_train.shape[1:] == (32, 32, 3) and data.sizes()["test"] == 12
    assert len(data.x_train) + len(data.x_val) == 60
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0, atol=1e-4)


def test_the_default_cache_is_keras_home(tiny_files, tmp_path, monkeypatch, offline):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    tiny_files.mnist(tmp_path / "keras" / "datasets")
    assert mnist.JOB.load_data().num_classes == 10


def test_a_missing_file_names_it_and_where_to_put_it(tmp_path, offline):
    with pytest.raises(InputError) as info:
        fashion_mnist.JOB.load_data(data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "fashion-mnist" / "train-labels-idx1-ubyte.gz") in message
    assert "TUNING_SERVICE_OFFLINE is set" in message and "--data-dir" in message
    assert not (tmp_path / "fashion-mnist").exists()


def test_a_failed_download_is_one_clear_error_within_seconds(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNING_SERVICE_OFFLINE", raising=False)
    # Port 9 on loopback refuses at once: the real download path, with no network involved.
    source = replace(imagedata.SOURCES["mnist"], origin="http://127.0.0.1:9/")
    monkeypatch.setitem(imagedata.SOURCES, "mnist", source)
    fashion = replace(imagedata.SOURCES["fashion_mnist"], origin="http://127.0.0.1:9/")
    monkeypatch.setitem(imagedata.SOURCES, "fashion_mnist", fashion)
    started = time.monotonic()
    with pytest.raises(InputError, match=r"mnist\.npz' is missing \(downloading it failed: .*refused"):
        mnist.JOB.load_data(data_dir=tmp_path)
    assert time.monotonic() - started < 5
    assert not list(tmp_path.iterdir())  # no partial file left behind
    with pytest.raises(InputError, match="downloading it failed"):
        fashion_mnist.JOB.load_data(data_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nor an empty folder


def test_a_hanging_server_is_given_up_on(tmp_path, monkeypatch):
    import socket

    monkeypatch.delenv("TUNING_SERVICE_OFFLINE", raising=False)
    monkeypatch.setattr(imagedata, "CONNECT_TIMEOUT_S", 0.5)
    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        source = replace(imagedata.SOURCES["mnist"], origin=f"http://127.0.0.1:{port}/")
        monkeypatch.setitem(imagedata.SOURCES, "mnist", source)
        started = time.monotonic()
        with pytest.raises(InputError, match="downloading it failed"):
            mnist.JOB.load_data(data_dir=tmp_path)
    assert time.monotonic() - started < 5


def test_a_corrupt_file_is_an_input_error(tmp_path, offline):
    (tmp_path / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="mnist: cannot read the files in"):
        mnist.JOB.load_data(data_dir=tmp_path)


def test_cli_run_with_a_missing_dataset_exits_2_and_writes_nothing(tmp_path, capsys, offline):
    storage = tmp_path / "results"
    code = main(["run", "cifar10", "--data-dir", str(tmp_path / "cache"), "--storage", str(storage)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "error: cifar10: " in err and "data_batch_1' is missing" in err
    assert not storage.exists()


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on loopback serving ``tmp_path / 'www'``: a download that works, offline."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.mark.integration  # serves HTTP on loopback
def test_missing_files_are_downloaded_into_the_keras_layout(tiny_files, tmp_path, monkeypatch, local_server):
    import tarfile

    monkeypatch.delenv("TUNING_SERVICE_OFFLINE", raising=False)
    root, url = local_server
    tiny_files.mnist(root)
    batches = tiny_files.cifar10(tmp_path / "src", "cifar-10-batches-py")
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(batches, arcname="cifar-10-batches-py")
    monkeypatch.setitem(imagedata.SOURCES, "mnist", replace(imagedata.SOURCES["mnist"], origin=url))
    cifar = replace(imagedata.SOURCES["cifar10"], origin=url + "cifar-10-python.tar.gz")
    monkeypatch.setitem(imagedata.SOURCES, "cifar10", cifar)
    cache = tmp_path / "cache"
    assert mnist.JOB.load_data(data_dir=cache).num_classes == 10
    assert cifar10.JOB.load_data(data_dir=cache).x_train.shape[1:] == (32, 32, 3)
    assert (cache / "mnist.npz").is_file()
    assert (cache / "cifar-10-batches-py-target" / "cifar-10-batches-py" / "test_batch").is_file()
    assert not (cache / "cifar-10-python.tar.gz").exists()
