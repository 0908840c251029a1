/*
 * 事项统计 on /command (command/web/pages/command.py `stats_view`): the center's figures by
 * lead unit, township, category or channel over a day, a week, a month, a year or any range,
 * each against the period before, and their downloads.
 *
 * assets/command.js calls `cmdcenterStats.start(cfg, live)` when the desk starts: the opening
 * figures come in the page's state (`cfg.stats`); afterwards every change of the controls, every
 * matter pushed on /live (a registration, an outcome, a follow-up: anything with a case number)
 * and every reconnect reads GET /api/v1/stats/matters again (at most once a second). The
 * server computes everything; this script only draws the table and points the download links
 * at the same query.
 *
 * Test hook: window.cmdcenterStats = {figures(), query(), refreshes()}.
 */
(function () {
    "use strict";

    var C = window.cmdcenter;  // 00_common.js
    var h = C.h, setProps = C.setProps, api = C.api, TZ_MS = C.TZ_MS;
    var DEBOUNCE_MS = 1000;
    var SHOWN = [  // field, kind: count | rate
        ["registered", "count"], ["concluded", "count"], ["resolved", "count"],
        ["resolution_rate", "rate"], ["followed_up", "count"], ["satisfaction_rate", "rate"],
        ["on_time_rate", "rate"], ["not_accepted", "count"]
    ];

    var T = null;  // the view's state

    function ids() { return T.cfg.ids; }

    function byId(id) { return document.getElementById(id); }

    function localToday() {
        return new Date(Date.now() + T.offset + TZ_MS).toISOString().slice(0, 10);
    }

    function shift(day, days) {
        var t = Date.parse(day + "T00:00:00Z") + days * 86400000;
        return new Date(t).toISOString().slice(0, 10);
    }

    function presetRange(period) {
        var today = localToday();
        if (period === "day") { return [today, today]; }
        if (period === "week") {
            var weekday = (new Date(today + "T00:00:00Z").getUTCDay() + 6) % 7;  // Monday 0
            return [shift(today, -weekday), today];
        }
        if (period === "month") { return [today.slice(0, 8) + "01", today]; }
        if (period === "year") { return [today.slice(0, 5) + "01-01", today]; }
        return null;
    }

    function query() {
        return "from=" + encodeURIComponent(T.from) + "&to=" + encodeURIComponent(T.to) +
            "&by=" + encodeURIComponent(T.by);
    }

    function pointLinks() {
        var q = query();
        var list = "from=" + encodeURIComponent(T.from) + "&to=" + encodeURIComponent(T.to);
        setProps(ids().command_stats_csv, {href: "/api/v1/stats/matters?" + q + "&format=csv"});
        setProps(ids().command_stats_xlsx, {href: "/api/v1/stats/matters?" + q + "&format=xlsx"});
        setProps(ids().command_matters_csv, {href: "/api/v1/matters/export?" + list + "&format=csv"});
        setProps(ids().command_matters_xlsx, {href: "/api/v1/matters/export?" + list + "&format=xlsx"});
    }

    function percent(rate) { return rate === null || rate === undefined ? "—" : (rate * 100).toFixed(1) + "%"; }

    function shown(value, kind) { return kind === "rate" ? percent(value) : String(value); }

    function delta(now, before, kind) {
        if (now === null || before === null || now === undefined || before === undefined) { return null; }
        var d = kind === "rate" ? Math.round((now - before) * 1000) / 10 : now - before;
        if (d === 0) { return h("Span", {className: "cc-stat-delta is-flat"}, "持平"); }
        var text = (d > 0 ? "▲" : "▼") + Math.abs(d) + (kind === "rate" ? "个百分点" : "");
        return h("Span", {className: "cc-stat-delta " + (d > 0 ? "is-up" : "is-down")}, text);
    }

    function cell(row, field, kind) {
        var prev = row.previous || {};
        return h("Td", {className: "cc-stat", "data-field": field}, [
            h("Div", {className: "cc-stat-now"}, shown(row[field], kind)),
            h("Div", {className: "cc-stat-prev"}, [
                h("Span", {}, "上期 " + shown(prev[field], kind) + " "), delta(row[field], prev[field], kind)
            ])
        ]);
    }

    function line(row, cls) {
        return h("Tr", {className: cls || "", "data-key": row.key === null ? "" : row.key},
                 [h("Th", {scope: "row"}, row.name)].concat(SHOWN.map(function (f) {
                     return cell(row, f[0], f[1]);
                 })));
    }

    function render() {
        var fig = T.figures;
        var labels = T.cfg.stats_fields || {};
        if (!fig) {
            setProps(ids().command_stats_table, {children: h("P", {className: "cc-empty"}, "暂无统计数据")});
            return;
        }
        var head = h("Tr", {}, [h("Th", {scope: "col"}, fig.by_label)].concat(SHOWN.map(function (f) {
            return h("Th", {scope: "col"}, labels[f[0]] || f[0]);
        })));
        var body = fig.rows.length ? fig.rows.map(function (r) { return line(r); })
            : [h("Tr", {}, h("Td", {colSpan: SHOWN.length + 1, className: "cc-empty"}, "本期及上期均无事项"))];
        setProps(ids().command_stats_table, {children: [
            h("P", {className: "cc-stats-period"}, "本期 " + fig.from + " 至 " + fig.to + "；上期 " +
              fig.previous.from + " 至 " + fig.previous.to),
            h("Table", {className: "cc-stats"}, [
                h("Thead", {}, head), h("Tbody", {}, body),
                h("Tfoot", {}, line(fig.total, "cc-stats-total"))
            ])
        ]});
    }

    function refresh() {
        if (!T) { return; }
        var asked = query();
        T.refreshes++;
        api("GET", "/api/v1/stats/matters?" + asked).then(function (fig) {
            if (!T || asked !== query()) { return; }  // the controls changed meanwhile
            T.figures = fig;
            render();
        }).catch(function (err) {
            setProps(ids().command_stats_table, {children: h("P", {className: "cc-empty cc-error"},
                                                           "统计失败：" + err.message)});
        });
    }

    function later() {
        if (!T || T.pending) { return; }
        T.pending = setTimeout(function () { T.pending = null; refresh(); }, DEBOUNCE_MS);
    }

    function onChange(ev) {
        if (!T || !(ev.target instanceof Element)) { return; }
        var mine = [ids().command_stats_by, ids().command_stats_period, ids().command_stats_from,
                    ids().command_stats_to];
        var node = ev.target;
        while (node && mine.indexOf(node.id) < 0) { node = node.parentElement; }
        if (!node) { return; }
        var id = node.id;
        if (id === ids().command_stats_by) {
            T.by = ev.target.value;
        } else if (id === ids().command_stats_period) {
            var range = presetRange(ev.target.value);
            if (!range) { return; }
            T.from = range[0];
            T.to = range[1];
            setProps(ids().command_stats_from, {value: T.from});
            setProps(ids().command_stats_to, {value: T.to});
        } else if (id === ids().command_stats_from || id === ids().command_stats_to) {
            var value = ev.target.value;
            if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) { return; }
            if (id === ids().command_stats_from) { T.from = value; } else { T.to = value; }
            var period = byId(ids().command_stats_period);
            if (period) { period.value = "range"; }
        } else {
            return;
        }
        pointLinks();
        refresh();
    }

    function start(cfg, live) {
        if (T && T.pending) { clearTimeout(T.pending); }
        var fig = cfg.stats;
        T = {cfg: cfg, offset: cfg.now - Date.now(), figures: fig, by: fig ? fig.by : "dept",
             from: fig ? fig.from : "", to: fig ? fig.to : "", pending: null, refreshes: 0};
        if (!T.from) { T.from = T.to = localToday(); }
        render();
        if (!start.listening) {
            start.listening = true;
            document.addEventListener("change", onChange);
        }
        if (live) {
            live.on("incidents", function (items) {
                if (Array.isArray(items) && items.some(function (i) { return i && i.case_no; })) { later(); }
            });
            live.on("connect", later);
        }
    }

    window.cmdcenterStats = {
        start: start,
        figures: function () { return T ? T.figures : null; },
        query: function () { return T ? query() : null; },
        refreshes: function () { return T ? T.refreshes : 0; }
    };
}());
