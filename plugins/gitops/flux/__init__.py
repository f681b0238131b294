"""Flux: how Flux and kustomize build an environment from Git: Kustomizations followed, kustomize
builds, patches, postBuild substitution, manifests and values, chart sources, image tags,
discovery of every pin, and pins shared between apps.

May import: sources, ops, settings, versions, model, errors.
"""
