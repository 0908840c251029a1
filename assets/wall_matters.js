/*
 * The wall's matter tiles (command/web/pages/wall.py MATTER_KPIS): today's 受理 and this
 * month's 化解率, the center's own figures (GET /api/v1/stats/matters, by=channel, the total).
 *
 * assets/wall.js calls `cmdcenterWallMatters.start(cfg, socket)`: the opening values come
 * rendered by the server; they are read again (at most once every 1.5 s) when a matter changes
 * on /live (a registration, an outcome, a follow-up: anything with a case number), on every
 * reconnect, and once a minute (a new day or month begins; changes caught up by `since`).
 *
 * Test hook: window.cmdcenterWallMatters = {tiles(), refreshes()}.
 */
(function () {
    "use strict";

    var C = window.cmdcenter;  // 00_common.js
    var setProps = C.setProps, api = C.api, TZ_MS = C.TZ_MS;
    var DEBOUNCE_MS = 1500;
    var EVERY_MS = 60000;

    var M = null;

    function today() { return new Date(Date.now() + M.offset + TZ_MS).toISOString().slice(0, 10); }

    function total(from, to) {
        return api("GET", "/api/v1/stats/matters?by=channel&from=" + from + "&to=" + to)
            .then(function (fig) { return fig.total; });
    }

    function show(id, text) {
        if (M.shown[id] !== text) {
            M.shown[id] = text;
            setProps(id, {children: text});
        }
    }

    function refresh() {
        if (!M || !M.cfg.matter_tiles) { return; }
        var day = today();
        M.refreshes++;
        Promise.all([total(day, day), total(day.slice(0, 8) + "01", day)]).then(function (got) {
            var rate = got[1].resolution_rate;
            M.tiles = {today: day, registered_today: got[0].registered, resolution_rate_month: rate};
            show(M.cfg.ids.kpi_matters_today, String(got[0].registered));
            show(M.cfg.ids.kpi_resolution_month, rate === null ? "—" : (rate * 100).toFixed(1) + "%");
        }).catch(function () { /* the next change or the minute's refresh tries again */ });
    }

    function later() {
        if (!M || M.pending) { return; }
        M.pending = setTimeout(function () { M.pending = null; refresh(); }, DEBOUNCE_MS);
    }

    function start(cfg, socket) {
        if (M) { clearInterval(M.timer); clearTimeout(M.pending); }
        M = {cfg: cfg, offset: cfg.now - Date.now(), tiles: cfg.matter_tiles, shown: {},
             pending: null, refreshes: 0, timer: setInterval(function () { refresh(); }, EVERY_MS)};
        if (socket && !socket.cmdcenterMatterTiles) {
            socket.cmdcenterMatterTiles = true;  // one listener per socket, whatever restarts
            socket.on("incidents", function (items) {
                if (Array.isArray(items) && items.some(function (i) { return i && i.case_no; })) { later(); }
            });
            socket.on("connect", later);
        }
    }

    window.cmdcenterWallMatters = {
        start: start,
        tiles: function () { return M ? M.tiles : null; },
        refreshes: function () { return M ? M.refreshes : 0; }
    };
}());
