"""Running work: a pool of local processes or a dask cluster for independent fits (pool), and the one stop
request every long command checks (stop)."""
