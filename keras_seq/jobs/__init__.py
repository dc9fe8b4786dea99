"""Running work: a pool of local processes or a dask cluster for independent fits (pool), a call in a new
process on the backend it needs (processes: a search's workers, an export on TensorFlow), and the one stop
request every long command checks (stop)."""
