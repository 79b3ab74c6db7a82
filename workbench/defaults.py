"""Every default of the workbench, in one place, each with the reason it has that value.

Configuration flows one way: command-line flag > environment variable > the constant here.
"""

from __future__ import annotations

from pathlib import Path

#: The repository root: entry scripts live here and the embedded broker keeps its data below it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Environment variable naming the broker; `--redis-url` overrides it.
ENV_REDIS_URL = "REDIS_URL"
#: Loopback only: a workbench broker must never be reachable from the network by default.
LOCAL_BROKER_HOST = "127.0.0.1"
#: The port Redis users expect; tests move it with WORKBENCH_BROKER_PORT to stay off the system Redis.
LOCAL_BROKER_PORT = 6379
ENV_BROKER_PORT = "WORKBENCH_BROKER_PORT"
#: Where the embedded broker and the demo keep their state; tests point it at a temporary folder.
#: In a clone, `.data/` beside the entry scripts; an installed copy (no clone around it) uses the
#: user's data folder, never site-packages.
ENV_DATA_DIR = "WORKBENCH_DATA_DIR"
DATA_DIR = (
    PROJECT_ROOT / ".data"
    if (PROJECT_ROOT / "producer_main.py").exists()
    else Path.home() / ".local" / "share" / "rq-workbench"
)

#: broker_main.py: binding anything but loopback needs a password, taken only from this variable (argv is public).
ENV_BROKER_PASSWORD = "BROKER_PASSWORD"
#: broker_main.py: probe idle client connections this often, so the broker drops a peer whose link died in ~30 s.
BROKER_TCP_KEEPALIVE_S = 15

# -- high availability (issue 14): replicas and sentinels from the same valkey binary ------------------
#: Sentinels listen where Valkey's own documentation puts them.
SENTINEL_PORT = 26379
#: The name sentinels monitor the workbench's primary under; Sentinel URLs end with it (`.../workbench/0`).
SENTINEL_SERVICE = "workbench"
#: Two of three sentinels must agree the primary is down before a failover: one sentinel with a bad link
#: cannot start one alone, and losing one sentinel host still leaves a majority to elect a leader.
SENTINEL_QUORUM = 2
#: A primary that has not answered for 2 s is down. A healthy server answers PING in well under a
#: millisecond even while it rewrites its AOF (in a fork); 2 s is detection, then ~1-3 s of agreement,
#: election and promotion: a failover completes in ~4-6 s, inside the 10 s outage that stops no job
#: (the fencing "blip", workbench/fencing.py), so running jobs ride through a failover untouched.
SENTINEL_DOWN_AFTER_MS = 2000
#: A failover attempt that stalls (its leader lost, the promoted replica silent) is given up after 5 s and
#: retried 10 s (twice this) later, instead of Valkey's default 3 minutes (6 min between attempts), so a
#: failed first attempt still ends within the 30 s the workbench promises.
SENTINEL_FAILOVER_TIMEOUT_MS = 5000
#: A client asks a sentinel where the primary is with this timeout, no retries: a dead sentinel host is
#: skipped for the next sentinel within a second.
SENTINEL_TIMEOUT_S = 1.0
#: A replica that stops acknowledging is dropped by the primary after 10 s (Valkey's default 60 s), so
#: confirmations stop waiting for it; a healthy replica acknowledges every second.
REPL_TIMEOUT_S = 10
#: A long-lived client (a consumer's, the dashboard's) idle this long PINGs before its next command, so a
#: connection a failover or a NAT dropped is replaced before a request fails on it.
BROKER_HEALTH_CHECK_S = 30

