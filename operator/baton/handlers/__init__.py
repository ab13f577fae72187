"""kopf wiring: watch resources, feed events to the engine, persist, run commands."""
