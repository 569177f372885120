"""The local demo (`make run`): a canary rollout in a simulated cluster, delivered as signed webhooks.

It brings up the local infrastructure (or reuses it), serves a simulated cluster, starts the three
services as real processes, subscribes a local receiver (which verifies every signature on its own
and prints what it receives), plays the canary scenario, waits for the expected domain events, shows
the delivery log, and stops everything it started.

    python -m herald_dev.demo [--scenario FILE] [--expect N] [--keep-running]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from herald_dev import infra
from herald_dev.fakekube import FakeKube, load_scenario
from herald_dev.processes import ServiceProcess
from herald_dev.receiver import Receiver

SCENARIO = infra.REPO / "deploy" / "local" / "scenarios" / "canary.jsonl"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m herald_dev.demo", description=__doc__)
    parser.add_argument("--scenario", type=Path, default=SCENARIO)
    parser.add_argument("--expect", type=int, default=8, help="domain events the scenario yields")
    parser.add_argument("--timeout-s", type=float, default=120)
    parser.add_argument("--keep-running", action="store_true", help="run until Ctrl-C")
    args = parser.parse_args(argv)

    state_dir = infra.DEFAULT_STATE_DIR
    had = infra.load_state(state_dir)
    print("starting the local Kafka broker and Postgres (or reusing them) ...", flush=True)
    started_infra = not (infra.alive(had.kafka_pid) or infra.alive(had.postgres_pid))
    try:
        state = infra.up(state_dir)
    except (infra.InfraError, subprocess.CalledProcessError, OSError) as e:
        if started_infra:
            infra.down(state_dir)
        sys.exit(f"demo: the local infrastructure did not start: {e}")
    try:
        ok = _run(state.env(), state_dir, args)
    finally:
        if started_infra:
            infra.down(state_dir)
            print("stopped Kafka and Postgres")
        else:
            print("Kafka and Postgres were running before the demo and are left running")
    sys.exit(0 if ok else 1)


def _run(infra_env: dict[str, str], state_dir: Path, args: argparse.Namespace) -> bool:
    run_id = uuid.uuid4().hex[:6]
    cluster = f"demo-{run_id}"
    logs = state_dir / "logs" / run_id
    work = Path(tempfile.mkdtemp(prefix="herald-demo-"))
    fake = FakeKube(bookmark_interval_s=2)
    fake.serve()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    receiver = Receiver(secret=secret, echo=True)
    url = receiver.serve()
    env = {
        **infra_env,
        "HERALD_METRICS_PORT": "0",
        "HERALD_CLUSTER_NAME": cluster,
        "HERALD_KUBECONFIG": str(fake.write_kubeconfig(work / "kubeconfig")),
        "HERALD_PROCESSOR_DATA_DIR": str(work / "processor-data"),
        "HERALD_HTTP_CONNECT_TIMEOUT_S": "2",
        "HERALD_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver listens on 127.0.0.1
        "HERALD_SECRETS_KEYS": _demo_keyring(state_dir),  # webhook secrets sealed at rest
    }
    subscription = _dispatchers_cli(
        env, "subscriptions", "create", "--url", url, "--secret", secret, "--cluster", cluster
    )
    print(f"subscription {subscription}: every event of cluster {cluster} to {url}", flush=True)
    services = [
        ServiceProcess(name, env, logs / f"{name}.log").start()
        for name in ("collectors", "processors", "dispatchers")
    ]
    print(f"services started; logs in {logs}", flush=True)
    ok = False
    try:
        steps = load_scenario(args.scenario)
        print(f"playing {args.scenario.name}: {len(steps)} Kubernetes Events ...", flush=True)
        fake.play(steps)
        verified = _wait_verified(receiver, args.expect, timeout_s=args.timeout_s)
        ok = verified >= args.expect
        print(f"\n{verified} of {args.expect} expected webhooks received with a valid signature.")
        # Attempts are recorded after a batch is sent: wait until the log shows what arrived.
        _wait_logged(env, subscription, verified, timeout_s=30)
        print("\ndelivery log (python -m dispatchers deliveries list):")
        print(_dispatchers_cli(env, "deliveries", "list", "--subscription", subscription))
        if args.keep_running:
            print("\nrunning; Ctrl-C stops everything", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        for service in reversed(services):
            service.stop()
        receiver.stop()
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)
        print("stopped the services and the simulated cluster")
    if not ok:
        for service in services:
            print(
                f"--- {service.module} ({service.log_path})\n{service.log_tail()}", file=sys.stderr
            )
    return ok


def _demo_keyring(state_dir: Path) -> str:
    """One key for every demo run on this machine (the local database keeps earlier runs'
    subscriptions, sealed with it), made on first use and kept beside the local state."""
    path = state_dir / "secrets-keys"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("demo:" + base64.b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def _dispatchers_cli(env: dict[str, str], *args: str) -> str:
    """Run `python -m dispatchers ARGS` (the documented CLI) and return what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "dispatchers", *args],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _wait_verified(receiver: Receiver, expected: int, *, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        verified = sum(1 for r in receiver.received if r.verified)
        if verified >= expected:
            return verified
        time.sleep(0.2)
    return sum(1 for r in receiver.received if r.verified)


def _wait_logged(env: dict[str, str], subscription: str, count: int, *, timeout_s: float) -> None:
    """Poll the delivery log until `count` deliveries of the subscription are delivered."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = _dispatchers_cli(
            env,
            "deliveries",
            "list",
            "--subscription",
            subscription,
            "--status",
            "delivered",
            "--json",
        )
        if len(json.loads(listed or "[]")) >= count:
            return
        time.sleep(0.5)


if __name__ == "__main__":
    main()
