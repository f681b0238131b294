"""Feedback: Flux's events (signatures, parsing, replays) and the changes waiting for them to settle;
the verification of a change Flux reports live (``verify``, ``verifier``).

May import: sources (transport: the Receiver call), ops, state, settings, guard, versions, model, errors.
"""
