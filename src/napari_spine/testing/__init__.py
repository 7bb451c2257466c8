"""Synthetic dataset trees for tests and benchmarks (public, Qt- and torch-free)."""
