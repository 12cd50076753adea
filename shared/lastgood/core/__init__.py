"""Foundation: settings, config, errors, observability, AWS clients, redaction, times, event models.

Imports nothing else of lastgood; everything else may import it.
"""
