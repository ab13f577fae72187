"""The control plane fixtures every cluster test shares (see docs/testing.md), one plugin.

tests/conftest.py registers this module once (``pytest_plugins``), so tests/integration and
tests/browser share the same fixtures, and so one control plane per session: defined in a
folder's conftest and loaded again by another folder, a session fixture would be two fixtures,
and a full run would start two control planes.

- ``cluster`` (session): a local control plane started by ``hack/controlplane.sh up`` — real etcd,
  kube-apiserver, kube-controller-manager and kube-scheduler, with kwok's simulated nodes — built
  first when its binaries are not in the cache yet, started once per test session and always
  torn down at the end. It offers ``.kubeconfig`` (a path), ``.kubectl(*args)``, ``.apply(...)``,
  ``.helm(*args)``, ``.api_client`` (for the ``kubernetes`` client's APIs) and ``.env``.
- ``namespace`` (function): a fresh namespace for one test, deleted after it.
- ``crds`` (session): the cluster with crds/ applied and established.
- ``recorder`` (function): a real HTTP service on 127.0.0.1 recording calls by idempotency key.
- ``operator`` (function): ``baton operator`` as a subprocess watching only the test's namespace;
  ``.kill()`` is ``kill -9``, ``.start()`` starts it again, ``.metrics()`` scrapes its /metrics.
  Its log is printed when a test fails.
- ``runs`` (function): apply Workflows and WorkflowRuns in the namespace and wait for phases.

``BATON_TEST_KUBECONFIG=<path>`` runs them against a cluster that is already
running (``make dev``'s, say) instead of starting one; that cluster is left running.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from kubernetes import client, config
from operator_process import OperatorProcess
from recorder import Recorder
from scrape import free_port

from baton.api.attempts import attempt_name
from baton.api.run import RunPhase

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
CONTROLPLANE = REPO / "hack" / "controlplane.sh"
STALE_CLUSTER = re.compile(r"^pytest-(\d+)$")

Manifest = str | Mapping[str, Any] | Sequence[Mapping[str, Any]]


class KubectlError(RuntimeError):
    """A kubectl (or helm) command exited non-zero; the message carries its stderr."""

    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"stdout: {result.stdout.strip()}\nstderr: {result.stderr.strip()}"
        )
        self.result = result


@dataclass
class Cluster:
    """A running control plane, as the ``cluster`` fixture hands it to tests.

    Attributes:
        name: the kwokctl cluster name.
        kubeconfig: path of a kubeconfig with cluster-admin rights.
        bin_dir: where kubectl, helm, kwokctl and the control plane binaries are.
        api_client: a ``kubernetes.client.ApiClient`` for that kubeconfig; build typed clients
            from it: ``client.CoreV1Api(cluster.api_client)``.
    """

    name: str
    kubeconfig: Path
    bin_dir: Path
    api_client: client.ApiClient = field(repr=False)

    @property
    def env(self) -> dict[str, str]:
        """The environment of a process that should talk to this cluster (KUBECONFIG, PATH)."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def run(
        self, program: str, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run one of the cluster's tools (``kubectl``, ``helm``, ``kwokctl``) against it."""
        argv = [str(self.bin_dir / program), *args]
        result = subprocess.run(
            argv,
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError([program, *args], result)
        return result

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl <args>`` as a user would; raises KubectlError on failure unless
        ``check=False``. ``.stdout`` holds the output: ``cluster.kubectl("get", "pods",
        "-n", ns, "-o", "jsonpath={.items[*].metadata.name}").stdout``."""
        return self.run("kubectl", *args, input=input, check=check)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``helm <args>`` against the cluster."""
        return self.run("helm", *args, check=check)

    def apply(self, manifest: Manifest, namespace: str | None = None) -> str:
        """``kubectl apply`` a manifest: YAML text, one object or a list of objects."""
        if isinstance(manifest, str):
            text = manifest
        elif isinstance(manifest, Mapping):
            text = json.dumps(manifest)
        else:
            # JSON, not YAML: PyYAML writes keys such as `n` or `y` unquoted, and kubectl's
            # YAML 1.1 reader turns those into booleans (`false`), silently.
            text = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifest)})
        args = ["apply", "-f", "-"] + (["--namespace", namespace] if namespace else [])
        return self.kubectl(*args, input=text).stdout


