"""`r2rec serve`: run the service with uvicorn (settings from R2REC_* variables)."""

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
) -> None:
    """Start the recommendation service (see README "Configuration" for R2REC_* variables)."""
    import uvicorn

    from service.runtime import journal_path
    from service.security import is_loopback, keys_configured
    from service.settings import get_settings

    settings = get_settings()
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
    uvicorn.run(
        "service.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def _check_journal_free(path: Path) -> None:
    """Refuse in one line, before loading anything, if another server holds the journal."""
    from graph_store.journal import JournalLockedError, check_unlocked

    try:
        check_unlocked(path)
    except JournalLockedError as err:
        raise UserInputError(str(err)) from None
