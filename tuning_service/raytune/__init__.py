"""Layer ray: Ray and Ray Tune (the trainable, its callbacks, searchers, schedulers, a sweep's recording)."""