# -- "queued" means on disk, and on a replica where one exists (workbench/durability.py) -------------
#: A producer waits this long for the broker to confirm a batch (WAITAOF: fsynced; WAIT: on a replica);
#: a healthy broker confirms in milliseconds, so 5 s means the disk or the replica is in trouble. Past it
#: the producer says "queued but not confirmed durable" (exit 1) instead of pretending.
CONFIRM_TIMEOUT_S = 5.0
ENV_CONFIRM_TIMEOUT = "WORKBENCH_CONFIRM_TIMEOUT_S"
#: A worker waits this long for a replica to acknowledge the start and the end of a run (WAIT); a replica
#: acknowledges in about a network round trip. Past it the worker carries on and logs that it did not.
RUN_CONFIRM_TIMEOUT_S = 1.0
#: A worker asks the broker how many replicas it has (ROLE) at most this often, piggy-backed on a command
#: it sends anyway: a replica attached or lost is noticed within 2 s, for one command per 2 s.
REPLICA_CHECK_S = 2.0

#: A reachable broker answers PING in milliseconds; 2 s keeps "broker down" answers well under 5 s.
CONNECT_TIMEOUT_S = 2.0
#: Every command gives up after this long without an answer (a worker's blocking dequeue gets RQ's own,
#: longer timeout): beyond any wait the workbench asks of a healthy broker (a 5 s confirmation), and short
#: enough that a client whose broker host vanished (a cut link sends no error) notices and follows a failover.
SOCKET_TIMEOUT_S = 10.0
#: TCP keepalive on every client connection: an idle connection (a worker's command channel, a pooled
#: connection) to a host that vanished is dropped after 5 s idle + 3 probes 2 s apart (~11 s), then remade
#: through the sentinels, instead of waiting on a dead peer for the kernel's two hours.
KEEPALIVE_IDLE_S = 5
KEEPALIVE_INTERVAL_S = 2
KEEPALIVE_COUNT = 3
#: How long to wait for a freshly started embedded broker to answer before giving up.
EMBEDDED_START_TIMEOUT_S = 5.0

#: The queue the class project always used; every prompt offers it first.
DEFAULT_QUEUE = "queue_one"
#: Queue names RQ would accept but people mistype or abuse (spaces, HTML): lower-case words only.
QUEUE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

#: Two cores here; ten workers is the pool size the brief promises and memory stays small at.
MIN_WORKERS = 1
MAX_WORKERS = 10
#: Jobs one worker runs at once (`--threads`): 1 is the classic worker; I/O-bound jobs (a scrape waits on
#: the network) gain from more, up to Dramatiq's 8 per process and beyond; 32 keeps one process's
#: connections, memory and GIL hand-offs modest.
DEFAULT_THREADS = 1
MIN_THREADS = 1
MAX_THREADS = 32
#: A threaded worker waiting for a free slot wakes this often to keep RQ's worker record fresh.
THREAD_SLOT_WAIT_S = 1.0
#: Copies of one job per enqueue; larger batches belong to scripts with several calls.
MIN_COUNT = 1
MAX_COUNT = 10_000

#: Job timeouts: RQ accepts negative values and defaults to 180 s; we bound them to a day.
MIN_JOB_TIMEOUT_S = 1
MAX_JOB_TIMEOUT_S = 86_400
#: Retries per job: each retry reruns the whole task, so a handful is the useful range.
MAX_RETRIES = 10
#: A retry back-off longer than a day is a schedule, not a retry.
MAX_RETRY_INTERVAL_S = 86_400
#: Largest a job's data, error text or result may inflate to when read: real ones are a few KiB of JSON,
#: and a compressed record that inflates to gigabytes must not take a worker or the dashboard down.
MAX_INFLATED_BYTES = 16 * 1024 * 1024
#: Finished results and failures stay a day, long enough to read them in the dashboard.
RESULT_TTL_S = 86_400
FAILURE_TTL_S = 7 * 86_400

#: Dashboard: loopback and rq-dashboard's customary port.
DASHBOARD_HOST = "127.0.0.1"
DASHBOARD_PORT = 9181
ENV_DASHBOARD_USERNAME = "DASHBOARD_USERNAME"
ENV_DASHBOARD_PASSWORD = "DASHBOARD_PASSWORD"

