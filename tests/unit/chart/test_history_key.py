"""The chart gives the operator a history key from a Secret of its own namespace."""

from __future__ import annotations

import base64

from chartkit import Helm, one
from test_chart import container


def test_the_operator_reads_a_generated_history_key_from_a_mounted_secret(helm: Helm) -> None:
    objects = helm.template()
    secret = one(objects, "Secret")
    assert secret["metadata"]["name"].endswith("-history-key")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert len(base64.b64decode(secret["data"]["key"])) >= 32
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "history-key")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    mount = next(m for m in container(objects)["volumeMounts"] if m["name"] == "history-key")
    assert mount["readOnly"] is True
    assert f"--history-key-file={mount['mountPath']}/key" in container(objects)["args"]
