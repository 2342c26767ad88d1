"""Celery tasks (thin: ids in, a service call, retries and time limits) and the worker's signal handlers."""
