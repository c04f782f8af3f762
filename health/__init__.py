"""Operational health: the healthcheck, the data-quality checkpoint and the health report."""
