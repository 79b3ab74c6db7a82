"""Pure pieces the consoles rely on: numbers as people write them, durations, and how a stored
error reads (one sentence for an expected outcome, a traceback kept only for a bug)."""

from __future__ import annotations

import pytest

from workbench import validators
from workbench.catalog import task_named
from workbench.catalog_load import load_catalog
from workbench.errors import UsageError
from workbench.results import read_failure


@pytest.mark.parametrize(
    "raw,value",
    [("20000", 20_000), ("20,000", 20_000), ("20_000", 20_000), ("2e4", 20_000), ("2.0", 2), (" 7 ", 7),
     ("1,234,567", 1_234_567), ("+3", 3), ("2E3", 2_000)],
)  # fmt: skip
def test_whole_numbers_are_taken_as_the_consoles_print_them(raw, value):
    assert validators.whole_number(raw, "n", 0, 10**9) == value


@pytest.mark.parametrize(
    "raw", ["1.5", "1,5", "20,00", "1e309", "1e40", "0x10", "", "ten", "1__0", "nan", "١٢", "１２", "1e١", "٣,٠٠٠"]
)
def test_anything_else_is_refused_with_the_text_given(raw):
    with pytest.raises(UsageError, match=r"n must be a whole number from 0 to 1,000,000,000, not '"):
        validators.whole_number(raw, "n", 0, 10**9)


@pytest.mark.parametrize("raw,seconds", [("90", 90), ("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400),
                                         ("1h30m", 5400), ("1.5m", 90)])  # fmt: skip
def test_durations(raw, seconds):
    assert validators.duration(raw, "--every", 1, 10**7) == seconds


@pytest.mark.parametrize("raw", ["0s", "soon", "1.5s", "10 minutes", "-5m", "m", "١٠", "١٠m", "１h"])
def test_bad_durations(raw):
    with pytest.raises(UsageError, match="--every must be a duration from 1s to"):
        validators.duration(raw, "--every", 1, 10**7)


def test_task_names_ignore_case_and_a_near_miss_gets_did_you_mean():
    assert task_named(load_catalog(), "Count_Primes").name == "count_primes"
    with pytest.raises(UsageError, match=r"unknown task 'fibonaci' \(did you mean fibonacci\?\); choose one of:"):
        task_named(load_catalog(), "fibonaci")


STOPPED = """Traceback (most recent call last):
  File "/w/worker.py", line 1, in perform
workbench.worker.JobStopped: stopped by user
"""
REFUSED = """Traceback (most recent call last):
  File "/w/scrape.py", line 9, in scrape
task_def.web_guard.ScrapeRefused: refused http://10.0.0.1/: not a public address.
refused http://10.0.0.1/: not a public address.
"""
TIMEOUT = """Traceback (most recent call last):
  File "/w/rq/timeouts.py", line 9, in handle
rq.timeouts.JobTimeoutException: Task exceeded maximum timeout value (1 seconds)
"""
BUG = """Traceback (most recent call last):
  File "/w/task.py", line 3, in run
    1 / 0
ZeroDivisionError: division by zero
"""
CHAINED = """Traceback (most recent call last):
  File "/w/a.py", line 1, in a
KeyError: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/w/b.py", line 2, in b
workbench.errors.UsageError: refused parameters for sleep: seconds must be a number.
"""


@pytest.mark.parametrize(
    "text,sentence,expected",
    [
        (STOPPED, "stopped by user", True),
        (REFUSED, "refused http://10.0.0.1/: not a public address.", True),
        (TIMEOUT, "Task exceeded maximum timeout value (1 seconds)", True),
        (CHAINED, "refused parameters for sleep: seconds must be a number.", True),
        (BUG, "ZeroDivisionError: division by zero", False),
        ("Moved to FailedJobRegistry, due to AbandonedJobError", "Moved to FailedJobRegistry, due to AbandonedJobError",
         True),
    ],
)  # fmt: skip
def test_a_stored_error_reads_as_one_sentence_and_says_whether_it_was_expected(text, sentence, expected):
    failure = read_failure(text)
    assert failure is not None and (failure.sentence, failure.expected) == (sentence, expected)