#: Progress reports are throttled so a tight loop does not flood Redis with meta writes.
PROGRESS_MIN_INTERVAL_S = 0.25
#: Checkpoints (workbench/checkpoint.py): a task's saved state is small JSON, never a data set; 64 KiB holds a
#: random generator's whole state (~7 KiB) many times over and keeps every read of the job hash cheap.
CHECKPOINT_MAX_BYTES = 64 * 1024
#: At most one checkpoint write a second per job, however often a task asks: an interruption then costs at most
#: about a second of work, and a job's broker traffic stays one small write a second.
CHECKPOINT_INTERVAL_S = 1.0
ENV_CHECKPOINT_INTERVAL = "WORKBENCH_CHECKPOINT_S"
#: Key prefix for the workbench's own records beside RQ's `rq:` keys.
KEY_PREFIX = "workbench:"

#: kill_thread: a warm stop waits for the running job, so give it time; --grace changes it per call.
KILL_GRACE_S = 30.0
#: A job may run up to MAX_JOB_TIMEOUT_S, so a warm stop may be waited for that long.
MAX_KILL_GRACE_S = MAX_JOB_TIMEOUT_S
#: How often kill_thread re-reads the broker while it waits: a handful of cheap reads per worker.
KILL_POLL_INTERVAL_S = 0.2
#: --force re-sends kill-horse this often while the job runs: a job between dequeue and start ignores it.
FORCE_RESEND_S = 1.0
#: kill_job waits this long for the stopped job to leave "started" before saying it did not stop.
STOP_JOB_WAIT_S = 10.0