def _controlplane(
    command: str, name: str, request: pytest.FixtureRequest | None = None, check: bool = True
) -> str:
    """Run ``hack/controlplane.sh <command>`` for cluster ``name`` and return its stdout. Its
    progress (stderr) is shown live, past pytest's capture, when ``request`` is given."""
    env = {**os.environ, "BATON_CLUSTER": name}
    argv = [str(CONTROLPLANE), command]
    if request is None:
        result = subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True, check=False)
    else:
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            result = subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if check and result.returncode != 0:
        pytest.fail(
            f"hack/controlplane.sh {command} failed (exit {result.returncode}); "
            "its output is above",
            pytrace=False,
        )
    return result.stdout


def _exports(text: str) -> dict[str, str]:
    """The values of the ``export NAME=value`` lines hack/controlplane.sh prints."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"export (\w+)=(.*)$", line)
        if match:
            found[match[1]] = shlex.split(match[2])[0]
    return found


def _reap_stale_clusters(request: pytest.FixtureRequest) -> None:
    """Remove the clusters of test sessions that died without tearing theirs down."""
    for name in _controlplane("list", "unused").split():
        match = STALE_CLUSTER.match(name)
        if match and not _alive(int(match[1])):
            _controlplane("down", name, request, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A real local Kubernetes control plane for the whole test session (see module doc)."""
    external = os.environ.get("BATON_TEST_KUBECONFIG")
    if external:
        _controlplane("build", "unused", request)  # for kubectl and helm; at once when built
        bin_dir = Path(_controlplane("bin-dir", "unused").strip())
        api = config.new_client_from_config(config_file=external)
        yield Cluster("external", Path(external), bin_dir, api)
        api.close()
        return

    _reap_stale_clusters(request)
    name = f"pytest-{os.getpid()}"
    torn_down = False

    def down(live: pytest.FixtureRequest | None = None) -> None:
        nonlocal torn_down
        if not torn_down:
            torn_down = True
            _controlplane("down", name, live, check=False)

    # A session stopped by SIGTERM unwinds through the teardown below like one stopped by
    # Ctrl-C; atexit covers an interpreter exit that skips fixture teardown.
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    atexit.register(down)
    api: client.ApiClient | None = None
    try:
        exports = _exports(_controlplane("up", name, request))
        kubeconfig = Path(exports["KUBECONFIG"])
        bin_dir = Path(exports["PATH"].split(os.pathsep)[0])
        api = config.new_client_from_config(config_file=str(kubeconfig))
        yield Cluster(name, kubeconfig, bin_dir, api)
    finally:
        if api is not None:
            api.close()
        down(request)
        atexit.unregister(down)
        signal.signal(signal.SIGTERM, previous)


def _namespace_name(test_name: str) -> str:
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
    return f"{stem[:50].rstrip('-')}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, ready for pods (its ``default`` service account
    exists), deleted after the test."""
    core = client.CoreV1Api(cluster.api_client)
    name = _namespace_name(request.node.name)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    deadline = time.monotonic() + 30
    while not core.list_namespaced_service_account(
        name, field_selector="metadata.name=default"
    ).items:
        if time.monotonic() > deadline:
            pytest.fail(f"namespace {name} got no default service account in 30s", pytrace=False)
        time.sleep(0.1)
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> Cluster:
    """The cluster with crds/ applied as the README tells users to, and established."""
    cluster.kubectl("apply", "--server-side", "-f", str(CRDS))
    cluster.kubectl("wait", "--for", "condition=Established", "--timeout", "60s", "-f", str(CRDS))
    return cluster


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A real HTTP service for HTTP activities (tests/integration/recorder.py)."""
    service = Recorder().start()
    yield service
    service.stop()


HISTORY_KEY = "integration-tests-history-key-of-48-characters-"
"""The key test operators seal run histories with, as the chart's generated key does."""


