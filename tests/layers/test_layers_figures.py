import json

import numpy as np
import plotly.graph_objects as go

from layers.demo import demo_county
from layers.figures import (
    INCIDENT_TRACE_OFFSET, incident_traces, situation_figure, unit_traces, units_geojson,
)
from layers.theme import SEVERITY_SIZES, TYPE_CODES, TYPE_COLORS, TYPE_LABELS


def _incident(i, type_="emergency", title="道路积水", severity=1):
    return dict(
        id=f"inc-{i}", type=type_, type_label=TYPE_LABELS.get(type_, "其他"), severity=severity, title=title,
        occurred_at="2026-11-26T09:07:00+08:00", lon=np.float64(120.2), lat=30.05,
        township=dict(code="DEMO-T01", name="城关街道"), grid=dict(code="DEMO-T01-G01", name="东关社区网格"),
        outside=False,
    )


def test_theme_tables_complete():
    assert set(TYPE_CODES) == set(TYPE_LABELS) == set(TYPE_COLORS)
    assert len(set(TYPE_COLORS.values())) == len(TYPE_COLORS)
    assert TYPE_LABELS["emergency"] == "突发事件" and SEVERITY_SIZES[1] > SEVERITY_SIZES[4]


def test_units_geojson_ids_and_rounding(two_squares):
    fc = units_geojson(two_squares, "township")
    assert [f["id"] for f in fc["features"]] == ["T2", "T1"]
    assert fc["features"][0]["properties"] == dict(code="T2", name="乙镇", level="township", parent="C")
    assert len(units_geojson(two_squares, None)["features"]) == len(two_squares)
    fc = units_geojson(demo_county(), "grid")
    coord = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert all(isinstance(c, float) and round(c, 6) == c for c in coord)


def test_unit_traces(two_squares):
    towns, grids = unit_traces(two_squares)
    assert isinstance(towns, go.Choroplethmap) and list(towns.locations) == ["T2", "T1"]
    assert list(grids.locations) == ["T1-G1", "T1-G2", "T2-G1", "T2-G2"]
    assert towns.marker.line.width > grids.marker.line.width
    assert "甲镇" in towns.text


def test_one_trace_per_type_even_when_empty():
    traces = incident_traces([])
    assert [t.name for t in traces] == [TYPE_LABELS[c] for c in TYPE_CODES]
    assert all(list(t.lon) == [] for t in traces)
    traces = incident_traces([_incident(1), _incident(2, "legal", severity=4), _incident(3, "unknown")])
    by_name = {t.name: t for t in traces}
    assert list(by_name["突发事件"].customdata) == ["inc-1"]
    assert list(by_name["法律咨询"].marker.size) == [SEVERITY_SIZES[4]]
    assert list(by_name["其他"].customdata) == ["inc-3"]
    assert by_name["突发事件"].marker.color == TYPE_COLORS["emergency"]


def test_arrays_are_plain_lists():
    fig = situation_figure(demo_county(), [_incident(i) for i in range(5)])
    text = fig.to_json()
    assert "bdata" not in text
    data = fig.to_plotly_json()["data"]
    for trace in data[INCIDENT_TRACE_OFFSET:]:
        for key in ("lon", "lat", "customdata", "hovertext"):
            assert type(trace[key]) is list
        assert type(trace["marker"]["size"]) is list


def test_hover_is_escaped():
    trace = incident_traces([_incident(1, title='<img src=x onerror="alert(1)"> & <b>')])[0]
    hover = trace.hovertext[0]
    assert "<img" not in hover and "&lt;img" in hover and "&amp; &lt;b&gt;" in hover
    assert "09:07" in hover and "突发事件" in hover and "城关街道" in hover and "东关社区网格" in hover


def test_situation_figure_offline_layout():
    units = demo_county()
    fig = situation_figure(units, [_incident(1)])
    assert fig.layout.map.style == "white-bg"
    assert len(fig.data) == INCIDENT_TRACE_OFFSET + len(TYPE_CODES)
    assert all(isinstance(t, go.Choroplethmap) for t in fig.data[:INCIDENT_TRACE_OFFSET])
    assert all(isinstance(t, go.Scattermap) for t in fig.data[INCIDENT_TRACE_OFFSET:])
    assert fig.layout.uirevision and fig.layout.map.uirevision
    assert fig.layout.legend.orientation == "h"
    assert fig.layout.margin.l == fig.layout.margin.t == 0
    minx, miny, maxx, maxy = units.total_bounds
    assert minx < fig.layout.map.center.lon < maxx and miny < fig.layout.map.center.lat < maxy
    assert 8 < fig.layout.map.zoom < 12
    text = json.dumps(fig.to_plotly_json(), default=str)
    assert "http" not in text.replace("http://www.w3.org", "")  # no tile, glyph or sprite URL
    assert all(t.mode == "markers" for t in fig.data[INCIDENT_TRACE_OFFSET:])
