"""Alertmanager config files: our loader agrees with the real ``amtool check-config``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from inferwatch._errors import AlertingConfigError
from inferwatch.alerting.config import load_config, parse_config
from inferwatch.alerting.notifiers.base import Secret

DATA = Path(__file__).parent / "data" / "config"
VALID = sorted((DATA / "valid").glob("*.yml"))
INVALID = sorted((DATA / "invalid").glob("*.yml"))
AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool (Alertmanager 0.25) not installed")


def amtool_accepts(path: Path) -> tuple[bool, str]:
    assert AMTOOL is not None
    done = subprocess.run(
        [AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=30
    )
    return done.returncode == 0, done.stdout + done.stderr


def test_corpus_is_big_enough() -> None:
    assert len(VALID) >= 6 and len(INVALID) >= 12


@needs_amtool
@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_config_loads_in_both(path: Path) -> None:
    ok, output = amtool_accepts(path)
    assert ok, output
    config = load_config(str(path))
    assert config.route.receiver in config.receivers


@needs_amtool
@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_config_fails_in_both_and_we_name_the_line(path: Path) -> None:
    ok, output = amtool_accepts(path)
    assert not ok, output
    expected = re.match(r"# expect-line: (\d+)", path.read_text())
    assert expected, f"{path.name} lacks '# expect-line: N'"
    with pytest.raises(AlertingConfigError) as info:
        load_config(str(path))
    assert info.value.line == int(expected.group(1)), str(info.value)
    assert str(info.value).startswith(f"{path}:{expected.group(1)}: ")


NATIVE = """
route:
  receiver: chat
receivers:
  - name: chat
    dingtalk_configs:
      - webhook_url: 'https://oapi.dingtalk.com/robot/send?access_token=tok-dingtalk'
    wecom_configs:
      - webhook_url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=tok-wecom'
    feishu_configs:
      - webhook_url: 'https://open.feishu.cn/open-apis/bot/v2/hook/tok-feishu'
"""


@needs_amtool
def test_native_receivers_load_in_ours_and_amtool_rejects_them(tmp_path: Path) -> None:
    path = tmp_path / "native.yml"
    path.write_text(NATIVE)
    ok, output = amtool_accepts(path)
    assert not ok and "field dingtalk_configs not found" in output
    config = load_config(str(path))
    kinds = [(i.kind, i.index, i.key) for i in config.receivers["chat"].integrations]
    assert kinds == [
        ("dingtalk", 0, "chat/dingtalk/0"),
        ("wecom", 0, "chat/wecom/0"),
        ("feishu", 0, "chat/feishu/0"),
    ]
    assert "tok-" not in config.original


def test_notifier_field_error_names_its_line(tmp_path: Path) -> None:
    text = NATIVE.replace("- webhook_url: 'https://qyapi", "- url: 'https://qyapi")
    with pytest.raises(AlertingConfigError) as info:
        parse_config(text, file="am.yml")
    assert info.value.line == 9
    assert str(info.value).startswith("am.yml:9: receivers[0].wecom_configs[0]")
    assert "tok-wecom" not in str(info.value)


def test_defaults_match_alertmanager() -> None:
    config = parse_config("route:\n  receiver: a\nreceivers:\n  - name: a\n")
    g = config.global_
    assert (g.resolve_timeout_s, g.smtp_hello, g.smtp_require_tls) == (300.0, "localhost", True)
    r = config.route
    assert (r.group_wait_s, r.group_interval_s, r.repeat_interval_s) == (30, 300, 14400)
    assert r.group_by == () and not r.group_by_all
    assert config.receivers["a"].integrations == ()
    assert config.inhibit_rules == ()


def test_child_routes_inherit_timers_and_receiver() -> None:
    config = parse_config(
        """
route:
  receiver: a
  group_wait: 10s
  repeat_interval: 1h
  group_by: [alertname]
  routes:
    - matchers: [team="db"]
      group_interval: 2m
receivers:
  - name: a
"""
    )
    child = config.route.routes[0]
    assert (child.receiver, child.group_by) == ("a", ("alertname",))
    assert (child.group_wait_s, child.group_interval_s, child.repeat_interval_s) == (10, 120, 3600)


def test_secrets_are_masked_in_original_and_kept_as_secret() -> None:
    path = DATA / "valid" / "email_smtp.yml"
    config = load_config(str(path))
    assert "hunter2" not in config.original
    assert "smtp_auth_password: <secret>" in config.original
    assert "smtp_auth_username: 'alertmanager'" in config.original
    assert isinstance(config.global_.smtp_auth_password, Secret)
    assert config.global_.smtp_auth_password.reveal() == "hunter2-smtp-password"
    assert config.global_.smtp_smarthost == "mail.example.org:587"
    slack = load_config(str(DATA / "valid" / "slack_global.yml"))
    assert "SECRET" not in slack.original
    assert slack.global_.slack_api_url is not None
    assert slack.global_.resolve_timeout_s == 60


def test_bad_secret_url_error_does_not_show_it() -> None:
    text = (
        "global:\n  slack_api_url: 'ftp://hooks.example/T0/supersecret'\n"
        "route:\n  receiver: a\nreceivers:\n  - name: a\n"
    )
    with pytest.raises(AlertingConfigError) as info:
        parse_config(text, file="am.yml")
    assert str(info.value) == 'am.yml:2: global.slack_api_url: unsupported scheme "ftp" for URL'
    assert info.value.field == "global.slack_api_url"


def test_inhibit_rules_read_legacy_and_new_matchers() -> None:
    config = load_config(str(DATA / "valid" / "grouping_continue.yml"))
    first, second = config.inhibit_rules
    assert [str(m) for m in first.source_matchers] == ['severity="critical"']
    assert first.equal == ("alertname", "cluster")
    assert [str(m) for m in second.source_matchers] == ['alertname=~"^(?:NodeDown|ClusterDown)$"']
    assert [str(m) for m in second.target_matchers] == ['severity="info"']


def test_templates_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "am.yml"
    path.write_text(
        "templates: ['t/*.tmpl', '/abs/x.tmpl']\nroute:\n  receiver: a\nreceivers:\n  - name: a\n"
    )
    assert load_config(str(path)).templates == (str(tmp_path / "t" / "*.tmpl"), "/abs/x.tmpl")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("route: [\n", "invalid YAML"),
        ("", "no routes provided"),
        (
            "route:\n  receiver: a\nreceivers:\n  - name: a\n    pagerduty_configs: []\n",
            "not supported",
        ),
        (
            "route:\n  receiver: a\n  routes:\n    - mute_time_intervals: [x]\n"
            "receivers:\n  - name: a\n",
            'undefined time interval "x" used in route',
        ),
        ("time_intervals: []\nroute:\n  receiver: a\nreceivers:\n  - name: a\n", "not supported"),
        (
            "route:\n  receiver: a\n  routes:\n    - continue: maybe\nreceivers:\n  - name: a\n",
            "into bool",
        ),
    ],
)
def test_other_errors_are_clear(text: str, message: str) -> None:
    with pytest.raises(AlertingConfigError, match=re.escape(message)):
        parse_config(text)