# -- supervision (consumer, workers, janitor); each timing can be moved by its env variable for tests --
#: Each worker refreshes a liveness key this often from a thread, so a worker deep in a long job still counts as alive.
HEARTBEAT_INTERVAL_S = 3.0
ENV_HEARTBEAT_INTERVAL = "WORKBENCH_HEARTBEAT_S"
#: One beat gives up after this long: the next one is due anyway, and a cut link must not hold the thread.
BEAT_TIMEOUT_S = 2.0
#: A liveness key lives this long after the broker received the last beat; when it lapses the worker
#: counts as dead and any consumer's janitor recovers its jobs. 25 s = lease + stop grace + margin (below).
LIVENESS_TTL_S = 25.0
ENV_LIVENESS_TTL = "WORKBENCH_LIVENESS_TTL_S"
# Fencing: ONE relation ties the worker's lease to the broker's key TTL (see workbench/fencing.py):
#     lease + stop grace + margin = LIVENESS_TTL_S        (15 s + 5 s + 5 s = 25 s)
# The broker starts the key's TTL when it *receives* a beat, no earlier than the worker *sent* it; the
# worker times its lease from the send. So a worker that cannot renew its lease stops its running jobs
# at send + lease, and if a job has not stopped `stop grace` later the worker exits hard (a job runs in
# the worker's own process, so it ends with it); that is still `margin` before the key can lapse, and
# only a lapsed key lets another host recover (re-run) the job. Hence no job runs on two hosts at once.
# A worker frozen as a whole (SIGSTOP, a stalled VM) cannot fence itself; run generations
# (workbench_generation) still refuse its late result when it thaws.
#: The lease: a worker that could not renew it for 15 s stops its jobs. Outages shorter than
#: lease - beat interval - beat timeout (10 s) never stop anything.
FENCE_LEASE_FRACTION = 0.6
#: The time a stopped job gets to unwind (5 s) before its worker exits hard.
FENCE_STOP_FRACTION = 0.2
#: The rest of the TTL (0.2 x 25 s = 5 s) is the safety margin: thread scheduling, a hard exit, clock-rate drift.
#: Exit code of a worker that exited hard because its jobs did not stop when its lease ran out (respawned).
EXIT_FENCED = 75
#: How often the janitor (on whichever consumer holds its lease) looks for workers whose liveness key lapsed.
#: Recovery window for a dead worker or a cut link: LIVENESS_TTL_S + JANITOR_INTERVAL_S = 30 s.
JANITOR_INTERVAL_S = 5.0
ENV_JANITOR_INTERVAL = "WORKBENCH_JANITOR_S"
#: The janitor's lease lasts this many sweep intervals: a consumer that died holding it is replaced within 15 s,
#: well inside the liveness TTL, so the window above holds even when the cut host held the janitor's lease.
JANITOR_LEASE_INTERVALS = 3
#: The broker-wide scan (every queue's started registry, intermediate lists, worker registries) is rare: every
#: minute on one consumer. Dead workers' jobs are found through the workers' own execution sets every sweep.
JANITOR_FULL_SCAN_S = 60.0
#: An idle worker's blocking dequeue lasts at most this long, so a worker whose link died stops being handed
#: jobs by the broker within 5 s (RQ's default is 405 s); costs one BLMOVE per idle worker per 5 s.
DEQUEUE_TIMEOUT_S = 5
#: A run's start records (RQ's execution, started registry, busy state) are written once it has lasted this long:
#: most jobs end sooner, and their end alone is written (workbench.lean_path); observers see a longer run as
#: started 10 ms after it began, which no person and no dashboard refresh can tell apart.
START_RECORD_DELAY_S = 0.01
#: A run's end the broker keeps refusing (not an outage: those are waited out) is written this many times, half
#: a second apart, then left to the janitor: a few seconds covers a replica that lags, not a broken broker.
FINISH_ATTEMPTS = 10
FINISH_RETRY_PAUSE_S = 0.5
#: A quarantined job's reason (an exception's text, kept on its record and in the quarantine hash) is cut here:
#: the exception line fits; a record's whole dump would not be read.
QUARANTINE_REASON_CHARS = 300
#: A busy worker asks the broker about `rq suspend` at most this often (RQ asks before every job, one command
#: each); a suspension takes effect within a second, as a worker's own heartbeat does.
SUSPENSION_CHECK_S = 1.0
#: A job this far past its timeout has a stuck worker (SIGALRM never fired): the supervisor kills it.
TIMEOUT_GRACE_S = 10.0
ENV_TIMEOUT_GRACE = "WORKBENCH_TIMEOUT_GRACE_S"
#: Cap of a worker's reconnect back-off, so it is back within a couple of seconds of the broker's return.
MAX_RECONNECT_WAIT_S = 2
#: After a cold stop, how long workers get to fail their jobs before their process groups are killed.
COLD_STOP_GRACE_S = 10.0
#: A dead worker's record stays this long after the janitor unregisters it, as RQ keeps one that died
#: (`register_death`): long enough for a list to show it died, then it is gone.
DEAD_WORKER_TTL_S = 60

#: Producer --wait polls job states this often: fast enough to feel live, a handful of commands per poll.
WAIT_POLL_INTERVAL_S = 0.2
#: --wait gives up when no worker has listened on the queue this long: a script must not hang forever.
WAIT_UNSERVED_LIMIT_S = 30.0
#: Fan-out (`--split N`): more chunks than ten workers only adds per-chunk overhead; 64 leaves room for bigger pools.
MAX_SPLIT = 64
#: The results table shows this many rows; --json always carries every job.
RESULTS_TABLE_ROWS = 50

# -- the task catalog (workbench/catalog.py, workbench/catalog_load.py) --
#: Comma-separated modules of the user's own whose @task functions join the catalog (producer and workers).
ENV_TASKS = "WORKBENCH_TASKS"
#: A task declared without a timeout: ten minutes is RQ-scale "long" yet stops a runaway job the same hour.
TASK_TIMEOUT_S = 600

