"""Development-only local services for lastgood (never deployed; see `python -m devstack --help`)."""