@contextmanager
def started_operator(
    crds: Cluster,
    namespace: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    *args: str,
    **kwargs: Any,
) -> Iterator[OperatorProcess]:
    """`baton operator --standalone --namespace <namespace>` with a history key, serving
    /metrics on a free port, stopped afterwards; its log is printed when the test failed.
    `args` are more flags; `kwargs` go to OperatorProcess (`verbose=False` for the INFO logs
    of a deployment)."""
    key_file = tmp_path / "history-key"
    key_file.write_text(HISTORY_KEY)
    process = OperatorProcess(
        {**crds.env, "BATON_HISTORY_KEY_FILE": str(key_file)},
        tmp_path / "operator.log",
        "--namespace",
        namespace,
        *args,
        metrics_port=free_port(),
        **kwargs,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(f"--- operator log (tail) ---\n{process.log_tail(300)}")


@pytest.fixture
def operator(
    crds: Cluster, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[OperatorProcess]:
    """The operator of the test's namespace (`started_operator`); `.metrics()` scrapes it."""
    with started_operator(crds, namespace, tmp_path, request) as process:
        yield process


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


FINAL_PHASES = frozenset(phase.value for phase in RunPhase if phase.finished)


@dataclass
class Runs:
    """Workflows and runs in one namespace, driven through the API as a user would."""

    cluster: Cluster
    namespace: str

    @property
    def api(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.cluster.api_client)

    def apply(self, manifest: Manifest) -> None:
        """`kubectl apply` the manifest (Workflows, WorkflowRuns, anything) in the namespace."""
        self.cluster.apply(manifest, namespace=self.namespace)

    def listed(self, page: int = 250, retries: int = 5) -> list[dict[str, Any]]:
        """Every WorkflowRun of the namespace, read in pages; a page the API server times out on
        (504, 503: a loaded machine listing a thousand runs) is asked for again."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            for attempt in range(retries):
                try:
                    listing = self.api.list_namespaced_custom_object(
                        "baton.dev", "v1alpha1", self.namespace, "workflowruns",
                        limit=page, _continue=token,
                    )  # fmt: skip
                    break
                except client.ApiException as exc:
                    if exc.status not in (429, 500, 503, 504) or attempt == retries - 1:
                        raise
                    time.sleep(1 + attempt)
            items.extend(listing["items"])
            token = (listing.get("metadata") or {}).get("continue") or None
            if token is None:
                return items

    def get(self, name: str) -> dict[str, Any]:
        """The WorkflowRun object."""
        run: dict[str, Any] = self.api.get_namespaced_custom_object(
            "baton.dev", "v1alpha1", self.namespace, "workflowruns", name
        )
        return run

    def owned_name(self, run: str, key: str, attempt: int = 1) -> str:
        """The name of the Job or child run of run `run`'s step `key` at `attempt`: the
        operator's rule (baton.api.attempts), from the run's uid."""
        return attempt_name(run, self.get(run)["metadata"]["uid"], key, attempt)

    def status(self, name: str) -> dict[str, Any]:
        """The run's status (empty before the operator wrote one)."""
        status: dict[str, Any] = self.get(name).get("status") or {}
        return status

    def wait(
        self,
        name: str,
        phases: frozenset[str] | set[str] = FINAL_PHASES,
        timeout: float = 60.0,
        *,
        step: str | None = None,
        step_phase: str | None = None,
    ) -> dict[str, Any]:
        """Wait until the run's phase is one of `phases` (or `step` reached `step_phase`);
        returns the status."""
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = self.status(name)
            if step is not None:
                if (status.get("steps") or {}).get(step, {}).get("phase") == step_phase:
                    return status
            elif status.get("phase") in phases:
                return status
            time.sleep(0.1)
        wanted = f"step {step} {step_phase}" if step else "/".join(sorted(phases))
        raise AssertionError(
            f"run {name} not {wanted} within {timeout}s; status: {json.dumps(status)[:2000]}"
        )


@pytest.fixture
def runs(crds: Cluster, namespace: str) -> Runs:
    """Apply and watch runs in the test's namespace."""
    return Runs(crds, namespace)
