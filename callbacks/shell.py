"""The header's clock and language switch run in the browser (assets/citybrain.js): a wall screen
must not send a request every second just to show the time."""

from __future__ import annotations

from dash import ClientsideFunction, Dash, Input, Output, State


def register(app: Dash) -> None:
    app.clientside_callback(
        ClientsideFunction(namespace="citybrain", function_name="clock"),
        Output("clock", "children"),
        Input("clock-tick", "n_intervals"),
        State("ui-lang", "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="citybrain", function_name="switchLanguage"),
        Output("ui-lang", "data"),
        Input("lang-zh", "n_clicks"),
        Input("lang-en", "n_clicks"),
        prevent_initial_call=True,
    )
