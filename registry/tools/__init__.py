"""The command-line tools that work on a data directory: seed, export, import, gc, verify, hosts."""
