"""I/O with the Kubernetes API: client, history ConfigMaps, status snapshots, offload."""
