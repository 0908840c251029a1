"""Placeholder wall screen (replaced by the real page)."""
import dash
from dash import html


def layout(**_):
    return html.Div("wall", id="situation-map")


dash.register_page(__name__, path="/", title="态势一张图", layout=layout)
