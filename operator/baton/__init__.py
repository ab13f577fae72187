"""Baton: durable workflows as Kubernetes resources."""
