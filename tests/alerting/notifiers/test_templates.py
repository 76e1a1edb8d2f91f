"""Tests for the template data, functions, defaults and user overrides."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inferwatch._errors import AlertingConfigError
from inferwatch.alerting.notifiers import build_notifier
from inferwatch.alerting.notifiers.templates import (
    KV,
    GoTime,
    MessageTemplates,
    template_data,
)
from tests.alerting.notifiers.test_http import Receiver, sample_notification, start_receivers


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    yield from start_receivers()


def render(text: str, files: tuple[str, ...] = (), **kw: Any) -> str:
    t = MessageTemplates(files)
    t.add("x", text, field="f")
    return t.render("x", template_data(sample_notification(**kw)))


def test_default_subject_as_alertmanager() -> None:
    assert render('{{ template "__subject" . }}') == "[FIRING:2] HighLatency (page)"
    assert render('{{ template "__subject" . }}', resolved=True) == "[FIRING:1] HighLatency (page)"


def test_alertmanager_url_escapes_receiver() -> None:
    assert render('{{ template "__alertmanagerURL" . }}', receiver="a b.c") == (
        "http://am.example:9093/#/alerts?receiver=a+b%5C.c"
    )


def test_text_alert_list() -> None:
    text = render('{{ template "__text_alert_list" .Alerts.Resolved }}', resolved=True)
    assert text == (
        "Labels:\n - alertname = HighLatency\n - model = bert\n - severity = page\n"
        "Annotations:\n - summary = p99 latency above 1s\nSource: \n"
    )


def test_kv_methods_and_funcs() -> None:
    assert KV({"b": "2", "alertname": "A", "a": "1"}).Names() == ["alertname", "a", "b"]
    assert render('{{ .CommonLabels.Remove (stringSlice "alertname") | len }}') == "1"
    assert render('{{ toUpper "a" }}{{ toLower "B" }}{{ title "hello world" }}') == "AbHello World"
    assert render('{{ match "^High" .CommonLabels.alertname }}') == "true"
    assert render('{{ reReplaceAll "(H)igh" "${1}i" .CommonLabels.alertname }}') == "HiLatency"
    assert render("{{ range .Alerts }}{{ .Labels.model }} {{ end }}") == "resnet bert "
    assert render("{{ (index .Alerts 0).Fingerprint | len }}") == "16"


def test_times() -> None:
    assert GoTime(1_704_164_645.123).rfc3339() == "2024-01-02T03:04:05.123Z"
    assert GoTime(1_704_164_645.0).rfc3339() == "2024-01-02T03:04:05Z"
    assert GoTime(None).rfc3339() == "0001-01-01T00:00:00Z"
    assert str(GoTime(1_704_164_645.5)) == "2024-01-02 03:04:05.5 +0000 UTC"
    assert render('{{ (index .Alerts 0).StartsAt.Format "2006-01-02 15:04" }}') == (
        "2024-01-02 02:54"
    )


def test_bad_template_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(AlertingConfigError) as info:
        build_notifier(
            "slack",
            {"api_url": "http://x", "title": "{{ .Status "},
            global_config={},
            field="receivers[2].slack_configs[0]",
        )
    assert info.value.field == "receivers[2].slack_configs[0].title"


def test_missing_template_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(AlertingConfigError, match="cannot read template file"):
        MessageTemplates([str(tmp_path / "nope.tmpl")])


def test_slack_default_message(receiver: Callable[..., Receiver]) -> None:
    r = receiver()
    n = build_notifier(
        "slack",
        {"channel": "#alerts"},
        global_config={"slack_api_url": r.url + "/services/T000/B000/XXXXXXXXXXXXXXXXXXXX"},
    )
    assert n.send_resolved is False
    n.notify(sample_notification())
    title = "[FIRING:2] HighLatency (page)"
    link = "http://am.example:9093/#/alerts?receiver=team-x"
    assert r.requests[0].json() == {
        "channel": "#alerts",
        "username": "Alertmanager",
        "attachments": [
            {
                "title": title,
                "title_link": link,
                "text": "",
                "fallback": f"{title} | {link}",
                "callback_id": "",
                "footer": "",
                "color": "danger",
                "mrkdwn_in": ["fallback", "pretext", "text"],
            }
        ],
    }


def test_user_template_file_overrides_default(
    receiver: Callable[..., Receiver], tmp_path: Path
) -> None:
    (tmp_path / "custom.tmpl").write_text(
        '{{ define "slack.default.title" }}Custom {{ .CommonLabels.alertname }}{{ end }}\n'
        '{{ define "slack.default.text" }}{{ range .Alerts.Firing }}'
        "{{ .Labels.model }};{{ end }}{{ end }}\n"
    )
    r = receiver()
    n = build_notifier(
        "slack",
        {"api_url": r.url, "fields": [{"title": "Models", "value": "{{ len .Alerts }}"}]},
        global_config={},
        templates=[str(tmp_path / "*.tmpl")],
    )
    n.notify(sample_notification())
    attachment = r.requests[0].json()["attachments"][0]
    assert attachment["title"] == "Custom HighLatency"
    assert attachment["text"] == "resnet;bert;"
    assert attachment["fallback"].startswith("Custom HighLatency | ")
    assert attachment["fields"] == [{"title": "Models", "value": "2", "short": False}]


def test_user_template_overrides_chat_robots(
    receiver: Callable[..., Receiver], tmp_path: Path
) -> None:
    path = tmp_path / "robots.tmpl"
    path.write_text('{{ define "wecom.default.content" }}wecom: {{ .Status }}{{ end }}')
    r = receiver(lambda req: (200, {"Content-Type": "application/json"}, b'{"errcode":0}'))
    n = build_notifier(
        "wecom", {"webhook_url": r.url + "/send?key=k"}, global_config={}, templates=[str(path)]
    )
    n.notify(sample_notification())
    assert r.requests[0].json()["markdown"]["content"] == "wecom: firing"


def test_slack_error_response_is_not_retryable(receiver: Callable[..., Receiver]) -> None:
    from inferwatch._errors import NotifyError

    r = receiver(lambda req: (200, {}, b"invalid_payload"))
    n = build_notifier("slack", {"api_url": r.url}, global_config={})
    with pytest.raises(NotifyError) as info:
        n.notify(sample_notification())
    assert not info.value.retryable
    assert "invalid_payload" in str(info.value)


def test_slack_needs_an_api_url() -> None:
    with pytest.raises(AlertingConfigError, match="no global Slack API URL set"):
        build_notifier("slack", {}, global_config={}, field="receivers[0].slack_configs[0]")
