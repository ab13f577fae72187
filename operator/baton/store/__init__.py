"""I/O with the Kubernetes API: client, history ConfigMaps, status snapshots, offload.

kubernetes_asyncio is made lazy here, before any module of the package imports it: it would
otherwise import every API class and model (lazykube.py says why and how).
"""

from baton.store import lazykube

lazykube.install()
