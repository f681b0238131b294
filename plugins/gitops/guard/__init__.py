"""Guard: who may do what: per-environment policy as pure functions, and what Git cannot hold
(locks, waiting approvals claimed once, rolled-back records); the verification settings and the
soak blocker of a promotion (``soak``).

May import: state, versions, model, errors.
"""
