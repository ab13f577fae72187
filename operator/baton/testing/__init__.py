"""Offline, time-skipping runs of workflows with mocked activities (`baton test`)."""
