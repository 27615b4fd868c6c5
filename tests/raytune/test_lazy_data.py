"""Ray Tune's import without Ray Data, and without pandas, and TensorFlow's without TF Lite
(`raytune.lazydata`), each case in a new interpreter: what a process has imported is the point,
and the test process has imported them already."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration  # imports Ray and Tune (seconds), though no Ray starts


def _run(code: str, helpers: str = "") -> dict:
    prelude = (
        "import json, sys\n"
        "from tuning_service.raytune.lazydata import defer_pandas, defer_ray_data, loaded, ray_data_loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(helpers) + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tune_loads_without_ray_datas_code_which_runs_once_a_name_is_read():
    seen = _run("""
        defer_ray_data()
        import ray.tune
        import ray.data  # bound, as Ray AIR binds it
        from ray.tune.execution import experiment_state
        from ray.tune.impl import out_of_band_serialize_dataset as pickler
        before = {
            "loaded": ray_data_loaded(), "kind": type(ray.data).__name__,
            "modules": sorted(m for m in sys.modules if m.startswith("ray.data.")),
            "annotation": pickler._reduce.__annotations__["ds"],
            "context": type(experiment_state.out_of_band_serialize_dataset()).__name__,
            "pandas": loaded("pandas"),
        }
        dataset = ray.data.Dataset  # a name read: Ray Data's own code runs
        from ray.data import Dataset
        from ray.data.dataset import Dataset as Defined
        after = {
            "loaded": ray_data_loaded(), "kind": type(ray.data).__name__, "same": Dataset is dataset is Defined,
            "loader": type(ray.data.__spec__.loader).__name__, "bound": sys.modules["ray.data"] is ray.data,
            "context": type(experiment_state.out_of_band_serialize_dataset()).__name__,
        }
        print(json.dumps({"before": before, "after": after}))
    """)
    before, after = seen["before"], seen["after"]
    assert before["loaded"] is False and before["kind"] == "DeferredModule"
    assert before["modules"] == []  # no submodule of Ray Data ran either
    assert before["annotation"] == "ray.data.Dataset"  # kept as text
    assert before["context"] == "nullcontext"  # no Dataset to pickle, no pickler registered
    assert before["pandas"] is True  # deferred alone: pandas loads with Tune, as before
    assert after == {
        "loaded": True, "kind": "module", "same": True, "loader": "SourceFileLoader", "bound": True,
        "context": "_GeneratorContextManager",  # Ray's own, now that a Dataset may exist
    }  # fmt: skip


def test_a_submodule_imported_first_runs_ray_datas_package_first_once():
    seen = _run("""
        defer_ray_data()
        import ray.tune
        import ray.data
        from ray.data.context import DataContext  # Ray Data's package imports this one itself
        context = sys.modules["ray.data.context"]
        print(json.dumps({
            "loaded": ray_data_loaded(),
            # Run once: the package's own DataContext (bound as its code ran) is this one.
            "once": DataContext is ray.data.DataContext is context.DataContext,
            "bound": ray.data.context is context,
            "spec": context.__spec__.name, "origin": context.__spec__.origin == context.__file__,
        }))
    """)
    assert seen == {"loaded": True, "once": True, "bound": True, "spec": "ray.data.context", "origin": True}


def test_threads_reading_ray_data_at_once_get_one_loaded_module():
    seen = _run("""
        import threading
        defer_ray_data()
        import ray.tune
        import ray.data
        found, start = [], threading.Barrier(4)
        def read():
            start.wait()
            found.append(ray.data.Dataset)
        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(json.dumps({"found": len(found), "one": len(set(map(id, found))), "loaded": ray_data_loaded()}))
    """)
    assert seen == {"found": 4, "one": 1, "loaded": True}


def test_without_the_finder_tune_loads_ray_data_and_pandas_as_before():
    seen = _run("""
        import ray.tune
        print(json.dumps({"loaded": ray_data_loaded(), "pandas": loaded("pandas")}))
    """)
    assert seen == {"loaded": True, "pandas": True}  # what the deferral spares: Tune alone loads both


def test_a_workers_tune_loads_without_pandas_whose_names_load_it_where_they_are_read():
    seen = _run("""
        import types
        defer_ray_data()
        defer_pandas()
        import ray.tune
        import pandas  # bound, as Tune binds it
        from ray.tune.analysis import experiment_analysis
        from ray.tune.result_grid import ResultGrid
        before = {
            "loaded": loaded("pandas"), "kind": type(pandas).__name__,
            "modules": sorted(m for m in sys.modules if m.startswith("pandas.")),
            "annotation": ResultGrid.get_dataframe.__annotations__["return"],
            "bound": "DataFrame" in vars(experiment_analysis),
        }
        # Tune's table of a trial without results, through its rewritten read of DataFrame.
        no_results = types.SimpleNamespace(last_result=None)
        table = experiment_analysis.ExperimentAnalysis._fetch_trial_dataframe(None, no_results)
        after = {
            "loaded": loaded("pandas"), "kind": type(pandas).__name__,
            "table": type(table) is pandas.DataFrame and table.empty,
        }
        print(json.dumps({"before": before, "after": after}))
    """)
    assert seen["before"] == {
        "loaded": False, "kind": "DeferredModule", "modules": [],
        "annotation": "pd.DataFrame",  # kept as text
        "bound": False,  # ``from pandas import DataFrame`` no longer ran as the module loaded
    }  # fmt: skip
    assert seen["after"] == {"loaded": True, "kind": "module", "table": True}


def test_reading_a_deferred_librarys_version_loads_it():
    seen = _run("""
        import importlib.metadata
        defer_pandas()
        import pandas
        kind = type(pandas).__name__
        version = pandas.__version__
        print(json.dumps({
            "kind": kind, "loaded": loaded("pandas"), "same": version == importlib.metadata.version("pandas"),
        }))
    """)
    assert seen == {"kind": "DeferredModule", "loaded": True, "same": True}


def test_a_failed_load_leaves_no_module_behind_and_the_next_import_loads_it():
    seen = _run("""
        defer_ray_data()
        import ray.tune
        import ray.data
        deferred = ray.data
        sys.modules["ray.data._internal.compute"] = None  # Ray Data's own import of it now fails
        try:
            ray.data.Dataset
        except ImportError as exc:
            failed = type(exc).__name__
        else:
            failed = None
        gone = "ray.data" not in sys.modules
        del sys.modules["ray.data._internal.compute"]
        import ray.data
        print(json.dumps({
            "failed": failed, "gone": gone, "new": ray.data is not deferred,
            "works": ray.data.Dataset.__name__, "loaded": ray_data_loaded(),
        }))
    """)
    assert seen == {
        "failed": "ModuleNotFoundError",
        "gone": True,
        "new": True,
        "works": "Dataset",
        "loaded": True,
    }


# TF Lite's API modules as a process sees them: what ``sys.modules`` holds and what TensorFlow's
# names are bound to (a plain import leaves a wrapper for the v1 API's).
_TF_LITE_SEEN = """
    lite = ("tensorflow._api.v2.lite", "tensorflow._api.v2.compat.v1.lite", "tensorflow._api.v2.compat.v2.lite")
    def tf_lite_seen():
        bound = (tf.lite, tf.compat.v1.lite, tf.compat.v2.lite)
        return {
            "kinds": [type(sys.modules[m]).__name__ for m in lite],
            "bound": [b is sys.modules[m] for b, m in zip(bound, lite)],
            "names": [sorted(n for n in dir(b) if not n.startswith("_")) for b in bound],
        }
