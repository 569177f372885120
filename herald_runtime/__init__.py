"""What every Herald service runs beside its work: the `/metrics`, `/healthz` and `/readyz` endpoint
(`health`) and the heartbeats its checks read (`heartbeats`). Depends on no service."""
