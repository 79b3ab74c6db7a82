"""Settings module for the plain-RQ side: `rq worker -c bench.preload`.

RQ imports a worker's settings module in the worker's main process, before it forks any work
horse. Importing the task catalog here means each horse inherits it instead of importing
`task_def` (and requests) again for every job: what a plain-RQ user who cares
about throughput would do, so the comparison measures RQ's fork per job, not our imports.
It holds no settings; the broker URL and serializer are given as flags.
"""

from workbench.catalog_load import load_catalog

load_catalog()
