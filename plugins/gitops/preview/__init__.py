"""Preview: what an upgrade brings, before it is made.

May import: sources, model, errors.
"""
