// The workbench's replacement for rq-dashboard's inline page scripts.
//
// rq-dashboard rendered job descriptions, metadata, results, tracebacks, queue names and worker
// call strings through unescaped underscore templates parsed as HTML (stored XSS, upstream #526),
// which also needed inline scripts and string-to-code compilation. Here every value read from the
// broker reaches the page as a DOM text node or a checked same-site link, and this file is the only
// script: the CSP forbids inline code and code from strings. Page settings come from data-*
// attributes on <body>. No HTML is ever parsed from a string here (a test keeps it that way).
(function () {
    "use strict";

    var body = document.body;
    var config = body.dataset;
    var prefix = config.urlPrefix + config.instance;
    var pollInterval = parseInt(config.pollInterval, 10) || 2500;
    var autorefresh = true;

    // -- building DOM from data, as text only ------------------------------------------
    function el(tag, attrs) {
        var node = document.createElement(tag);
        Object.keys(attrs || {}).forEach(function (name) {
            if (name === "text") {
                node.textContent = attrs.text === null || attrs.text === undefined ? "" : String(attrs.text);
            } else if (name === "href") {
                node.setAttribute("href", safeHref(attrs.href));
            } else {
                node.setAttribute(name, attrs[name]);
            }
        });
        for (var i = 2; i < arguments.length; i++) {
            if (arguments[i] !== null && arguments[i] !== undefined) {
                node.appendChild(typeof arguments[i] === "string" ? document.createTextNode(arguments[i]) : arguments[i]);
            }
        }
        return node;
    }

    // Links the server builds are site-relative paths; anything else (javascript:, //host) becomes inert.
    function safeHref(url) {
        url = String(url || "");
        return url.charAt(0) === "/" && url.charAt(1) !== "/" ? url : "#";
    }

    function replaceRows(tbody, rows, emptyText, columns) {
        while (tbody.firstChild) {
            tbody.removeChild(tbody.firstChild);
        }
        if (rows.length === 0) {
            tbody.appendChild(el("tr", {}, el("td", { colspan: String(columns), text: emptyText })));
        }
        rows.forEach(function (row) {
            tbody.appendChild(row);
        });
    }

    function progressNode(progress) {
        if (!progress || typeof progress.fraction !== "number") {
            return null;
        }
        var label = Math.round(progress.fraction * 100) + "%" + (progress.note ? " " + progress.note : "") +
            (progress.resumed ? " · " + progress.resumed : "");  // a job that carried on from a checkpoint
        return el("span", { class: "job-progress" },
            el("progress", { max: "1", value: String(progress.fraction) }), " ", el("span", { text: label }));
    }

    function relative(iso) {
        if (!iso) {
            return "-";
        }
        var seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
        if (isNaN(seconds)) {
            return String(iso);
        }
        var units = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
        for (var i = 0; i < units.length; i++) {
            var n = Math.floor(Math.abs(seconds) / units[i][0]);
            if (n >= 1 || units[i][0] === 1) {
                var text = n + " " + units[i][1] + (n === 1 ? "" : "s");
                return seconds >= 0 ? text + " ago" : "in " + text;
            }
        }
    }

    function stamp(iso) {
        return iso ? relative(iso) + " / " + new Date(iso).toLocaleString() : "-";
    }

    // -- talking to the server -----------------------------------------------------------
    function getJSON(url) {
        return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
            if (!response.ok) {
                throw new Error(url + " answered " + response.status);
            }
            return response.json();
        });
    }

    // State changes are POSTs from this origin only; the server refuses anything else.
    function post(url) {
        return fetch(url, { method: "POST", credentials: "same-origin", cache: "no-store" }).then(function (r) {
            return r.json().catch(function () { return { status: "ERROR" }; });
        });
    }

    function confirmThen(action, callback) {
        var modal = $("#confirmation-modal");
        $("#confirmation-modal-action").text(action);
        $("#confirmation-modal-yes").off("click").on("click", function () {
            modal.modal("hide");
            callback();
        });
        $("#confirmation-modal-no").off("click").on("click", function () {
            modal.modal("hide");
        });
        modal.modal("show");
    }

    function poll(load) {
        var loop = function () {
            var next = function () { setTimeout(loop, pollInterval); };
            if (autorefresh) {
                load().then(next, next);
            } else {
                next();
            }
        };
        loop();
    }

    var urls = {
        queues: function () { return prefix + "/data/queues.json"; },
        workers: function () { return prefix + "/data/workers.json"; },
        queuesView: function () { return prefix + "/view/queues"; },
        job: function (id) { return prefix + "/data/job/" + encodeURIComponent(id) + ".json"; },
        jobView: function (id) { return prefix + "/view/job/" + encodeURIComponent(id); },
        deleteJob: function (id) { return config.urlPrefix + "job/" + encodeURIComponent(id) + "/delete"; },
        requeueJob: function (id) { return config.urlPrefix + "job/" + encodeURIComponent(id) + "/requeue"; },
        restartJob: function (id) { return config.urlPrefix + "job/" + encodeURIComponent(id) + "/restart"; },
        jobs: function (kind, queue, registry, perPage, order, page) {
            return prefix + "/" + kind + "/jobs/" + [queue, registry, perPage, order, page].map(encodeURIComponent).join("/") +
                (kind === "data" ? ".json" : "");
        }
    };

    // -- pages -----------------------------------------------------------------------------
    function queuesPage() {
        var tbody = document.querySelector("table#queues tbody");
        poll(function () {
            return getJSON(urls.queues()).then(function (data) {
                replaceRows(tbody, data.queues.map(function (q) {
                    var started = el("a", { href: q.started_url, text: q.started_job_registry_count });
                    var abandoned = q.abandoned_job_count ? el("span", { class: "abandoned", text: " (" + q.abandoned_job_count + " abandoned)" }) : null;
                    return el("tr", { "data-role": "queue", "data-queue": q.name },
                        el("td", { class: "queue-name", text: q.name }),
                        el("td", { class: "narrow" }, el("a", { href: q.queued_url, "data-role": "queued-count", text: q.count })),
                        el("td", { class: "narrow" }, el("a", { href: q.deferred_url, text: q.deferred_job_registry_count })),
                        el("td", { class: "narrow" }, el("a", { href: q.scheduled_url, text: q.scheduled_job_registry_count })),
                        el("td", { class: "narrow" }, started, abandoned),
                        el("td", { class: "narrow" }, el("a", { href: q.finished_url, text: q.finished_job_registry_count })),
                        el("td", { class: "failed" }, el("a", { href: q.failed_url, text: q.failed_job_registry_count })),
                        el("td", { class: "failed" }, el("a", { href: q.canceled_url, text: q.canceled_job_registry_count })));
                }), "No queues.", 8);
            });
        });
    }

    function statusNode(job) {
        return el("span", {},
            el("div", { class: "job-status", text: job.abandoned ? "abandoned" : job.status }),
            job.abandoned ? el("div", { class: "abandoned", text: job.abandoned }) : null,
            progressNode(job.status === "started" ? job.progress : null));
    }

    function jobsPage() {
        var tbody = document.querySelector("table#jobs tbody");
        var enableDelete = document.querySelector("table#jobs").dataset.enableDelete === "yes";
        var pages = document.querySelector("div#page-selection ul");
        var current = { queue: config.queue, registry: config.registry, perPage: config.perPage, order: config.order };

        function actionButton(label, role, url) {
            var button = el("a", { href: "#", class: "btn btn-sm " + role, text: label });
            button.addEventListener("click", function (event) {
                event.preventDefault();
                var done = function () { reload(); };
                if (role.indexOf("danger") >= 0) {
                    confirmThen("delete job", function () { post(url).then(done); });
                } else {
                    post(url).then(done);
                }
            });
            return button;
        }

        function row(job) {
            return el("tr", { "data-role": "job", "data-job-id": job.id },
                el("td", {},
                    el("span", { class: "description ellipsify", text: job.description }),
                    el("div", { class: "job_id" }, el("a", { href: urls.jobView(job.id), text: job.id })),
                    job.exc_info ? el("pre", { class: "exc_info", text: job.exc_info }) : null),
                el("td", {}, statusNode(job)),
                el("td", {}, el("span", { class: "creation_date", text: relative(job.created_at) })),
                el("td", { class: "actions narrow" },
                    job.exc_info ? actionButton("Requeue", "btn-outline-warning", urls.requeueJob(job.id)) : null,
                    enableDelete ? actionButton("Delete", "btn-outline-danger", urls.deleteJob(job.id)) : null));
        }

        function pageLink(label, link, disabled, active) {
            var classes = "page-item" + (disabled ? " disabled" : "") + (active ? " active" : "");
            return el("li", { class: classes }, el("a", { class: "page-link", href: link ? link.url : "#", text: label }));
        }

        function renderPagination(p) {
            while (pages.firstChild) {
                pages.removeChild(pages.firstChild);
            }
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
            return getJSON(url).then(function (data) {
                replaceRows(tbody, data.jobs.map(row), "No jobs.", 4);
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
                confirmThen(button.dataset.confirm, function () { post(button.getAttribute("href")).then(reload); });
            });
        });
        poll(reload);
    }

    function jobPage() {
        var jobId = config.jobId;
        var fields = {};
        document.querySelectorAll("#job-data [data-field]").forEach(function (node) {
            fields[node.dataset.field] = node;
        });
        var requeue = document.getElementById("requeue-job-btn");
        var restart = document.getElementById("restart-job-btn");
        var remove = document.getElementById("delete-job-btn");

        function setText(name, value) {
            fields[name].textContent = value === null || value === undefined ? "-" : String(value);
        }

        function render(job) {
            setText("description", job.description);
            setText("origin", job.origin);
            setText("status", job.abandoned ? "abandoned (" + job.abandoned + "); RQ still lists it as started" : job.status);
            setText("worker_name", job.worker_name);
            setText("result", JSON.stringify(job.result, null, 2));
            setText("metadata", job.metadata);
            setText("exc_info", job.exc_info);
            ["created_at", "enqueued_at", "started_at", "ended_at"].forEach(function (name) {
                setText(name, stamp(job[name]));
            });
            var progress = progressNode(job.progress);
            fields.progress.textContent = progress ? "" : "-";
            if (progress) {
                fields.progress.appendChild(progress);
            }
            var list = document.getElementById("job-depends-on");
            while (list.firstChild) {
                list.removeChild(list.firstChild);
            }
            (job.depends_on || []).forEach(function (dep, i) {
                var active = job.depends_on_status[i] === "active";
                list.appendChild(el("li", { "data-role": "dependency" },
                    active ? el("a", { href: urls.jobView(dep), text: dep }) : el("span", { text: dep + " (expired)" })));
            });
            var ended = job.status === "failed" || job.status === "stopped";
            requeue.classList.toggle("d-none", !ended);
            // Requeue resumes from the checkpoint; "Restart from zero" discards it first.
            var saved = job.checkpoint;
            setText("checkpoint", saved ? (saved.fraction === null ? "?" : Math.round(saved.fraction * 100) + "%") +
                " saved " + relative(saved.saved_at) + " (" + saved.bytes + " bytes, " + saved.writes + " writes)" : null);
            requeue.textContent = ended && saved ? "Requeue (resume)" : "Requeue";
            restart.classList.toggle("d-none", !(ended && saved));
        }

        requeue.addEventListener("click", function () {
            post(urls.requeueJob(jobId));
        });
        restart.addEventListener("click", function () {
            confirmThen("restart this job from zero, discarding its checkpoint", function () {
                post(urls.restartJob(jobId));
            });
        });
        if (remove) {
            remove.addEventListener("click", function () {
                confirmThen("delete job", function () {
                    post(urls.deleteJob(jobId)).then(function () { window.location.href = urls.queuesView(); });
                });
            });
        }
        poll(function () { return getJSON(urls.job(jobId)).then(render); });
    }

    function workersPage() {
        var tbody = document.querySelector("table#workers tbody");
        poll(function () {
            return getJSON(urls.workers()).then(function (data) {
                replaceRows(tbody, data.workers.map(function (w) {
                    var job = w.current_job
                        ? el("span", {}, el("a", { href: urls.jobView(w.current_job), text: w.current_job }),
                            w.description ? el("div", { class: "description", text: w.description }) : null)
                        : "-";
                    return el("tr", { "data-role": "worker", "data-worker": w.name },
                        el("td", { text: w.name }),
                        el("td", { class: "worker-state", text: w.state }),
                        el("td", {}, job),
                        el("td", { class: "worker-progress", text: w.progress }),
                        el("td", { class: "narrow", text: w.successful_job_count }),
                        el("td", { class: "narrow", text: w.failed_job_count }),
                        el("td", { text: w.queues.join(", ") }));
                }), "No workers.", 7);
            });
        });
    }

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
            autorefresh = autorefreshSwitch.checked;
        });
    }

    var pages = { queues: queuesPage, jobs: jobsPage, job: jobPage, workers: workersPage };
    if (pages[config.page]) {
        pages[config.page]();
    }
})();
