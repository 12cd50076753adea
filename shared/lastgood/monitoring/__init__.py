"""Monitoring: health probes and report, freshness (backup age vs RPO, dataset age), the daily
summary and alert delivery.
"""
