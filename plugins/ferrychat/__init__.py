"""What Ferry's Errbot plugins share: grammar, reply rendering and error handling.

No YAML, Git or HTTP here: those belong to the ``gitops`` core.
"""