# -- the scrape task (task_def/scrape.py); the job timeout must stay above deadline + read timeout --
#: Comma-separated host[:port] list of private hosts scrape may open (a bare host means its scheme's default port).
ENV_SCRAPE_ALLOWED_HOSTS = "SCRAPE_ALLOWED_HOSTS"
#: A host that does not accept a connection in 5 s is down or filtered; waiting longer only ties up a worker.
SCRAPE_CONNECT_TIMEOUT_S = 5.0
#: Longest silence between two reads of one response before giving up on the server.
SCRAPE_READ_TIMEOUT_S = 10.0
#: Whole fetch, all redirect hops and the body: 30 s, so even a last read that times out ends well inside the job.
SCRAPE_DEADLINE_S = 30.0
#: The scrape job's timeout: the deadline plus one read timeout plus time to parse a full 5 MiB page.
SCRAPE_JOB_TIMEOUT_S = 60
#: Real pages are far below 5 MiB of HTML; more is a download, not a page, and would crowd the worker's memory.
SCRAPE_MAX_BYTES = 5 * 1024 * 1024
#: Browsers allow ~20 redirects; five covers http->https->www->locale chains without letting a server loop us.
SCRAPE_MAX_REDIRECTS = 5

#: How often a consumer compares the broker's run id (and counts its own queues' jobs): a restart without
#: persistence loses jobs silently; 2 s is quick enough to say so and costs a handful of commands.
RESTART_CHECK_INTERVAL_S = 2.0
#: `--wait` rides out a broker outage this long (workers reconnect too), then gives up with one sentence.
WAIT_OUTAGE_LIMIT_S = 30.0

# -- schedules (workbench/schedules.py): delayed batches and periodic ones, fired by the consumers --
#: `--in` / `--at` reach at most a year ahead: further is more likely a typo than a plan.
MAX_DELAY_S = 366 * 86_400
#: `--every`: RQ's cron loop wakes each second, so one second is the finest period that means anything.
MIN_EVERY_S = 1
MAX_EVERY_S = 366 * 86_400
#: A stored schedule record is a few hundred bytes of JSON; a larger one was not written by the producer.
MAX_SCHEDULE_RECORD_BYTES = 64 * 1024
#: How often each consumer's scheduler thread wakes: moves due jobs, refreshes its leases.
SCHEDULER_TICK_S = 1.0
#: The periodic-schedule lease: its holder alone fires periodic jobs; when a consumer dies, another
#: takes over within this many seconds (a few missed ticks, never two schedulers at once).
SCHEDULER_LEASE_S = 10
ENV_SCHEDULER_LEASE = "WORKBENCH_SCHEDULER_LEASE_S"
#: The WORKBENCH_*_S settings (workbench/settings.py) take a time from 10 ms (tests shorten the timings; less
#: would spin the loops they pace) to a day (more is a typo: none of them means anything beyond an hour).
SETTING_MIN_S = 0.01
SETTING_MAX_S = 86_400
#: `--batches` lists this many recent batches: a screenful.
RECENT_BATCHES = 20

# -- progress reports (workbench/progress.py) -------------------------------------------------------
#: After a report the broker did not take (an outage, a failover), the next ones wait this long: progress
#: is best effort, and the job must neither fail nor stall on it.
PROGRESS_AWAY_PAUSE_S = 2.0

# -- search (workbench/search.py) -------------------------------------------------------------------
#: An id prefix shorter than this matches too much to be meant as an id.
SEARCH_MIN_ID_PREFIX = 6
#: A search answers within about this long, searched through or not.
SEARCH_BUDGET_S = 0.2
#: Jobs the script reads per call (a call blocks the broker for about a millisecond per thousand).
SEARCH_CHUNK = 2000
#: A search lists at most this many jobs (newest first): more is not read; a narrower query finds the rest.
SEARCH_MAX_HITS = 100

