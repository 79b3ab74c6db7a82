// The workbench dashboard's shared helpers (window.WB), used by charts.js and dashboard.js.
//
// rq-dashboard rendered job descriptions, metadata, results, tracebacks, queue names and worker
// call strings through unescaped templates parsed as HTML (stored XSS, upstream #526), which also
// needed inline scripts and string-to-code compilation. Here every value read from the broker
// reaches the page as a DOM text node or a checked same-site link, and these static files are the
// only scripts: the CSP forbids inline code and code from strings. No HTML is ever parsed from a
// string here (a test keeps it that way).
(function () {
    "use strict";

    var body = document.body;
    var config = body.dataset;
    var prefix = config.urlPrefix + config.instance;
    var state = { autorefresh: true };

    // -- building DOM from data, as text only ------------------------------------------
    function el(tag, attrs) {
        var node = document.createElement(tag);
        Object.keys(attrs || {}).forEach(function (name) {
            if (name === "text") {
                node.textContent = attrs.text === null || attrs.text === undefined ? "" : String(attrs.text);
            } else if (name === "href") {
                node.setAttribute("href", safeHref(attrs.href));
            } else if (attrs[name] !== null && attrs[name] !== undefined) {
                node.setAttribute(name, attrs[name]);
            }
        });
        for (var i = 2; i < arguments.length; i++) {
            append(node, arguments[i]);
        }
        return node;
    }

    function append(node, child) {
        if (child === null || child === undefined) {
            return;
        }
        if (Array.isArray(child)) {
            child.forEach(function (c) { append(node, c); });
            return;
        }
        node.appendChild(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
    }

    // Links the server builds are site-relative paths; anything else (javascript:, //host) becomes inert.
    function safeHref(url) {
        url = String(url || "");
        return url.charAt(0) === "/" && url.charAt(1) !== "/" ? url : "#";
    }

    function clear(node) {
        while (node.firstChild) {
            node.removeChild(node.firstChild);
        }
        return node;
    }

    function replaceRows(tbody, rows, emptyText, columns) {
        clear(tbody);
        if (rows.length === 0) {
            tbody.appendChild(el("tr", { "data-role": "empty" }, el("td", { colspan: String(columns), text: emptyText })));
        }
        rows.forEach(function (row) {
            tbody.appendChild(row);
        });
    }

    // -- formatting ----------------------------------------------------------------------
    function relative(iso) {
        if (!iso) {
            return "-";
        }
        var seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
        if (isNaN(seconds)) {
            return String(iso);
        }
        return seconds >= 0 ? span(seconds) + " ago" : "in " + span(-seconds);
    }

    function span(seconds) {
        if (seconds === null || seconds === undefined || isNaN(seconds)) {
            return "-";
        }
        if (seconds < 1) {
            return Math.round(seconds * 1000) + " ms";
        }
        if (seconds < 60) {
            return (seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)) + " s";
        }
        var units = [[86400, "d"], [3600, "h"], [60, "min"]];
        for (var i = 0; i < units.length; i++) {
            if (seconds >= units[i][0]) {
                var whole = Math.floor(seconds / units[i][0]);
                var rest = i < units.length - 1 ? Math.floor((seconds % units[i][0]) / units[i + 1][0]) : Math.round(seconds % 60);
                return whole + " " + units[i][1] + (rest ? " " + rest + " " + (i < units.length - 1 ? units[i + 1][1] : "s") : "");
            }
        }
        return Math.round(seconds) + " s";
    }

    function bytes(n) {
        if (n === null || n === undefined) {
            return "-";
        }
        var units = ["B", "KiB", "MiB", "GiB"];
        var i = 0;
        while (n >= 1024 && i < units.length - 1) {
            n /= 1024;
            i++;
        }
        return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
    }

    function stamp(iso) {
        return iso ? relative(iso) + " / " + new Date(iso).toLocaleString() : "-";
    }

    function progressNode(progress) {
        if (!progress || typeof progress.fraction !== "number") {
            return null;
        }
        var label = Math.round(progress.fraction * 100) + "%" + (progress.note ? " " + progress.note : "") +
            (progress.resumed ? " · " + progress.resumed : "");  // issue 19: a job that carried on from a checkpoint
        return el("span", { class: "job-progress" },
            el("progress", { max: "1", value: String(progress.fraction) }), " ", el("span", { text: label }));
    }

    // -- talking to the server -----------------------------------------------------------
    function getJSON(url) {
        return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (response) {
            return response.json().catch(function () { return {}; }).then(function (data) {
                if (!response.ok) {
                    var error = new Error(data.error || (url + " answered " + response.status));
                    error.status = response.status;
                    error.data = data;
                    throw error;
                }
                return data;
            });
        });
    }

    // State changes are POSTs from this origin only; the server refuses anything else.
    function post(url, payload) {
        var options = { method: "POST", credentials: "same-origin", cache: "no-store" };
        if (payload !== undefined) {
            options.headers = { "Content-Type": "application/json" };
            options.body = JSON.stringify(payload);
        }
        return fetch(url, options).then(function (r) {
            return r.json().catch(function () { return { status: "ERROR", error: "the dashboard answered " + r.status }; });
        });
    }

    // One line above the page's content: what an action did, or why it did not.
    function notice(text, kind) {
        var box = document.getElementById("notice");
        if (!box) {
            return;
        }
        box.className = "alert alert-" + (kind || "info");
        box.textContent = text;
    }

    function reportAction(what) {
        return function (answer) {
            if (answer.status === "OK") {
                notice(answer.message || (what + ": done."), "success");
            } else if (answer.status === "DISABLED") {
                notice("Deleting is disabled on this dashboard.", "warning");
            } else {
                var refused = (answer.refused || []).map(function (r) { return r.id + ": " + r.error; });
                notice((answer.error || what + " failed.") + (refused.length ? " " + refused.slice(0, 3).join(" · ") : ""), "danger");
            }
            return answer;
        };
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
            var next = function () { setTimeout(loop, parseInt(config.pollInterval, 10) || 2500); };
            if (state.autorefresh) {
                load().then(next, function (error) {
                    if (error && error.message) {
                        notice(error.message, "warning");
                    }
                    next();
                });
            } else {
                next();
            }
        };
        loop();
    }

    var urls = {
        prefix: prefix,
        queues: function () { return prefix + "/data/queues.json"; },
        workers: function () { return prefix + "/data/workers.json"; },
        queuesView: function () { return prefix + "/view/queues"; },
        job: function (id) { return prefix + "/data/job/" + encodeURIComponent(id) + ".json"; },
        jobView: function (id) { return prefix + "/view/job/" + encodeURIComponent(id); },
        batchView: function (id) { return prefix + "/view/batch/" + encodeURIComponent(id); },
        deleteJob: function (id) { return config.urlPrefix + "job/" + encodeURIComponent(id) + "/delete"; },
        requeueJob: function (id) { return config.urlPrefix + "job/" + encodeURIComponent(id) + "/requeue"; },
        restartJob: function (id) { return config.urlPrefix + "job/" + encodeURIComponent(id) + "/restart"; },
        stopJob: function (id) { return config.urlPrefix + "job/" + encodeURIComponent(id) + "/stop"; },
        bulk: function () { return config.urlPrefix + "jobs/bulk"; },
        stopWorker: function (name, force) {
            return config.urlPrefix + "worker/" + encodeURIComponent(name) + (force ? "/force-stop" : "/stop");
        },
        jobs: function (kind, queue, registry, perPage, order, page) {
            return prefix + "/" + kind + "/jobs/" + [queue, registry, perPage, order, page].map(encodeURIComponent).join("/") +
                (kind === "data" ? ".json" : "");
        }
    };

    window.WB = {
        config: config,
        state: state,
        el: el,
        clear: clear,
        replaceRows: replaceRows,
        relative: relative,
        span: span,
        bytes: bytes,
        stamp: stamp,
        progressNode: progressNode,
        getJSON: getJSON,
        post: post,
        notice: notice,
        reportAction: reportAction,
        confirmThen: confirmThen,
        poll: poll,
        urls: urls
    };
})();
