"""A real Kubernetes API server for tests: etcd and kube-apiserver on 127.0.0.1, as processes.

`RealKube(assets, state_dir).start()` starts etcd on free ports and kube-apiserver in front of it
(TLS from a throwaway CA, RBAC, anonymous requests refused, a static admin token in
`system:masters`), about 3.5 s to ready. No controllers run: nothing reconciles, nothing but what a
test writes creates Events. The binaries come from `herald_dev.kubeassets`.

What tests do with it: write Events through the admin client (`admin()`), give the collector the
least-privilege identity the Helm chart gives it (`collector_kubeconfig`: a token of the
collector's ServiceAccount as `helm template` renders it from `deploy/helm/herald`, bound by the
rendered ClusterRole, and by the Role on Leases in the release namespace), and break it the ways a real
cluster breaks: `restart_apiserver` (TERM or KILL), `compact` (etcd compaction, so old
resourceVersions expire), `wipe_etcd` (etcd restarted empty behind the same URL, as after a restore).

Server options that change what the collector sees (facts in shared/reference/real-kubernetes.md):
- `watch_cache_events`: Events are kept out of the watch cache by default (`--watch-cache-sizes`
  has events at 0): a watch of Events then reads etcd directly and carries no bookmarks. With it on
  (`events#1000`), bookmarks come (the first after about 2 minutes), and a restart means a 410
  on the next watch if etcd's revision moved meanwhile (a SIGTERM'd server's lease removal does).
- `event_ttl`: how long Events live (`--event-ttl`, one hour by default); each expiry is a DELETED.
- `apiserver_args`: any other flag.
"""

from __future__ import annotations

import base64
import json
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from herald_dev.helm import component, default_objects, the_one
from herald_dev.infra import free_port
from herald_dev.kubeassets import ensure_assets

ADMIN_TOKEN = "herald-test-admin-token"  # noqa: S105 - a throwaway server on 127.0.0.1
COLLECTOR_STATIC_TOKEN = "herald-test-collector-token"  # noqa: S105 - the same
_RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
_COMPACTION_KEY = base64.b64encode(b"herald-test/compaction").decode()
"""Written before a compaction; outside `/registry`, so the API server never sees it."""


class RealKubeError(RuntimeError):
    pass


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RealKubeError(f"openssl {' '.join(args)}: {done.stderr.strip()}")


def make_pki(directory: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1/localhost signed by it, and the service-account
    signing key pair, as PEM files in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key",
             "-out", "ca.crt", "-subj", "/CN=herald-test-ca", cwd=directory)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=kube-apiserver", cwd=directory)  # fmt: skip
    (directory / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
    )
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt",
             cwd=directory)  # fmt: skip
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)


