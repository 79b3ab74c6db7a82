// The dashboard's pages, built from the JSON views with the text-only helpers of core.js.
// Page settings come from data-* attributes on <body>; no HTML is parsed from strings here.
(function () {
    "use strict";

    var WB = window.WB;
    var el = WB.el, urls = WB.urls, config = WB.config;

    // -- a job list with bulk selection, shared by Jobs, Failed, Search and a batch --------------
    function statusNode(job) {
        if (job.unreadable) {
            return el("span", {}, el("div", { class: "job-status unreadable", text: job.status }),
                el("div", { class: "unreadable-reason", text: job.unreadable }));
        }
        return el("span", {},
            el("div", { class: "job-status", text: job.abandoned ? "abandoned" : job.status }),
            job.abandoned ? el("div", { class: "abandoned", text: job.abandoned }) : null,
            WB.progressNode(job.status === "started" ? job.progress : null));
    }

    function JobTable(tableId, reload) {
        var table = document.getElementById(tableId);
        var tbody = table.querySelector("tbody");
        var bar = document.querySelector(".bulk-bar[data-table='" + tableId + "']");
        var selectAll = table.querySelector("input.select-all");
        var enableDelete = table.dataset.enableDelete === "yes";
        var selected = {};
        var expanded = {};
        var shown = [];

        function updateBar() {
            var count = Object.keys(selected).length;
            bar.querySelector(".selected-count").textContent = String(count);
            bar.querySelectorAll(".bulk-btn").forEach(function (button) { button.disabled = count === 0; });
            selectAll.checked = shown.length > 0 && shown.every(function (job) { return selected[job.id]; });
        }

        function actionButton(label, cls, onClick) {
            var button = el("button", { type: "button", class: "btn btn-sm " + cls, text: label });
            button.addEventListener("click", onClick);
            return button;
        }

        function act(what, url, needsConfirm) {
            return function () {
                var run = function () { WB.post(url).then(WB.reportAction(what)).then(reload); };
                if (needsConfirm) {
                    WB.confirmThen(what, run);
                } else {
                    run();
                }
            };
        }

        function errorCell(job) {
            if (!job.error) {
                return el("td", { class: "error-cell" });
            }
            var full = el("pre", { class: "exc_info" + (expanded[job.id] ? "" : " d-none"), text: job.exc_info || job.error });
            var line = el("a", { href: "#", class: "error-line", title: "Show or hide the traceback", text: job.error });
            line.addEventListener("click", function (event) {
                event.preventDefault();
                expanded[job.id] = !expanded[job.id];
                full.classList.toggle("d-none", !expanded[job.id]);
            });
            return el("td", { class: "error-cell" }, line, full);
        }

        function row(job) {
            var box = el("input", { type: "checkbox", class: "select-job", title: "Select " + job.id });
            box.checked = !!selected[job.id];
            box.addEventListener("change", function () {
                if (box.checked) {
                    selected[job.id] = true;
                } else {
                    delete selected[job.id];
                }
                updateBar();
            });
            var running = job.status === "started" && !job.abandoned;
            var ended = job.status === "failed" || job.status === "stopped";
            return el("tr", { "data-role": "job", "data-job-id": job.id, "data-status": job.status, class: job.unreadable ? "unreadable-row" : null },
                el("td", { class: "narrow" }, box),
                el("td", {},
                    el("span", { class: "description ellipsify", text: job.unreadable ? "(unreadable record)" : job.description }),
                    el("div", { class: "job_id" }, el("a", { href: urls.jobView(job.id), text: job.id })),
                    el("div", { class: "job-origin" },
                        job.origin ? el("span", { text: "queue " + job.origin }) : null,
                        job.batch ? el("span", {}, " · ", el("a", { href: urls.batchView(job.batch), text: "batch " + job.batch })) : null)),
                el("td", {}, el("div", { class: "task", text: job.task || "-" }), el("div", { class: "params", text: job.params || "" })),
                el("td", {}, statusNode(job)),
                el("td", { class: "narrow" }, el("span", { class: "creation_date", text: WB.relative(job.created_at) })),
                el("td", { class: "narrow wait", text: WB.span(job.wait_s) }),
                el("td", { class: "narrow duration", text: WB.span(job.duration_s) }),
                errorCell(job),
                el("td", { class: "actions narrow" },
                    ended ? actionButton("Requeue", "btn-outline-warning requeue-btn", act("requeue job", urls.requeueJob(job.id), false)) : null,
                    running ? actionButton("Stop", "btn-outline-secondary stop-btn", act("stop job " + job.id, urls.stopJob(job.id), true)) : null,
                    enableDelete ? actionButton("Delete", "btn-outline-danger delete-btn", act("delete job " + job.id, urls.deleteJob(job.id), true)) : null));
        }

        function bulk(action) {
            var ids = Object.keys(selected);
            var words = { requeue: "requeue", stop: "stop", delete: "delete" };
            WB.confirmThen(words[action] + " " + ids.length + " selected job(s)", function () {
                WB.post(urls.bulk(), { action: action, ids: ids }).then(WB.reportAction(words[action])).then(function () {
                    selected = {};
                    return reload();
                });
            });
        }

        bar.querySelectorAll(".bulk-btn").forEach(function (button) {
            button.addEventListener("click", function () { bulk(button.dataset.action); });
        });
        selectAll.addEventListener("change", function () {
            shown.forEach(function (job) {
                if (selectAll.checked) {
                    selected[job.id] = true;
                } else {
                    delete selected[job.id];
                }
            });
            render(shown);
        });

        function render(jobs) {
            shown = jobs;
            var present = {};
            jobs.forEach(function (job) { present[job.id] = true; });
            Object.keys(selected).forEach(function (id) { if (!present[id]) { delete selected[id]; } });
            WB.replaceRows(tbody, jobs.map(row), "No jobs.", 9);
            updateBar();
        }

        return { render: render, shownIds: function () { return shown.map(function (job) { return job.id; }); } };
    }

    // -- Queues ----------------------------------------------------------------------------
    function queuesPage() {
        var tbody = document.querySelector("table#queues tbody");
        WB.poll(function () {
            return WB.getJSON(urls.queues()).then(function (data) {
                WB.replaceRows(tbody, data.queues.map(function (q) {
                    var started = el("a", { href: q.started_url, text: q.started_job_registry_count });
                    var abandoned = q.abandoned_job_count ? el("span", { class: "abandoned", text: " (" + q.abandoned_job_count + " abandoned)" }) : null;
                    return el("tr", { "data-role": "queue", "data-queue": q.name },
                        el("td", { class: "queue-name", text: q.name }),
                        el("td", { class: "narrow" }, el("a", { href: q.queued_url, "data-role": "queued-count", text: q.count })),
                        el("td", { class: "narrow" }, el("a", { href: q.deferred_url, text: q.deferred_job_registry_count })),
                        el("td", { class: "narrow" }, el("a", { href: q.scheduled_url, text: q.scheduled_job_registry_count })),
                        el("td", { class: "narrow" }, started, abandoned),
                        el("td", { class: "narrow" }, el("a", { href: q.finished_url, "data-role": "finished-count", text: q.finished_job_registry_count })),
                        el("td", { class: "failed" }, el("a", { href: q.failed_url, "data-role": "failed-count", text: q.failed_job_registry_count })),
                        el("td", { class: "failed" }, el("a", { href: q.canceled_url, text: q.canceled_job_registry_count })),
                        el("td", { class: "narrow" }, el("a", { href: q.trends_url, text: q.finished_last_hour })),
                        el("td", { class: "narrow" }, el("a", { href: q.trends_url, text: q.failed_last_hour })));
                }), "No queues.", 10);
            });
        });
    }

    // -- Jobs of one queue's list ---------------------------------------------------------------
    function jobsPage() {
        var pages = document.querySelector("div#page-selection ul");
        var current = { queue: config.queue, registry: config.registry, perPage: config.perPage, order: config.order };
        var table = JobTable("jobs", reload);

        function pageLink(label, link, disabled, active) {
            var classes = "page-item" + (disabled ? " disabled" : "") + (active ? " active" : "");
            return el("li", { class: classes }, el("a", { class: "page-link", href: link ? link.url : "#", text: label }));
        }

        function renderPagination(p) {
            WB.clear(pages);
            var none = p.num_pages === 0;
            pages.appendChild(pageLink("«", p.first_page, none || p.current_page === 1));
            pages.appendChild(pageLink("‹", p.prev_page, !p.prev_page || none));
            p.pages_in_window.forEach(function (page) {
                pages.appendChild(pageLink(String(page.number), page, false, page.number === p.current_page));
            });
            pages.appendChild(pageLink("›", p.next_page, !p.next_page));
            pages.appendChild(pageLink("»", p.last_page, none || p.current_page === p.num_pages));
        }

        function reload() {
            var url = urls.jobs("data", current.queue, current.registry, current.perPage, current.order, config.pageNumber);
            return WB.getJSON(url).then(function (data) {
                table.render(data.jobs);
                document.getElementById("jobs-total").textContent = data.unreadable ? "unreadable: " + data.unreadable : String(data.total);
                renderPagination(data.pagination);
            });
        }

        function navigate() {
            var queue = document.getElementById("select-queue").value || "default";
            window.location.href = urls.jobs("view", queue, document.getElementById("select-registry").value,
                document.getElementById("select-per-page").value, document.getElementById("select-sort-order").value, 1);
        }

        ["select-queue", "select-registry", "select-sort-order", "select-per-page"].forEach(function (id) {
            document.getElementById(id).addEventListener("change", navigate);
        });
        document.querySelectorAll("a.action-btn").forEach(function (button) {
            button.addEventListener("click", function (event) {
                event.preventDefault();
                WB.confirmThen(button.dataset.confirm, function () {
                    WB.post(button.getAttribute("href")).then(WB.reportAction(button.dataset.confirm)).then(reload);
                });
            });
        });
        WB.poll(reload);
    }

    // -- Failed, all queues -------------------------------------------------------------------
    function failedPage() {
        var page = 1;
        var table = JobTable("failed-jobs", reload);
        var queue = document.getElementById("failed-queue");
        var task = document.getElementById("failed-task");
        var older = document.getElementById("failed-older");
        var newer = document.getElementById("failed-newer");
        var shownButton = document.getElementById("requeue-shown-btn");
        var more = false;

        function reload() {
            var query = "?page=" + page + "&queue=" + encodeURIComponent(queue.value) + "&task=" + encodeURIComponent(task.value);
            return WB.getJSON(urls.prefix + "/data/failed.json" + query).then(function (data) {
                table.render(data.jobs);
                more = data.more;
                shownButton.disabled = data.jobs.length === 0;
                document.getElementById("failed-page").textContent = "Page " + page;
                older.parentNode.classList.toggle("disabled", !more);
                newer.parentNode.classList.toggle("disabled", page === 1);
                document.getElementById("failed-total").textContent = data.total === null
                    ? "Counting every match takes too long here; page through them."
                    : data.total + " in all.";
            });
        }

        [queue, task].forEach(function (select) {
            select.addEventListener("change", function () { page = 1; reload(); });
        });
        older.addEventListener("click", function (event) { event.preventDefault(); if (more) { page++; reload(); } });
        newer.addEventListener("click", function (event) { event.preventDefault(); if (page > 1) { page--; reload(); } });
        shownButton.addEventListener("click", function () {
            var ids = table.shownIds();
            WB.confirmThen("requeue the " + ids.length + " job(s) shown", function () {
                WB.post(urls.bulk(), { action: "requeue", ids: ids }).then(WB.reportAction("requeue")).then(reload);
            });
        });
        WB.poll(reload);
    }

    // -- Search ---------------------------------------------------------------------------------
    // Each request searches for a fraction of a second; the page asks again from where the last one
    // stopped until every list was searched (or enough was found), showing matches as they come.
    function searchPage() {
        var table = JobTable("search-jobs", reload);
        var summary = document.getElementById("search-summary");
        var limit = 100;
        var generation = 0;
        var rows = [];

        function reload() {
            generation++;
            rows = [];
            if (!config.query) {
                summary.textContent = "Type a job id, a task name or text in the box above.";
                table.render([]);
                return Promise.resolve();
            }
            return step(null, generation);
        }

        function step(from, mine) {
            var url = urls.prefix + "/data/search.json?q=" + encodeURIComponent(config.query) + (from ? "&from=" + encodeURIComponent(from) : "");
            return WB.getJSON(url).then(function (data) {
                if (mine !== generation) {
                    return;
                }
                data.jobs.forEach(function (job) {
                    if (!rows.some(function (row) { return row.id === job.id; })) {
                        rows.push(job);
                    }
                });
                table.render(rows);
                if (data.next && rows.length < limit) {
                    summary.textContent = rows.length + " found so far; searched " + data.scanned + " of " + data.total + " jobs...";
                    return step(data.next, mine);
                }
                summary.textContent = rows.length + " found for \u201c" + data.query + "\u201d; " + (data.complete
                    ? "searched all " + data.total + " jobs."
                    : "showing the first " + rows.length + "; be more specific to see others.");
            }, function (error) {
                summary.textContent = error.message;
            });
        }
        reload();
    }

    // -- Batches ---------------------------------------------------------------------------------
    function progressBar(fraction) {
        return el("span", { class: "job-progress" }, el("progress", { max: "1", value: String(fraction) }),
            " ", el("span", { text: Math.round(fraction * 100) + "%" }));
    }

    function paramsText(params) {
        return Object.keys(params || {}).map(function (k) { return k + "=" + JSON.stringify(params[k]); }).join(", ");
    }

    function batchesPage() {
        var tbody = document.querySelector("table#batches tbody");
        WB.poll(function () {
            return WB.getJSON(urls.prefix + "/data/batches.json").then(function (data) {
                WB.replaceRows(tbody, data.batches.map(function (b) {
                    return el("tr", { "data-role": "batch", "data-batch-id": b.id },
                        el("td", {}, el("a", { href: urls.batchView(b.id), text: b.id })),
                        el("td", {}, el("div", { class: "task", text: b.task }), el("div", { class: "params", text: paramsText(b.params) + (b.split > 1 ? " in " + b.split + " chunks" : "") }),
                            b.unreadable ? el("div", { class: "unreadable-reason", text: "unreadable: " + b.unreadable }) : null),
                        el("td", { text: b.queue }),
                        el("td", { class: "narrow", text: b.total }),
                        el("td", {}, progressBar(b.progress), " ", el("span", { class: "batch-done", text: b.done + "/" + b.total })),
                        el("td", { class: "narrow failed", text: b.failed }),
                        el("td", { class: "narrow", text: WB.relative(b.created_at) }),
                        el("td", { class: "narrow", text: WB.span(b.wall_s) }),
                        el("td", { class: "narrow", text: b.speedup ? b.speedup + "×" : "-" }));
                }), "No batches yet: enqueue some with producer_main.py.", 9);
            });
        });
    }

    function batchPage() {
        var page = 1;
        var pages = 1;
        var table = JobTable("batch-jobs", reload);
        var fields = {};
        document.querySelectorAll("#batch-summary [data-field]").forEach(function (node) { fields[node.dataset.field] = node; });

        function set(name, value) {
            WB.clear(fields[name]).appendChild(typeof value === "object" && value !== null ? value : document.createTextNode(value === null || value === undefined ? "-" : String(value)));
        }

        function reload() {
            return WB.getJSON(urls.prefix + "/data/batch/" + encodeURIComponent(config.batchId) + ".json?page=" + page).then(function (b) {
                pages = b.pages;
                set("task", b.unreadable ? b.task + " (unreadable: " + b.unreadable + ")" : b.task);
                set("params", paramsText(b.params));
                set("queue", b.queue);
                set("total", b.total);
                set("split", b.split > 1 ? "(a split in " + b.split + " chunks, then the combining job)" : "");
                set("created_at", WB.stamp(b.created_at));
                set("progress", el("span", {}, progressBar(b.progress), " ", el("span", { class: "batch-done", text: b.done + " of " + b.total + " done" + (b.complete ? "" : ", running") })));
                set("counts", Object.keys(b.counts).sort().map(function (k) { return k + " " + b.counts[k]; }).join(" · "));
                set("wall_s", WB.span(b.wall_s) + (b.complete ? "" : " so far"));
                set("busy_s", WB.span(b.busy_s));
                set("speedup", b.speedup ? b.speedup + "×" : "-");
                set("combined", b.combined ? "count " + b.combined.count + "; chunk time " + WB.span(b.combined.chunk_time_s) +
                    ", span " + WB.span(b.combined.span_s) + ", speed-up " + b.combined.speedup + "×" : "-");
                var failures = document.getElementById("batch-failures");
                WB.clear(failures);
                if (b.failures.length === 0) {
                    failures.appendChild(el("li", { text: "None." }));
                }
                b.failures.forEach(function (job) {
                    failures.appendChild(el("li", { "data-role": "failure" }, el("a", { href: urls.jobView(job.id), text: job.id }), ": ",
                        el("span", { class: "error-line", text: job.error || job.unreadable || job.status })));
                });
                table.render(b.jobs);
                document.getElementById("batch-page").textContent = "Page " + page + " of " + pages;
            });
        }

        document.getElementById("batch-prev").addEventListener("click", function (e) { e.preventDefault(); if (page > 1) { page--; reload(); } });
        document.getElementById("batch-next").addEventListener("click", function (e) { e.preventDefault(); if (page < pages) { page++; reload(); } });
        WB.poll(reload);
    }

    // -- Trends ------------------------------------------------------------------------------
    var ENDED_SERIES = [
        { key: "finished", label: "finished", cls: "finished" },
        { key: "failed", label: "failed", cls: "failed" },
        { key: "stopped", label: "stopped", cls: "stopped" },
        { key: "retried", label: "retried", cls: "retried" }
    ];

    function trendsPage() {
        var charts = document.getElementById("queue-charts");
        var tbody = document.querySelector("table#task-durations tbody");

        function seconds(value) {
            return value === null || value === undefined ? "-" : WB.span(value);
        }

        WB.poll(function () {
            return WB.getJSON(urls.prefix + "/data/trends.json").then(function (data) {
                WB.clear(charts);
                if (data.queues.length === 0) {
                    charts.appendChild(el("p", { text: "No queues yet." }));
                }
                data.queues.forEach(function (q) {
                    var ended = 0;
                    q.minutes.forEach(function (m) { ended += m.finished + m.failed + m.stopped + m.retried; });
                    charts.appendChild(el("div", { class: "queue-chart", "data-queue": q.name },
                        el("h3", { text: q.name }),
                        el("p", { class: "chart-caption" }, "Jobs ended per minute (", el("span", { class: "legend finished", text: "finished" }), ", ",
                            el("span", { class: "legend failed", text: "failed" }), ", ", el("span", { class: "legend stopped", text: "stopped" }), ", ",
                            el("span", { class: "legend retried", text: "retried" }), "): ", el("span", { class: "ended-total", text: ended }), " in the last hour."),
                        WB.charts.bars(q.minutes, ENDED_SERIES, q.name + ": jobs ended per minute"),
                        el("p", { class: "chart-caption", text: "Queue depth (jobs waiting), sampled once a minute:" }),
                        WB.charts.line(q.minutes, "queued", "queued", "depth", q.name + ": queue depth")));
                });
                WB.replaceRows(tbody, data.tasks.map(function (t) {
                    return el("tr", { "data-role": "task", "data-task": t.task },
                        el("td", { text: t.task }),
                        el("td", { class: "narrow", text: t.hour.count }), el("td", { class: "narrow", text: seconds(t.hour.p50_s) }),
                        el("td", { class: "narrow", text: seconds(t.hour.p95_s) }), el("td", { class: "narrow", text: seconds(t.hour.max_s) }),
                        el("td", { class: "narrow", text: t.day.count }), el("td", { class: "narrow", text: seconds(t.day.p50_s) }),
                        el("td", { class: "narrow", text: seconds(t.day.p95_s) }), el("td", { class: "narrow", text: seconds(t.day.max_s) }));
                }), "No job has ended yet.", 9);
            });
        });
    }

    // -- One job -------------------------------------------------------------------------------
    function jobPage() {
        var jobId = config.jobId;
        var fields = {};
        document.querySelectorAll("#job-data [data-field]").forEach(function (node) {
            fields[node.dataset.field] = node;
        });
        var requeue = document.getElementById("requeue-job-btn");
        var restart = document.getElementById("restart-job-btn");
        var stop = document.getElementById("stop-job-btn");
        var remove = document.getElementById("delete-job-btn");
        var unreadable = document.getElementById("job-unreadable");

        function setText(name, value) {
            fields[name].textContent = value === null || value === undefined ? "-" : String(value);
        }

        function render(job) {
            unreadable.classList.toggle("d-none", !job.unreadable);
            unreadable.textContent = job.unreadable ? "This job's record is " + job.status + ": " + job.unreadable : "";
            setText("description", job.description);
            setText("task", job.task);
            setText("params_json", job.params_json || job.params);
            setText("origin", job.origin);
            setText("status", job.abandoned ? "abandoned (" + job.abandoned + "); RQ still lists it as started" : job.status);
            setText("worker_name", job.worker_name);
            setText("result", job.result === undefined ? "-" : JSON.stringify(job.result, null, 2));
            setText("metadata", job.metadata);
            setText("exc_info", job.exc_info);
            setText("error", job.error);
            setText("wait_s", WB.span(job.wait_s));
            setText("duration_s", WB.span(job.duration_s) + (job.status === "started" ? " so far" : ""));
            ["created_at", "enqueued_at", "started_at", "ended_at"].forEach(function (name) {
                setText(name, WB.stamp(job[name]));
            });
            WB.clear(fields.batch).appendChild(job.batch ? el("a", { href: urls.batchView(job.batch), text: job.batch }) : document.createTextNode("-"));
            var progress = WB.progressNode(job.progress);
            fields.progress.textContent = progress ? "" : "-";
            if (progress) {
                fields.progress.appendChild(progress);
            }
            var list = WB.clear(document.getElementById("job-depends-on"));
            (job.depends_on || []).forEach(function (dep, i) {
                var active = job.depends_on_status[i] === "active";
                list.appendChild(el("li", { "data-role": "dependency" },
                    active ? el("a", { href: urls.jobView(dep), text: dep }) : el("span", { text: dep + " (expired)" })));
            });
            var ended = job.status === "failed" || job.status === "stopped";
            requeue.classList.toggle("d-none", !ended);
            stop.classList.toggle("d-none", job.status !== "started" || !!job.abandoned);
            // issue 19: Requeue resumes from the checkpoint; "Restart from zero" discards it first.
            var saved = job.checkpoint;
            setText("checkpoint", saved ? (saved.fraction === null ? "?" : Math.round(saved.fraction * 100) + "%") +
                " saved " + WB.relative(saved.saved_at) + " (" + saved.bytes + " bytes, " + saved.writes + " writes)" : null);
            requeue.textContent = ended && saved ? "Requeue (resume)" : "Requeue";
            restart.classList.toggle("d-none", !(ended && saved));
        }

        requeue.addEventListener("click", function () {
            WB.post(urls.requeueJob(jobId)).then(WB.reportAction("requeue"));
        });
        restart.addEventListener("click", function () {
            WB.confirmThen("restart this job from zero, discarding its checkpoint", function () {
                WB.post(urls.restartJob(jobId)).then(WB.reportAction("restart from zero"));
            });
        });
        stop.addEventListener("click", function () {
            WB.confirmThen("stop this job", function () {
                WB.notice("Stopping job " + jobId + "...", "info");
                WB.post(urls.stopJob(jobId)).then(WB.reportAction("stop"));
            });
        });
        if (remove) {
            remove.addEventListener("click", function () {
                WB.confirmThen("delete job", function () {
                    WB.post(urls.deleteJob(jobId)).then(WB.reportAction("delete")).then(function (answer) {
                        if (answer.status === "OK") {
                            window.location.href = urls.queuesView();
                        }
                    });
                });
            });
        }
        WB.poll(function () { return WB.getJSON(urls.job(jobId)).then(render); });
    }

    // -- Workers ---------------------------------------------------------------------------------
    function workersPage() {
        var tbody = document.querySelector("table#workers tbody");

        function stopButton(w, force) {
            var button = el("button", { type: "button", class: "btn btn-sm " + (force ? "btn-outline-danger force-stop-btn" : "btn-outline-secondary stop-worker-btn"),
                text: force ? "Force stop" : "Stop" });
            button.addEventListener("click", function () {
                WB.confirmThen((force ? "force-stop" : "stop") + " worker " + w.name, function () {
                    WB.notice("Stopping worker " + w.name + "...", "info");
                    WB.post(urls.stopWorker(w.name, force)).then(WB.reportAction("stop worker"));
                });
            });
            return button;
        }

        function load() {
            return WB.getJSON(urls.workers()).then(function (data) {
                WB.replaceRows(tbody, data.workers.map(function (w) {
                    if (w.unreadable) {
                        return el("tr", { "data-role": "worker", "data-worker": w.name, class: "unreadable-row" },
                            el("td", { text: w.name }), el("td", { colspan: "12", class: "unreadable-reason", text: "unreadable: " + w.unreadable }));
                    }
                    var job = w.current_job_id
                        ? el("span", {}, el("a", { href: urls.jobView(w.current_job_id), text: w.current_job_id }),
                            el("div", { class: "description", text: w.job_unreadable ? "(unreadable record)" : w.description }),
                            w.job_running_s !== null ? el("div", { class: "job-running", text: "running for " + WB.span(w.job_running_s) }) : null,
                            w.current_job_ids && w.current_job_ids.length > 1
                                ? el("div", { class: "more-jobs", text: "+" + (w.current_job_ids.length - 1) + " more at once" }) : null)
                        : "-";
                    return el("tr", { "data-role": "worker", "data-worker": w.name },
                        el("td", { class: "worker-name", text: w.name }),
                        el("td", { class: "worker-host" }, el("div", { text: w.hostname || "-" }),
                            w.address && w.address !== "?" ? el("div", { class: "worker-address", text: w.address }) : null),
                        el("td", { class: "narrow worker-pid", text: w.pid === null ? "-" : w.pid }),
                        el("td", { class: "worker-state", text: w.state + (w.stopping ? " (stopping)" : "") }),
                        el("td", { class: "narrow worker-uptime", text: WB.span(w.uptime_s) }),
                        el("td", { class: "narrow worker-cpu", text: w.cpu_percent === null ? "-" : w.cpu_percent.toFixed(0) + "%" }),
                        el("td", { class: "narrow worker-memory", text: WB.bytes(w.rss_bytes) }),
                        el("td", {}, job),
                        el("td", { class: "worker-progress", text: w.progress }),
                        el("td", { class: "narrow", text: w.successful_job_count }),
                        el("td", { class: "narrow", text: w.failed_job_count }),
                        el("td", { text: w.queues.join(", ") }),
                        el("td", { class: "actions narrow" }, stopButton(w, false), stopButton(w, true)));
                }), "No workers.", 13);
            });
        }
        WB.poll(load);
    }

    // -- every page ------------------------------------------------------------------------------
    var instances = document.getElementById("rq-instances");
    if (instances) {
        instances.addEventListener("change", function () {
            var selected = instances.options[instances.selectedIndex].dataset.instanceNumber;
            var rest = window.location.pathname.slice(1);
            window.location.pathname = selected + rest.slice(rest.indexOf("/"));
        });
    }
    var autorefreshSwitch = document.getElementById("autorefresh-switch");
    if (autorefreshSwitch) {
        autorefreshSwitch.addEventListener("change", function () {
            WB.state.autorefresh = autorefreshSwitch.checked;
        });
    }

    var pages = {
        queues: queuesPage, jobs: jobsPage, failed: failedPage, search: searchPage, batches: batchesPage,
        batch: batchPage, trends: trendsPage, job: jobPage, workers: workersPage
    };
    if (pages[config.page]) {
        pages[config.page]();
    }
})();
