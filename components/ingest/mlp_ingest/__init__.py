"""Ingest step: CSV, Parquet, SQL or a bundled dataset -> versioned dataset with a content hash."""
