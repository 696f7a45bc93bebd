"""Prefect tasks: the steps of a grade, each small and safe to retry."""
