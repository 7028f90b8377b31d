"""Entry points on top of every layer: the ``simmim`` command line, the demo, the HTTP API."""
