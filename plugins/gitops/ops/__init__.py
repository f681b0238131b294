"""Ops: what operators watch: Prometheus metrics (one registry per core) and readiness.

May import: workspace, errors.
"""
