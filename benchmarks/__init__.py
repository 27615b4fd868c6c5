"""Benchmarks: this service against the tuners users would pick instead, one command per scenario."""
