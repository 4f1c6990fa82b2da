"""`r2rec data ...`: list datasets and import your own.

r2rec data list
r2rec data import interactions.csv items.csv --name shop [--force] \
    [--verb bought --noun product]      # the words prompts and explanations use
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from common.errors import UserInputError
from common.paths import datasets_dir
from recdata.importer import import_dataset
from recdata.store import available_datasets, load_dataset
from recdata.vocabulary import Vocabulary

app = typer.Typer(help="Datasets: list the available ones, import your own.", no_args_is_help=True)
console = Console()


@app.command("list")
def list_datasets() -> None:
    """List built-in and imported datasets with their sizes."""
    table = Table("dataset", "users", "items", "interactions")
    for name in available_datasets():
        summary = load_dataset(name).summary()
        table.add_row(name, *(f"{summary[k]:,}" for k in ("users", "items", "interactions")))
    console.print(table)


@app.command("import")
def import_command(
    interactions: Annotated[
        Path, typer.Argument(help="CSV/Parquet: user_id, item_id, timestamp[, rating]")
    ],
    items: Annotated[
        Path, typer.Argument(help="CSV/Parquet: item_id, title[, other text columns]")
    ],
    name: Annotated[str, typer.Option(help="Name to store the dataset under")],
    force: Annotated[bool, typer.Option(help="Replace an existing dataset of that name")] = False,
    verb: Annotated[
        str | None, typer.Option(help="What users did, past tense: bought, watched, read")
    ] = None,
    noun: Annotated[str | None, typer.Option(help="What an item is: product, film, book")] = None,
    verb_base: Annotated[
        str | None, typer.Option(help="The verb's base form when it is irregular: buy")
    ] = None,
) -> None:
    """Validate and store a user dataset; nothing is written unless all of it is valid."""
    if (verb is None) != (noun is None):
        raise UserInputError("--verb and --noun go together (e.g. --verb bought --noun product)")
    words = Vocabulary.from_words(verb, noun, verb_base) if verb and noun else None
    dataset, dropped = import_dataset(
        interactions, items, name, datasets_dir(), overwrite=force, vocabulary=words
    )
    s = dataset.summary()
    console.print(
        f"imported '{name}': {s['users']:,} users, {s['items']:,} items, "
        f"{s['interactions']:,} interactions"
        + (f" ({dropped:,} exact duplicates dropped)" if dropped else "")
    )
