/* The ground colour of an offline map (shared by the wall screen and the command desk).
 *
 * Maps use plotly's offline "white-bg" style (no tiles, no glyphs). Its one background layer is
 * recoloured in MapLibre itself: plotly then never re-applies the style, so the ground cannot
 * flash white when traces change. The host gets the class `map-ready` once painted (CSS keeps
 * the canvas hidden until then). Called at run time, so the load order of assets is irrelevant.
 */
(function () {
    "use strict";
    // Paint the map inside element `hostId`; false while plotly has not created it yet.
    window.cmdcenterPaintGround = function (hostId, color) {
        var host = document.getElementById(hostId);
        var gd = host && host.querySelector(".js-plotly-plot");
        var sub = gd && gd._fullLayout && gd._fullLayout.map && gd._fullLayout.map._subplot;
        var map = sub && sub.map;
        if (!map) { return false; }
        if (map.__cmdcenterGround) { return true; }
        var paint = function () {
            if (map.getLayer("white-bg")) {
                map.setPaintProperty("white-bg", "background-color", color);
                host.classList.add("map-ready");
            }
        };
        map.on("styledata", paint);
        paint();
        map.__cmdcenterGround = true;
        return true;
    };
}());
