"""One module per `r2rec` sub-command group; `r2rec.cli` assembles them."""
