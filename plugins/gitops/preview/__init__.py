"""Preview: what an upgrade brings to one environment, before it lands: a chart archive read
safely into plain data (charts.py), Artifact Hub's change notes and images (notes.py), values as
key paths (keys.py), the new schema against the environment's values (schema.py), the one pure
comparison of two charts (compare.py), and an image tag upgrade's labels and compare link
(images.py). Nothing here downloads or reads Git.

May import: sources (plain data only), versions, safeyaml, errors.
"""
