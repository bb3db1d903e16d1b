"""``muselab studio``: the local web studio (web server + job worker process)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from muselab.commands import out, user_errors


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command()(studio)


@user_errors
def studio(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1; any "
                                                  "other host needs --token).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    token: Annotated[str | None, typer.Option(help="Require this token (header 'Authorization: "
                                                   "Bearer T', or ?token=T once).")] = None,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="Do not start the job worker "
                                            "(jobs wait in the queue).")] = False,
) -> None:
    """Start the studio: web server and job worker. Prints the URL to open."""
    import os
    import socket
    import subprocess
    import sys

    from muselab.errors import ConfigError
    from muselab.studio.settings import Settings

    given: dict[str, Any] = {"host": host, "port": port, "token": token}
    settings = Settings.load(**{k: v for k, v in given.items() if v is not None})
    settings.check_exposure()
    with socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET) as probe:
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            raise ConfigError(f"--port {settings.port}: cannot listen on {settings.host} "
                              f"({exc.strerror}); pick another port") from None
    import uvicorn

    from muselab.studio.app import create_app

    app = create_app(settings)
    worker = None
    if not no_worker:
        worker = subprocess.Popen([sys.executable, "-m", "muselab.studio.worker"],
                                  env={**os.environ, **settings.worker_env()})
    shown = "localhost" if settings.host in ("127.0.0.1", "::1") else settings.host
    url = f"http://{shown}:{settings.port}/" + (f"?token={settings.token}" if settings.token
                                                  else "")
    out.print(f"muselab studio: [bold]{url}[/]  (API docs: /docs; Ctrl-C stops)", highlight=False)
    if worker is None:
        out.print("no worker: queued jobs wait until `python -m muselab.studio.worker` runs")
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        if worker is not None:
            worker.terminate()  # the worker pauses its job; the next start resumes it
            try:
                worker.wait(timeout=120)
            except subprocess.TimeoutExpired:
                worker.kill()
