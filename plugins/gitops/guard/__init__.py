"""Guard: who may do what: per-environment policy as pure functions, and what Git cannot hold
(locks, waiting approvals claimed once, rolled-back records).

May import: state, versions, model, errors.
"""
