"""The built-in task catalog: every module here declares its tasks with `@task` where they are written.

Adding a task is one decorated function in any module of this package (found automatically by
`workbench.catalog_load`), or in a module of your own named in WORKBENCH_TASKS. Nothing here
imports the workbench's loader: task modules depend only on leaf helpers such as
`workbench.catalog` (the decorator) and `workbench.progress`.
"""

#: The order the producer's menu lists these tasks in (`1` is sleep, as it always was); any task not
#: named here follows, in module order. Listing a task here is optional: it is found either way.
MENU_ORDER = ("sleep", "count_primes", "fibonacci", "monte_carlo_pi", "sha256_chain", "scrape")
