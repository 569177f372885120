"""Composition root of the processor: `python -m processors` (or `herald-processor`).

Loads and validates settings, then runs a Faust worker for the app (which installs its own signal
handlers and shuts down cleanly on SIGTERM or SIGINT).
"""

from __future__ import annotations

import os
import sys

import faust
from prometheus_client import start_http_server

from processors.app import build_app
from processors.settings import ProcessorSettings, SettingsError


def main() -> None:
    try:
        settings = ProcessorSettings.from_env(os.environ)
    except SettingsError as e:
        sys.exit(f"processor: bad setting: {e}")
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    app = build_app(settings)
    worker = faust.Worker(app, loglevel="INFO")
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
