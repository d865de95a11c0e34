"""The parameter server's Flower ServerApp: reads its run config and runs the session's rounds
with Flower's Message API (``Grid.send_and_receive`` for each phase)."""

from __future__ import annotations

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from seccl.deploy.server_run import DeployedServer, ServerConfig

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    DeployedServer(ServerConfig.from_run_config(context.run_config), grid).run()
