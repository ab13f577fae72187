"""Executors perform activities: HTTP calls, Kubernetes Jobs, tasks on worker pools."""
