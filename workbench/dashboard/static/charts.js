// Charts as SVG built from JSON with DOM calls (createElementNS, text nodes): no library, nothing
// parsed from strings, so they run under the dashboard's CSP. Two kinds: stacked bars per minute
// (jobs ended) and a stepped line (queue depth, gaps where no sample was taken).
(function () {
    "use strict";

    var NS = "http://www.w3.org/2000/svg";
    var WIDTH = 720, HEIGHT = 150, LEFT = 44, RIGHT = 8, TOP = 10, BOTTOM = 22;

    function svg(tag, attrs, text) {
        var node = document.createElementNS(NS, tag);
        Object.keys(attrs || {}).forEach(function (name) {
            node.setAttribute(name, String(attrs[name]));
        });
        if (text !== undefined) {
            node.textContent = String(text);
        }
        return node;
    }

    function niceMax(value) {
        if (value <= 4) {
            return 4;
        }
        var step = Math.pow(10, Math.floor(Math.log10(value)));
        var candidates = [1, 2, 2.5, 5, 10];
        for (var i = 0; i < candidates.length; i++) {
            if (candidates[i] * step >= value) {
                return candidates[i] * step;
            }
        }
        return 10 * step;
    }

    function minuteLabel(minute) {
        var date = new Date(minute * 60000);
        return ("0" + date.getHours()).slice(-2) + ":" + ("0" + date.getMinutes()).slice(-2);
    }

    // The frame: axes, a few horizontal grid lines with their values, time labels every 15 minutes.
    function frame(root, minutes, top, title) {
        var plotW = WIDTH - LEFT - RIGHT, plotH = HEIGHT - TOP - BOTTOM;
        root.appendChild(svg("title", {}, title));
        [0, 0.5, 1].forEach(function (f) {
            var y = TOP + plotH - f * plotH;
            root.appendChild(svg("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: y, y2: y, class: "grid" }));
            root.appendChild(svg("text", { x: LEFT - 4, y: y + 4, "text-anchor": "end", class: "axis-label" }, Math.round(top * f)));
        });
        minutes.forEach(function (m, i) {
            if (i % 15 === 0 || i === minutes.length - 1) {
                var x = LEFT + (i + 0.5) * plotW / minutes.length;
                root.appendChild(svg("text", { x: x, y: HEIGHT - 6, "text-anchor": "middle", class: "axis-label" }, minuteLabel(m.minute)));
            }
        });
        return { plotW: plotW, plotH: plotH };
    }

    // Stacked bars: one per minute, one segment per series ({key, label, cls}).
    function bars(minutes, series, title) {
        var root = svg("svg", { viewBox: "0 0 " + WIDTH + " " + HEIGHT, class: "chart chart-bars", role: "img" });
        var peak = 0;
        minutes.forEach(function (m) {
            var sum = 0;
            series.forEach(function (s) { sum += m[s.key] || 0; });
            peak = Math.max(peak, sum);
        });
        var top = niceMax(peak);
        var box = frame(root, minutes, top, title);
        var slot = box.plotW / minutes.length;
        minutes.forEach(function (m, i) {
            var base = TOP + box.plotH;
            series.forEach(function (s) {
                var value = m[s.key] || 0;
                if (!value) {
                    return;
                }
                var h = value / top * box.plotH;
                base -= h;
                var rect = svg("rect", {
                    x: (LEFT + i * slot + slot * 0.1).toFixed(2), y: base.toFixed(2),
                    width: (slot * 0.8).toFixed(2), height: h.toFixed(2),
                    class: "bar " + s.cls, "data-minute": m.minute, "data-series": s.key, "data-value": value
                });
                rect.appendChild(svg("title", {}, minuteLabel(m.minute) + " " + s.label + ": " + value));
                root.appendChild(rect);
            });
        });
        return root;
    }

    // A stepped line of one series; minutes without a sample (null) leave a gap.
    function line(minutes, key, label, cls, title) {
        var root = svg("svg", { viewBox: "0 0 " + WIDTH + " " + HEIGHT, class: "chart chart-line", role: "img" });
        var peak = 0;
        minutes.forEach(function (m) { if (m[key] !== null && m[key] !== undefined) { peak = Math.max(peak, m[key]); } });
        var top = niceMax(peak);
        var box = frame(root, minutes, top, title);
        var slot = box.plotW / minutes.length;
        var path = "";
        var drawing = false;
        minutes.forEach(function (m, i) {
            var value = m[key];
            if (value === null || value === undefined) {
                drawing = false;
                return;
            }
            var y = (TOP + box.plotH - value / top * box.plotH).toFixed(2);
            var x0 = (LEFT + i * slot).toFixed(2), x1 = (LEFT + (i + 1) * slot).toFixed(2);
            path += (drawing ? " L" : " M") + x0 + " " + y + " L" + x1 + " " + y;
            drawing = true;
            var dot = svg("circle", { cx: ((+x0 + +x1) / 2).toFixed(2), cy: y, r: 1.6, class: "point " + cls, "data-minute": m.minute, "data-value": value });
            dot.appendChild(svg("title", {}, minuteLabel(m.minute) + " " + label + ": " + value));
            root.appendChild(dot);
        });
        if (path) {
            root.insertBefore(svg("path", { d: path.trim(), class: "series " + cls }), root.firstChild.nextSibling);
        }
        return root;
    }

    window.WB.charts = { bars: bars, line: line };
})();
