"""The command-line tools that work on a data directory: seed, export, import, gc, verify, hosts.

Dependency direction: the tools depend on `registry.compose` for their store and mirror and reach
`mirror` only through it; nothing under `mirror` or `registry.storage` imports a tool."""
