"""KServe model server for registry versions: v1/v2 predict, Prometheus metrics, hot reload."""
