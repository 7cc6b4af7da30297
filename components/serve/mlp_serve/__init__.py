"""KServe model server for registry versions (owned by ML-serve)."""
