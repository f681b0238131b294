"""Feedback: Flux's events (signatures, parsing, replays) and the changes waiting for them to settle.

May import: ops, state, settings, versions, model, errors.
"""
