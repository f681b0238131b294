"""Preview: what a chart upgrade brings to one environment, before it lands: a chart archive read
safely into plain data (charts.py), Artifact Hub's change notes and images (notes.py), values as
key paths (keys.py), the new schema against the environment's values (schema.py), and the one
pure comparison (compare.py). Nothing here downloads or reads Git.

May import: versions, safeyaml, errors.
"""
