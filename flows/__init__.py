"""Prefect flows: thin recipes that compose the tasks in tasks/."""