@dataclass
class _Process:
    args: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, *, kill: bool = False, timeout_s: float = 20) -> bool:
        """SIGTERM (or SIGKILL), then SIGKILL if it has not exited within `timeout_s`; False if
        it had to be killed after a SIGTERM."""
        if self.popen is None or self.popen.poll() is not None:
            return True
        self.popen.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            return False
        return True

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class RealKube:
    assets: Path
    """A directory holding `etcd` and `kube-apiserver` (`herald_dev.kubeassets.ensure_assets`)."""
    state_dir: Path
    watch_cache: bool = True
    """`--watch-cache`: False makes every resource read etcd directly."""
    watch_cache_events: bool = False
    event_ttl: str | None = None
    """`--event-ttl`, e.g. "20s"; None keeps the server's default (1h)."""
    apiserver_args: tuple[str, ...] = ()
    """More kube-apiserver flags, e.g. `("--shutdown-watch-termination-grace-period=5s",)`."""
    start_timeout_s: float = 60
    etcd_client_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)
    _etcd: _Process | None = None
    _apiserver: _Process | None = None
    _etcd_generation: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client_port}"

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    def start(self) -> RealKube:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        make_pki(self.pki)
        namespace, name = _collector_account()
        (self.state_dir / "tokens.csv").write_text(
            f'{ADMIN_TOKEN},herald-test-admin,1,"system:masters"\n'
            f"{COLLECTOR_STATIC_TOKEN},system:serviceaccount:{namespace}:{name},2,"
            f'"system:serviceaccounts,system:serviceaccounts:{namespace},system:authenticated"\n'
        )
        self._start_etcd()
        self._start_apiserver()
        self._apply_collector_rbac()
        return self

    def stop(self) -> None:
        if self._apiserver is not None:
            self._apiserver.stop()
        if self._etcd is not None:
            self._etcd.stop()

    # -- etcd ---------------------------------------------------------------------------------

    def _start_etcd(self) -> None:
        data_dir = self.state_dir / f"etcd-data-{self._etcd_generation}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._etcd = _Process(
            [
                str(self.assets / "etcd"),
                "--name=herald-test",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=herald-test={peer}",
                "--listen-metrics-urls=",
                "--log-level=warn",
                "--unsafe-no-fsync",  # test data: no fsync, much faster on a shared disk
            ],
            self.state_dir / "etcd.log",
        )
        self._etcd.start()
        self._wait(self._etcd_healthy, "etcd", self._etcd)

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def etcd_post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to etcd's JSON gateway (`/v3/...`); its answer."""
        request = urllib.request.Request(
            f"{self.etcd_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def revision(self) -> int:
        """etcd's current revision (what the API server shows as the newest resourceVersion)."""
        answer = self.etcd_post("/v3/kv/range", {"key": "AA==", "limit": 1})  # key "\0"
        return int(answer["header"]["revision"])

    def compact(self, revision: int | None = None) -> int:
        """Compact etcd up to `revision`: every resourceVersion before it is gone, so a watch or a
        list continue token from before it gets 410 Expired. Returns it.

        By default, everything seen so far expires: etcd keeps the compaction revision itself
        readable, so a key outside the API server's `/registry` prefix is written first to move
        the revision past the newest resourceVersion anyone can hold."""
        if revision is None:
            answer = self.etcd_post("/v3/kv/put", {"key": _COMPACTION_KEY, "value": "eA=="})
            revision = int(answer["header"]["revision"])
        self.etcd_post("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def wipe_etcd(self) -> None:
        """Restart etcd empty on the same ports (as after a wipe or a restore from an old backup),
        then restart the API server, as Kubernetes' restore procedure says to (without it, it
        goes on handing out etcd leases the new etcd never granted: every Event write fails with
        500 "requested lease not found"). The URL stays, resourceVersions start again from low
        numbers. The collector's RBAC is applied again (it was in the wiped data)."""
        if self._etcd is not None:
            self._etcd.stop()
        self._etcd_generation += 1
        self._start_etcd()
        self.restart_apiserver(kill=True)  # its state is moot: no need to wait for a clean stop
        self._apply_collector_rbac()

    # -- kube-apiserver -----------------------------------------------------------------------

    def _start_apiserver(self) -> None:
        args = [
            str(self.assets / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={self.pki / 'server.crt'}",
            f"--tls-private-key-file={self.pki / 'server.key'}",
            f"--client-ca-file={self.pki / 'ca.crt'}",
            f"--service-account-issuer={self.url}",
            f"--service-account-key-file={self.pki / 'sa.pub'}",
            f"--service-account-signing-key-file={self.pki / 'sa.key'}",
            f"--token-auth-file={self.state_dir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--anonymous-auth=false",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--endpoint-reconciler-type=none",
            "--advertise-address=127.0.0.1",
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
            f"--cert-dir={self.state_dir / 'certs'}",
        ]
        if not self.watch_cache:
            args.append("--watch-cache=false")
        if self.watch_cache_events:
            args.append("--watch-cache-sizes=events#1000")
        if self.event_ttl is not None:
            args.append(f"--event-ttl={self.event_ttl}")
        args.extend(self.apiserver_args)
        self._apiserver = _Process(args, self.state_dir / "kube-apiserver.log")
        self._apiserver.start()
        self._wait(self._ready, "kube-apiserver", self._apiserver)

    def restart_apiserver(self, *, kill: bool = False, term_timeout_s: float = 75) -> None:
        """Stop the API server (SIGTERM, or SIGKILL with `kill`) and start it again on the same
        port; returns once it is ready.

        After a SIGTERM, kube-apiserver stops listening at once but, with its default flags,
        keeps open watches open (and silent) until its shutdown timeout, 60 s, before it exits;
        `--shutdown-watch-termination-grace-period` (`apiserver_args`) makes it end them at once.
        A SIGTERM it has not obeyed within `term_timeout_s` is an error, not a quiet SIGKILL."""
        if self._apiserver is not None:
            stopped = self._apiserver.stop(kill=kill, timeout_s=term_timeout_s)
            if not stopped:
                raise RealKubeError(
                    f"kube-apiserver did not exit within {term_timeout_s:.0f}s of SIGTERM "
                    "(killed):\n" + self._apiserver.tail()
                )
        self._start_apiserver()

    def _ready(self) -> bool:
        request = urllib.request.Request(
            f"{self.url}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2, context=self._ssl()) as response:
                return bool(response.status == 200)
        except (OSError, ValueError):
            return False

    def _ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pki / "ca.crt"))

    def _wait(self, ready: Any, what: str, process: _Process | None) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            if process is not None and not process.alive:
                raise RealKubeError(f"{what} exited:\n{process.tail()}")
            time.sleep(0.1)
        tail = process.tail() if process is not None else ""
        raise RealKubeError(f"{what} not ready within {self.start_timeout_s:.0f}s:\n{tail}")

    # -- clients ------------------------------------------------------------------------------

    def kubeconfig(self, path: Path, *, token: str, user: str) -> Path:
        """Write a kubeconfig for this server authenticating with `token`."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "real",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority": str(self.pki / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "real", "context": {"cluster": "real", "user": user}}],
            "current-context": "real",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        return path

    def admin(self) -> client.ApiClient:
        """An API client with full rights (system:masters)."""
        configuration = client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(self.pki / "ca.crt")
        configuration.api_key = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        configuration.retries = False
        return client.ApiClient(configuration)

    def _apply_collector_rbac(self) -> None:
        """Create what the chart grants the collector, verbatim: its ServiceAccount, ClusterRole,
        Role and their bindings, as `helm template` renders them with the default values."""
        wanted = _collector_rbac_objects()
        namespaces = {d["metadata"]["namespace"] for d in wanted if "namespace" in d["metadata"]}
        with self.admin() as api:
            core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
            for namespace in sorted(namespaces):
                _create(core.create_namespace, {"metadata": {"name": namespace}})
            for document in wanted:
                kind, namespace = document["kind"], document["metadata"].get("namespace")
                if kind == "ServiceAccount":
                    _create(core.create_namespaced_service_account, document, namespace=namespace)
                elif kind == "ClusterRole":
                    _create(rbac.create_cluster_role, document)
                elif kind == "ClusterRoleBinding":
                    _create(rbac.create_cluster_role_binding, document)
                elif kind == "Role":
                    _create(rbac.create_namespaced_role, document, namespace=namespace)
                elif kind == "RoleBinding":
                    _create(rbac.create_namespaced_role_binding, document, namespace=namespace)

    def collector_token(self, *, seconds: int = 86_400) -> str:
        """A token of the collector's ServiceAccount from the chart, issued by the server
        (TokenRequest)."""
        namespace, name = _collector_account()
        with self.admin() as api:
            answer = client.CoreV1Api(api).create_namespaced_service_account_token(
                name,
                namespace,
                client.AuthenticationV1TokenRequest(
                    spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
                ),
            )
        if answer.status is None:
            raise RealKubeError("the API server issued no token for the collector")
        return str(answer.status.token)

    def collector_kubeconfig(self, path: Path, *, static_token: bool = False) -> Path:
        """A kubeconfig with exactly the collector's rights (list/watch/get core/v1 Events).

        By default with a token the server issues for the ServiceAccount (TokenRequest), the real
        path of a pod's token. With `static_token`, with a static token whose user name is that
        ServiceAccount's (`system:serviceaccount:<namespace>:<name>`, so the same RBAC binding
        applies): it outlives `wipe_etcd`, which deletes the account an issued token names."""
        token = COLLECTOR_STATIC_TOKEN if static_token else self.collector_token()
        return self.kubeconfig(path, token=token, user="herald-collector")

    def logs(self, lines: int = 30) -> str:
        parts = [("etcd", self._etcd), ("kube-apiserver", self._apiserver)]
        return "\n".join(f"--- {name}:\n{p.tail(lines)}" for name, p in parts if p is not None)


def _collector_account() -> tuple[str, str]:
    """(namespace, name) of the ServiceAccount the chart's collector Deployment runs as."""
    deployment = the_one(default_objects(), "Deployment", "collector")
    name = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    return str(deployment["metadata"]["namespace"]), str(name)


def _collector_rbac_objects() -> list[dict[str, Any]]:
    """The chart's RBAC objects of the collector: those labelled its component."""
    return [
        d for d in default_objects() if d["kind"] in _RBAC_KINDS and component(d) == "collector"
    ]


def _create(call: Any, body: dict[str, Any], **kwargs: Any) -> None:
    try:
        call(body=body, **kwargs)
    except client.ApiException as e:
        if e.status != 409:  # already there
            raise


def main() -> None:  # pragma: no cover - by hand
    """`python -m herald_dev.realkube`: start a server, print how to reach it, and stop it (etcd
    and kube-apiserver both) on SIGINT or SIGTERM."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="herald-realkube-") as tmp:
        kube = RealKube(ensure_assets(), Path(tmp))
        try:
            kube.start()
            admin = kube.kubeconfig(Path(tmp) / "admin.kubeconfig", token=ADMIN_TOKEN, user="admin")
            collector = kube.collector_kubeconfig(Path(tmp) / "collector.kubeconfig")
            print(
                f"kube-apiserver at {kube.url}, etcd at {kube.etcd_url}\n"
                f"admin kubeconfig:     {admin}\n"
                f"collector kubeconfig: {collector}\n"
                "Ctrl-C stops both.",
                flush=True,
            )
            stop.wait()
        finally:
            kube.stop()


if __name__ == "__main__":
    main()
