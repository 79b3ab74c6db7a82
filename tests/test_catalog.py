"""The catalog registry: what it describes, how it validates, and how jobs are held to it."""

from __future__ import annotations

import importlib
import traceback

import pytest
from rq import Callback

from workbench.catalog import FLOAT, INT, STR, TaskFailed, task_named
from workbench.catalog_load import load_catalog
from workbench.errors import NotCatalogTask, UsageError
from workbench.jobs import CatalogJob, make_queue

PUBLIC_TASKS = {"sleep", "count_primes", "fibonacci", "monte_carlo_pi", "sha256_chain", "scrape"}
CATALOG = load_catalog()


def test_every_entry_describes_its_task():
    assert PUBLIC_TASKS <= set(CATALOG)
    for name, spec in CATALOG.items():
        assert spec.name == name
        assert spec.description and "\n" not in spec.description
        assert spec.timeout_s > 0 and isinstance(spec.retry_safe, bool)
        module, _, attr = spec.func_path.rpartition(".")
        assert getattr(importlib.import_module(module), attr) is spec.func
        assert CATALOG.spec_for_path(spec.func_path) is spec
        for param in spec.params:
            assert param.kind in (INT, FLOAT, STR) and param.help
            if param.kind in (INT, FLOAT):
                assert param.minimum <= param.default <= param.maximum
            assert param.describe().startswith(f"{param.name}: {param.kind}")
    assert CATALOG.callbacks == frozenset()
    assert set(CATALOG.public()) == PUBLIC_TASKS and CATALOG["combine_counts"].extra == {"internal": True}


def test_parameters_are_converted_bounded_and_defaulted():
    primes = CATALOG["count_primes"]
    assert primes.validate({"limit": "1_000", "start": " 10 "}) == {"limit": 1000, "start": 10}
    assert primes.validate({}) == {"limit": 1_000_000, "start": 0}
    assert primes.param("limit").describe() == "limit: int, default 1,000,000, 2..2,000,000,000"
    with pytest.raises(UsageError, match="limit must be a whole number from 2 to 2,000,000,000, not 2,000,000,001"):
        primes.validate({"limit": 2_000_000_001})
    with pytest.raises(UsageError, match="has no parameter 'limt'"):
        primes.validate({"limt": 5})
    with pytest.raises(UsageError, match="seconds must be a number from .*, not 'nan'"):
        CATALOG["sleep"].validate({"seconds": "nan"})
    assert CATALOG["sha256_chain"].validate({"data": " abc "}) == {"rounds": 1_000_000, "data": "abc"}


def test_scrape_needs_a_url_and_checks_its_shape():
    scrape = CATALOG["scrape"]
    with pytest.raises(UsageError, match="task scrape needs url"):
        scrape.validate({})
    assert scrape.validate({"url": "http://Example.com"}) == {"url": "http://example.com/"}
    with pytest.raises(UsageError, match="^url: only http and https"):
        scrape.validate({"url": "file:///etc/passwd"})


def test_unknown_task_names_list_the_catalog():
    with pytest.raises(UsageError, match="unknown task 'nope'; choose one of: .*count_primes"):
        task_named(CATALOG, "nope")


def test_a_task_failure_is_stored_as_its_sentence():
    try:
        raise TaskFailed("the page is not HTML.")
    except TaskFailed as exc:
        stored = "".join(traceback.format_exception(exc))
    assert stored.strip().splitlines()[-1] == "the page is not HTML."


def test_a_catalog_job_never_imports_a_path_outside_the_catalog(conn):
    job = CatalogJob.create("tests.no_such_module.run", connection=conn)
    with pytest.raises(NotCatalogTask, match="not a catalog task on this worker: tests.no_such_module.run"):
        job.func  # noqa: B018 - stock RQ would import here and raise ModuleNotFoundError
    with pytest.raises(NotCatalogTask, match="not a catalog task on this worker: tests.no_such_module.run"):
        job.perform()
    hooked = CatalogJob.create(
        CATALOG["sleep"].func, kwargs={"seconds": 0}, connection=conn, on_failure=Callback("tests.no_such_module.cb")
    )
    assert hooked.failure_callback is None  # not imported: RQ would raise ModuleNotFoundError here
    with pytest.raises(NotCatalogTask, match="callback tests.no_such_module.cb"):
        hooked.perform()


def test_producer_jobs_name_the_catalog_function(conn):
    job = make_queue("q", conn).enqueue(CATALOG["fibonacci"].func, kwargs={"n": 10})
    assert job.func_name == "task_def.maths.fibonacci"
    assert job.perform() == {"n": 10, "digits": 2, "last_digits": "55"}
