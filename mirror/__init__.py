"""The pull-through mirror: repositories of upstream registries, cached in the local store."""