"""


def test_a_workers_tensorflow_loads_without_tf_lite_whose_names_load_it():
    seen = _run(
        """
        from tuning_service.raytune.workerimports import import_all_but_ray
        from tuning_service.training.kerasstate import clear_session
        import_all_but_ray()
        import tensorflow as tf
        clear_session(free_memory=False)  # as a worker between two Keras trials: reads tf.compat.v1
        code = lambda: sorted(m for m in sys.modules if m.startswith("tensorflow.lite"))
        before = {"kinds": [type(sys.modules[m]).__name__ for m in lite], "code": code(), "loaded": loaded(lite[0])}
        converter = tf.lite.TFLiteConverter  # a name read: TF Lite's API runs
        after = {
            "code": bool(code()), "converter": converter.__module__,
            "same": tf.compat.v2.lite.TFLiteConverter is converter,
            "v1": tf.compat.v1.lite.TFLiteConverter.__module__,
            "interpreter": tf.lite.Interpreter.__name__,  # tf.lite is still the API, not the package
        }
        print(json.dumps({"before": before, "after": after, "seen": tf_lite_seen()}))
    """,
        _TF_LITE_SEEN,
    )
    before, after = seen["before"], seen["after"]
    assert before == {"kinds": ["DeferredModule"] * 3, "code": [], "loaded": False}
    assert after["code"] and after["same"] and after["interpreter"] == "Interpreter"
    assert after["converter"].startswith("tensorflow.lite.python") and after["v1"].startswith(
        "tensorflow.lite.python"
    )
    # Once read, TF Lite's API is what a plain import of TensorFlow gives.
    plain = _run(
        """
        from tuning_service.core.leanimport import lean_import
        tf = lean_import("tensorflow")
        print(json.dumps({"code": any(m.startswith("tensorflow.lite.python") for m in sys.modules), "seen": tf_lite_seen()}))
    """,
        _TF_LITE_SEEN,
    )
    # If a TensorFlow upgrade stops loading TF Lite with its API, the deferral does nothing.
    assert plain["code"] is True
    assert seen["seen"] == plain["seen"]
