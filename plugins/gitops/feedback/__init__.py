"""Feedback: Flux's events (signatures, parsing, replays) and the changes waiting for them to settle.

May import: sources (transport: the Receiver call), ops, state, settings, versions, model, errors.
"""
