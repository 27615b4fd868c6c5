"""Layer base: plain values and files (settings, search space, job interface, results, database URLs)."""
