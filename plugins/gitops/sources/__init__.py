"""Sources: where chart versions and image tags come from: OCI registries, classic Helm repository
indexes, bearer tokens per repository scope, and the one HTTP transport every request goes through;
Prometheus's query API through the same transport (verification's checks).

May import: ops, settings, versions, model, errors.
"""
