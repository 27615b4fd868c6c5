"""Everything that imports Keras or TensorFlow: the model vocabulary, a trial's model and input,
the shared traced graph, per-process TensorFlow state, model costs, image data read with Keras'
loader, and the learning-rate range test.

This ``__init__`` imports nothing: a module of the package loads only what it needs. Jobs
import the public names through `tuning_service.models` and `tuning_service.imagedata`.
"""
