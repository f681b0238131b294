"""Ferry's GitOps core: reads and changes Helm chart versions in Flux repositories.

A plain Python package with no chat import: the Errbot plugins are thin adapters over it.
"""
