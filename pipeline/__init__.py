"""Orchestration of the nightly pipeline: configuration, warehouse access, dbt, steps."""
