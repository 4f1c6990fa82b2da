"""`r2rec serve`: run the service with uvicorn (settings from R2REC_* variables).

    r2rec serve [--host H] [--port P] [--workers N] [--train | --no-train]

``--train`` (default: ``R2REC_TRAIN_ON_START``) starts the first-run training child
beside the server when nothing is published (`service.training_child`); it is stopped
when the server stops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from common.errors import UserInputError


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[
        int, typer.Option(help="uvicorn worker processes (1 with the embedded graph store)")
    ] = 1,
    train: Annotated[
        bool | None,
        typer.Option(
            "--train/--no-train",
            help="Train the quick profile in the background while nothing is published "
            "(default: R2REC_TRAIN_ON_START)",
        ),
    ] = None,
) -> None:
    """Start the recommendation service (see README "Configuration" for R2REC_* variables)."""
    import uvicorn

    from common.paths import runs_root
    from common.progress import first_run_job
    from service.runtime import journal_path
    from service.security import is_loopback, keys_configured
    from service.settings import get_settings
    from service.training_child import start_training_child, stop_training_child

    settings = get_settings()
    if train is not None:
        settings = settings.model_copy(update={"train_on_start": train})
    if not is_loopback(host) and not keys_configured(settings):
        raise UserInputError(
            f"--host {host} is reachable from other machines and no API key is set: set "
            "R2REC_WRITE_KEY (and R2REC_READ_KEY for read-only clients), or bind 127.0.0.1"
        )
    if settings.graph_store == "memory":
        journal = journal_path(settings)
        if workers != 1:
            raise UserInputError(
                f"--workers {workers}: the embedded graph store (journal {journal}) serves one "
                "process; use --workers 1, or the Neo4j store (R2REC_GRAPH_STORE=neo4j)"
            )
        _check_journal_free(journal)
    child = start_training_child(settings)
    if child is not None:
        log_file = runs_root() / first_run_job(settings.dataset) / "child.log"
        typer.echo(
            f"first-run training started in the background (pid {child.pid}); the graph "
            f"scorer answers until its model passes the gate. Progress: /readyz, /metrics, "
            f"{log_file}",
            err=True,
        )
    try:
        uvicorn.run(
            "service.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
        )
    finally:
        stop_training_child(child)


def _check_journal_free(path: Path) -> None:
    """Refuse in one line, before loading anything, if another server holds the journal."""
    from graph_store.journal import JournalLockedError, check_unlocked

    try:
        check_unlocked(path)
    except JournalLockedError as err:
        raise UserInputError(str(err)) from None
