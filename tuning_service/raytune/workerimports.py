"""What a Keras trial's worker imports, loaded ahead by the worker fork server or by warm workers.

The worker fork server (`workerfork`) imports all of it but Ray's own modules
(`import_all_but_ray`) before it forks the embedded Ray's workers. Where workers are not forked:

Ray imports this module in each Python worker it starts for an embedded sweep whose workers
start warm (``preload_python_modules``, `warmworkers`), before the worker takes any task:
TensorFlow and Keras (without Keras' scikit-learn and Matplotlib integrations), Ray Tune, and
the trainable with the training code. None of it starts TensorFlow's runtime, so the trial
still sets its thread pools and devices first (`kerasstate.configure_tensorflow`).

Only the workers Ray starts ahead, before any job has asked for one (Ray starts them with the
nil job id, ``RAY_JOB_ID`` all f's), import here. A worker Ray starts later for a trial's actor
(a lost worker's replacement) imports as before, in the trial's first step: Tune drops an actor
still starting when another actor frees up, and one held here for seconds by the import would
be dropped again and again while trials are shorter than the import.
"""

import importlib
import os

# The libraries Ray and Ray Tune load, besides TensorFlow's and their own: what a process that
# forks workers can import ahead without Ray itself (`workerfork`).
RAY_DEPENDENCIES = (
    "google.protobuf",
    "pyarrow",
    "pyarrow.fs",
    "fsspec",
    "pydantic",
    "rich",
    "jsonschema",
    "msgpack",
    "yaml",
    "filelock",
    "tqdm",
)


def import_all_but_ray() -> None:
    """What a trial's worker imports, but for Ray's and Ray Tune's own modules.

    Ray reads its settings, and a worker the job it serves, from the environment as it loads
    (into a singleton of its C++ core), so a process that forks workers for several jobs must
    not have loaded it.
    """
    from tuning_service.core.leanimport import lean_import
    from tuning_service.raytune.lazydata import defer_pandas, defer_ray_data, defer_tensorflow_lite

    defer_tensorflow_lite()  # a trial converts no model: TF Lite loads only if one is converted
    lean_import("tensorflow")  # without pandas too, which Keras would load for DataFrames
    import tuning_service.training.sharedgraph.model  # noqa: F401 - imported by the first step otherwise

    # A worker's Tune, imported after (by the Ray stage, the fork or the warm worker), reads
    # neither Ray Data nor pandas: they load only if something reads one of their names.
    defer_ray_data()
    defer_pandas()

    for name in RAY_DEPENDENCIES:
        try:
            importlib.import_module(name)
        except ImportError:  # a Ray that does without it
            pass


def import_all() -> None:
    """Everything a trial's first step would import (`python -m benchmarks.startup` times it alone)."""
    import_all_but_ray()
    import tuning_service.raytune.trainable  # noqa: F401 - Ray Tune, Keras and the training code


if os.environ.get("RAY_JOB_ID", "x").strip("f") == "":
    import_all()
