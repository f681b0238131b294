"""State: what Git cannot hold, in one SQLite file the process owns (locks, changes waiting for
approval, rolled-back records, Flux waits, live states and replay windows), and the import of
what older versions kept in Errbot's shelf.

May import: model, errors.
"""
