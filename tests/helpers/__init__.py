"""Helpers shared by the end-to-end tests: test images, processes, registries, clients.

Nothing here imports the server package: these helpers drive real processes from the
outside, so they work the same against ocireg and against CNCF Distribution.
"""
