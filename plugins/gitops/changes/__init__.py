"""Changes: planning a deploy, promotion or rollback, the one-line edit, writing and pushing it,
the inventory of pins per commit and how it is carried across commits, commit trailers.

May import: flux, sources, guard, ops, workspace, settings, versions, model, errors.
"""
