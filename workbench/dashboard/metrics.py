"""`GET /metrics`: the broker's state in the Prometheus text format, made by prometheus_client.

Read at scrape time, cheaply: list lengths and registry sizes (LLEN / ZCARD), the registered
workers, and the cumulative counters and duration histogram workers keep per task
(`workbench.stats`, written in each job's finishing transaction). Nothing is scanned.

- `workbench_jobs{queue,registry}`                   gauge: jobs per queue and list;
- `workbench_workers{state,host}`                    gauge: registered workers;
- `workbench_jobs_finished_total{queue,task}`        counter, and `_failed_`, `_stopped_`, `_retried_`;
- `workbench_job_duration_seconds{task}`             histogram of job run times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from redis import Redis

from .. import stats
from ..known_queues import all_queues
from .listing import list_sizes
from .workers import worker_rows

#: Histogram buckets: every 10th of the statistics' log buckets, i.e. half-decades from 1 ms.
BUCKET_INDEXES = tuple(range(0, stats.MAX_BUCKET, stats.BUCKETS_PER_DECADE // 2))


class BrokerCollector:
    """A prometheus_client collector that reads the broker on each scrape."""

    def __init__(self, connection: Redis) -> None:
        self.connection = connection

    def collect(self) -> Iterator[Metric]:
        yield self._jobs()
        yield self._workers()
        yield from self._ends()
        yield self._durations()

    def _jobs(self) -> Metric:
        family = GaugeMetricFamily("workbench_jobs", "Jobs per queue and list.", labels=["queue", "registry"])
        queues = all_queues(self.connection)
        for queue, sizes in zip(queues, list_sizes(self.connection, queues), strict=True):
            for name, size in sizes.items():
                if isinstance(size, int):  # a list whose key holds another type has no figure
                    family.add_metric([queue.name, name], size)
        return family

    def _workers(self) -> Metric:
        family = GaugeMetricFamily(
            "workbench_workers", "Registered workers by state and host.", labels=["state", "host"]
        )
        counts = Counter((row["state"], row["hostname"] or "?") for row in worker_rows(self.connection))
        for (state, host), count in sorted(counts.items()):
            family.add_metric([state, host], count)
        return family

    def _ends(self) -> Iterator[Metric]:
        everything = stats.totals(self.connection)
        for outcome in stats.OUTCOMES:
            family = CounterMetricFamily(
                f"workbench_jobs_{outcome}", f"Jobs that ended {outcome}, per queue and task.", labels=["queue", "task"]
            )
            for totals in everything:
                for (ended_as, queue), count in sorted(totals.ended.items()):
                    if ended_as == outcome:
                        family.add_metric([queue, totals.task], count)
            yield family

    def _durations(self) -> Metric:
        family = HistogramMetricFamily(
            "workbench_job_duration_seconds", "How long jobs ran (started to ended), per task.", labels=["task"]
        )
        for totals in stats.totals(self.connection):
            buckets = [(_le(edge), count) for edge, count in totals.cumulative(BUCKET_INDEXES)]
            family.add_metric([totals.task], [*buckets, ("+Inf", totals.count)], sum_value=totals.sum_s)
        return family


def _le(edge: float) -> str:
    return f"{edge:.4g}"


def render(connection: Redis) -> tuple[bytes, str]:
    """The exposition text and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerCollector(connection))
    return generate_latest(registry), CONTENT_TYPE_LATEST
