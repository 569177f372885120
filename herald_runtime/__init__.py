"""What every Herald service runs beside its work: the `/metrics`, `/healthz` and `/readyz` endpoint
(`health`), the heartbeats its checks read (`heartbeats`), and the threads that act when the work's
loops are stuck or the process is told to stop (`watchdog`). Depends on no service."""
