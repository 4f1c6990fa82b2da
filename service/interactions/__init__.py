"""POST /interactions: batch ingestion."""
