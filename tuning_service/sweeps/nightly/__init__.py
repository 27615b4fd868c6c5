"""Nightly sweeps: a schedule file of named sweeps, run when due, warm-started, never overlapping."""
