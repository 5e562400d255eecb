"""Dash callback requests as the browser sends them to `/_dash-update-component`.

Integration tests and benchmarks post these to the real app through Flask's test client, so a
request goes through the guard, the callback and the JSON encoding exactly as a browser's (or a
forged one) would.
"""

from __future__ import annotations

from collections.abc import Mapping


def _outputs(key: str) -> list[dict]:
    """A callback_map key's outputs; "@..." marks an output shared with `allow_duplicate`."""
    outputs = []
    for part in key.strip(".").split("..."):
        ident, prop = part.rsplit(".", 1)
        outputs.append({"id": ident, "property": prop.split("@")[0]})
    return outputs


def _prop_id(item: dict) -> str:
    return f"{item['id']}.{item['property']}"


def callback_body(
    app, output: str, values: Mapping[str, object] | None = None, changed: list[str] | None = None
) -> dict:
    """The request for the callback writing `output` (a component id, or "id.property").

    `values` fill its inputs and state by "id.property" (absent ones are None); without `values`
    every input is 1 and every state None: a request that sets the callback off, for the tests of
    who may make it. `changed` names the inputs that set it off (default: every input).
    """
    key = next(k for k in app.callback_map if any(output in (o["id"], _prop_id(o)) for o in _outputs(k)))
    spec = app.callback_map[key]
    outputs = _outputs(key)

    def filled(items: list[dict], default: object) -> list[dict]:
        if values is None:
            return [dict(i, value=default) for i in items]
        return [dict(i, value=values.get(_prop_id(i))) for i in items]

    return {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": filled(spec["inputs"], 1),
        "changedPropIds": changed if changed is not None else [_prop_id(i) for i in spec["inputs"]],
        "state": filled(spec["state"], None),
    }


def router(path: str, search: str = "") -> dict:
    """The request Dash Pages sends when the address changes: the page at `path` with `search`."""
    return {
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [
            {"id": "_pages_content", "property": "children"},
            {"id": "_pages_store", "property": "data"},
        ],
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": path},
            {"id": "_pages_location", "property": "search", "value": search},
        ],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }
