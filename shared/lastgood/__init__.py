"""lastgood: keep a product's data served and recoverable.

The shared layer's package. Importing it performs no I/O; every client,
connection and secret is created lazily on first use.
"""

__version__ = "0.1.0"