# -- statistics (workbench/stats.py) ----------------------------------------------------------------
#: How much of the error's end is kept for search: the exception line and a few above it.
ERROR_TAIL_CHARS = 1000
#: A chart covers the last hour; per-minute keys live a little longer than that.
STATS_MINUTE_TTL_S = 2 * 3600
#: Hourly keys serve the "last 24 h" figures.
STATS_HOUR_TTL_S = 25 * 3600
#: Queue-depth samples draw the same last-hour chart, so they live as long as the per-minute keys.
STATS_DEPTH_TTL_S = 2 * 3600
#: Each dashboard samples queue depths this often; the per-minute lease keeps one sample a minute in all, and
#: four tries a minute keep the chart whole when the dashboard that took the minute's lease stops.
DEPTH_SAMPLE_S = 15.0

# -- the dashboard's actions (workbench/dashboard/actions.py) ---------------------------------------
#: How long a delete waits for a job a worker is taking right now to start (then it is stopped).
DASHBOARD_TAKING_WAIT_S = 3.0
#: Jobs stopped or deleted at once by a bulk action (each stop waits for its worker).
DASHBOARD_BULK_THREADS = 8
#: Most jobs one bulk request may name.
DASHBOARD_MAX_BULK = 1000
#: Ended jobs are deleted this many per pipeline when a registry is emptied.
DASHBOARD_PURGE_CHUNK = 500
#: A warm worker stop answers after this long, saying the worker is finishing its job if it has not left.
DASHBOARD_WORKER_STOP_WAIT_S = 2.0
#: A forced stop answers after this long: the worker stops its job first (failed or re-queued), then leaves.
DASHBOARD_WORKER_FORCE_WAIT_S = 6.0

# -- the dashboard's pages and lists ----------------------------------------------------------------
#: The batch page lists this many failed jobs with their errors.
DASHBOARD_FAILURES_SHOWN = 20
#: Largest page a list serves: a browser table of more rows is not read by anyone.
DASHBOARD_MAX_PER_PAGE = 500
#: The failed page and a batch's jobs: rows per page unless ?per_page= says otherwise.
DASHBOARD_PAGE_ROWS = 50
#: Parameters are shortened to this many characters in lists; the job page shows them whole.
DASHBOARD_PARAMS_SHOWN = 80

# -- the producer's output (workbench/console/producer_view.py) -------------------------------------
#: Short ids fit a table; `--full-ids` (and --json, always) show them whole.
SHORT_ID_CHARS = 12
#: A person reads a few ids; the rest are in the results table, the dashboard, or --json.
SHOWN_IDS = 20

# -- `make demo` (workbench/console/demo.py) --------------------------------------------------------
#: `make demo` runs four workers: enough to see jobs spread over them, few enough for a laptop.
DEMO_WORKERS = 4
#: The loopback page the demo's scrape job reads; workers are told to allow exactly this host.
DEMO_PAGE_PORT = 9182

# -- the supervisor and its workers (workbench/pool.py, worker.py, threaded.py) ---------------------
#: A worker that lived shorter than this is crash-looping (a bad import, a refused broker): back off.
QUICK_CRASH_S = 5.0
#: The pause before respawning a crash-looping worker: slow enough not to spin, quick enough to heal.
RESPAWN_BACKOFF_S = 1.0
#: RQ's own worker heartbeat (which extends a TTL of minutes) is skipped when the last was this recent.
HEARTBEAT_THROTTLE_S = 1.0
#: RQ's default job timeout, used for the supervisor's deadline when a job sets none.
DEFAULT_JOB_TIMEOUT_S = 180
#: A threaded worker writes an unchanged state again after this long (a broker that lost it gets it back).
STATE_REWRITE_S = 5.0
#: The live view of `consumer_main.py` redraws this often; each redraw reads every worker's record once.
CONSUMER_REFRESH_S = 1.0
#: How many (task, minute) maxima a worker remembers having sent (bounded: tasks can be many).
STATS_SENT_MAX_KEPT = 256
