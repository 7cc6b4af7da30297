"""Ingest step: CSV/Parquet/SQL or an embedded sklearn dataset -> versioned dataset with a content hash."""
