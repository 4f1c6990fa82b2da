"""R2Rec command line and the few things every part shares (paths, user-facing errors)."""
