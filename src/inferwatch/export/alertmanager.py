"""Split one Alertmanager configuration between a real Alertmanager and inferwatch.

A real Alertmanager knows the standard receivers (``webhook_configs``,
``slack_configs``, ``email_configs``, ...) but not inferwatch's native DingTalk, WeCom
and Feishu receivers. The exported Prometheus sends every alert to both; each side gets
the same routing tree, but only its own kind of receivers:

- :func:`standard_part`: for the real Alertmanager. Native configs are dropped; a
  receiver left with nothing is replaced, in every route that names it, by the null
  receiver ``handled-by-inferwatch``.
- :func:`native_part`: for the inferwatch server's ``/api/v2/alerts``. Standard configs
  are dropped; a receiver left with nothing becomes ``handled-by-alertmanager``.

So each notification is sent exactly once, by the side that can send it. Both
functions take and return plain mappings (the file as YAML reads it) and do no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from inferwatch._errors import ConfigError

#: Receiver kinds only inferwatch delivers (``<kind>_configs``).
NATIVE_KINDS = ("dingtalk", "wecom", "feishu")
#: The null receiver the real Alertmanager routes inferwatch-only alerts to.
ALERTMANAGER_NULL = "handled-by-inferwatch"
#: The null receiver inferwatch routes alerts to that the real Alertmanager sends.
INFERWATCH_NULL = "handled-by-alertmanager"

_NATIVE_KEYS = frozenset(f"{kind}_configs" for kind in NATIVE_KINDS)


def standard_part(config: Mapping[str, Any], *, source: str = "<alertmanager>") -> dict[str, Any]:
    """The config for a real Alertmanager: standard receivers only (see module docs)."""
    return _split(config, keep_native=False, null_name=ALERTMANAGER_NULL, source=source)


def native_part(config: Mapping[str, Any], *, source: str = "<alertmanager>") -> dict[str, Any]:
    """The config for the inferwatch server: DingTalk, WeCom and Feishu receivers only."""
    return _split(config, keep_native=True, null_name=INFERWATCH_NULL, source=source)


def native_receivers(config: Mapping[str, Any]) -> list[str]:
    """Names of the receivers that have at least one DingTalk, WeCom or Feishu config."""
    return [
        str(receiver.get("name"))
        for receiver in _receivers(config, "<alertmanager>")
        if any(key in _NATIVE_KEYS for key in receiver)
    ]


def default_config(webhook_url: str | None = None) -> dict[str, Any]:
    """An Alertmanager config for a stack that was given none: one receiver,
    ``default``, with a webhook to ``webhook_url`` (resolved alerts too) or nothing."""
    receiver: dict[str, Any] = {"name": "default"}
    if webhook_url:
        receiver["webhook_configs"] = [{"url": webhook_url, "send_resolved": True}]
    return {
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "model"],
            "group_wait": "10s",
            "group_interval": "1m",
            "repeat_interval": "4h",
        },
        "receivers": [receiver],
    }


def _receivers(config: Mapping[str, Any], source: str) -> list[Mapping[str, Any]]:
    receivers = config.get("receivers") or []
    if not isinstance(receivers, list):
        raise ConfigError(
            f"{source}: receivers: must be a list (got {receivers!r})", field="receivers"
        )
    for i, receiver in enumerate(receivers):
        if not isinstance(receiver, Mapping) or not receiver.get("name"):
            raise ConfigError(
                f"{source}: receivers[{i}]: must be a mapping with a name (got {receiver!r})",
                field=f"receivers[{i}]",
            )
    return receivers


def _split(
    config: Mapping[str, Any], *, keep_native: bool, null_name: str, source: str
) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise ConfigError(f"{source}: the Alertmanager config must be a mapping", value=config)
    receivers: list[dict[str, Any]] = []
    emptied: set[str] = set()
    for receiver in _receivers(config, source):
        configs = {
            key: value
            for key, value in receiver.items()
            if key != "name" and (key in _NATIVE_KEYS) == keep_native
        }
        had_any = any(key != "name" for key in receiver)
        if had_any and not configs:
            emptied.add(str(receiver["name"]))
            continue
        receivers.append({"name": receiver["name"], **configs})
    names = {str(r["name"]) for r in receivers}
    if emptied:
        if null_name in names:
            raise ConfigError(
                f"{source}: receivers: the name {null_name!r} is reserved by inferwatch export",
                field="receivers",
                value=null_name,
            )
        receivers.append({"name": null_name})
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "receivers":
            out[key] = receivers
        elif key == "route":
            out[key] = _rename_route(value, emptied, null_name)
        else:
            out[key] = value
    return out


def _rename_route(route: Any, emptied: Iterable[str], null_name: str) -> Any:
    """The routing tree with every ``receiver`` in ``emptied`` renamed to ``null_name``."""
    if not isinstance(route, Mapping):
        return route
    emptied = set(emptied)
    out = dict(route)
    if out.get("receiver") in emptied:
        out["receiver"] = null_name
    if isinstance(out.get("routes"), list):
        out["routes"] = [_rename_route(child, emptied, null_name) for child in out["routes"]]
    return out
