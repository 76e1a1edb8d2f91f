"""Tests for the native chat robots (DingTalk, WeCom, Feishu) against loopback servers
that check signatures the way each vendor documents and answer with its error codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from inferwatch._errors import AlertingConfigError, NotifyError
from inferwatch.alerting.notifiers import build_notifier
from inferwatch.testing import FakeClock
from tests.alerting.notifiers.test_http import (
    Answer,
    Receiver,
    Request,
    json_answer,
    sample_notification,
    start_receivers,
)

DING_SECRET = "SECa1b2c3d4e5f6a7b8c9d0"
DING_TOKEN = "d1ngt0k3nabcdef0123456789"
FEISHU_SECRET = "fe1shu-s3cret-key"
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    yield from start_receivers()


def build(kind: str, config: dict[str, Any]) -> Any:
    return build_notifier(kind, config, global_config={}, field=f"receivers[0].{kind}_configs[0]")


# --- DingTalk ---------------------------------------------------------------------


def dingtalk_robot(request: Request) -> Answer:
    """DingTalk's robot/send: checks access_token, and the signature if the robot signs."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
    if query.get("access_token") != DING_TOKEN:
        return json_answer({"errcode": 300001, "errmsg": "token is not exist"})
    timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
    string_to_sign = f"{timestamp}\n{DING_SECRET}"
    expected = base64.b64encode(
        hmac.new(DING_SECRET.encode(), string_to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    if sign != expected:
        return json_answer({"errcode": 310000, "errmsg": "sign not match, more: https://..."})
    if abs(int(timestamp) / 1000 - time.time()) > 3600:
        return json_answer({"errcode": 310000, "errmsg": "invalid timestamp"})
    return json_answer({"errcode": 0, "errmsg": "ok"})


def test_dingtalk_signed_markdown(receiver: Callable[..., Receiver]) -> None:
    r = receiver(dingtalk_robot)
    n = build(
        "dingtalk",
        {
            "webhook_url": f"{r.url}/robot/send?access_token={DING_TOKEN}",
            "secret": DING_SECRET,
            "title": "Latency alert",
            "text": "### p99 above 1s",
            "at_mobiles": ["13800000000"],
        },
    )
    n.notify(sample_notification())
    (req,) = r.requests
    assert req.headers["Content-Type"] == "application/json"
    assert req.json() == {
        "msgtype": "markdown",
        "markdown": {"title": "Latency alert", "text": "### p99 above 1s"},
        "at": {"atMobiles": ["13800000000"], "atUserIds": [], "isAtAll": False},
    }
    # base64 of a 32-byte digest ends in "=", which must arrive URL-encoded.
    assert req.path.split("sign=")[1].endswith("%3D")


def test_dingtalk_wrong_secret_is_rejected_not_retryable(
    receiver: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    r = receiver(dingtalk_robot)
    n = build(
        "dingtalk",
        {"webhook_url": f"{r.url}/robot/send?access_token={DING_TOKEN}", "secret": "SECwrong123"},
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(NotifyError) as info:
        n.notify(sample_notification())
    assert not info.value.retryable
    assert "310000" in str(info.value)
    for text in (str(info.value), caplog.text, repr(n)):
        assert DING_TOKEN not in text
        assert "SECwrong123" not in text


def test_dingtalk_without_secret_is_rejected_by_a_signing_robot(
    receiver: Callable[..., Receiver],
) -> None:
    r = receiver(dingtalk_robot)
    n = build("dingtalk", {"webhook_url": f"{r.url}/robot/send?access_token={DING_TOKEN}"})
    with pytest.raises(NotifyError, match="310000"):
        n.notify(sample_notification())


def test_dingtalk_rate_limit_is_retryable(receiver: Callable[..., Receiver]) -> None:
    r = receiver(lambda req: json_answer({"errcode": 130101, "errmsg": "send too fast"}))
    n = build("dingtalk", {"webhook_url": f"{r.url}/robot/send?access_token=x"})
    with pytest.raises(NotifyError) as info:
        n.notify(sample_notification())
    assert info.value.retryable


def test_dingtalk_timestamp_comes_from_the_clock(receiver: Callable[..., Receiver]) -> None:
    r = receiver(lambda req: json_answer({"errcode": 0, "errmsg": "ok"}))
    n = build("dingtalk", {"webhook_url": f"{r.url}/send?access_token=x", "secret": "SECk"})
    n.clock = FakeClock(1_700_000_000.5)
    n.notify(sample_notification())
    assert r.requests[0].query["timestamp"] == "1700000000500"


# --- WeCom ------------------------------------------------------------------------


def wecom_robot(request: Request) -> Answer:
    if request.query.get("key") != WECOM_KEY:
        return json_answer({"errcode": 93000, "errmsg": "invalid webhook url, hint: [x]"})
    content = request.json()["markdown"]["content"]
    if len(content.encode()) > 4096:
        return json_answer({"errcode": 40058, "errmsg": "markdown.content exceed max length"})
    return json_answer({"errcode": 0, "errmsg": "ok"})


def test_wecom_markdown(receiver: Callable[..., Receiver]) -> None:
    r = receiver(wecom_robot)
    n = build(
        "wecom",
        {
            "webhook_url": f"{r.url}/cgi-bin/webhook/send?key={WECOM_KEY}",
            "content": "**p99 above 1s**",
            "mentioned_list": ["wangqing"],
        },
    )
    n.notify(sample_notification())
    assert r.requests[0].json() == {
        "msgtype": "markdown",
        "markdown": {"content": "<@wangqing>\n**p99 above 1s**"},
    }


def test_wecom_long_content_is_cut_at_a_character(receiver: Callable[..., Receiver]) -> None:
    r = receiver(wecom_robot)
    n = build(
        "wecom",
        {"webhook_url": f"{r.url}/send?key={WECOM_KEY}", "content": "告警" * 2000},
    )
    n.notify(sample_notification())
    content = r.requests[0].json()["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert content.endswith("\n...")
    assert content.startswith("告警告警")


def test_wecom_wrong_key_not_retryable_rate_limit_retryable(
    receiver: Callable[..., Receiver],
) -> None:
    r = receiver(wecom_robot)
    n = build("wecom", {"webhook_url": f"{r.url}/send?key=wrong-key-123"})
    with pytest.raises(NotifyError) as info:
        n.notify(sample_notification())
    assert not info.value.retryable and "93000" in str(info.value)
    assert "wrong-key-123" not in str(info.value)
    limited = receiver(lambda req: json_answer({"errcode": 45009, "errmsg": "api freq out"}))
    n = build("wecom", {"webhook_url": f"{limited.url}/send?key={WECOM_KEY}"})
    with pytest.raises(NotifyError) as info:
        n.notify(sample_notification())
    assert info.value.retryable


# --- Feishu -----------------------------------------------------------------------


def feishu_bot(request: Request) -> Answer:
    body = request.json()
    timestamp, sign = body.get("timestamp", ""), body.get("sign", "")
    key = f"{timestamp}\n{FEISHU_SECRET}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    if sign != expected or abs(int(timestamp or 0) - time.time()) > 3600:
        return json_answer(
            {
                "code": 19021,
                "data": {},
                "msg": "sign match fail or timestamp is not within one hour from current time",
            }
        )
    return json_answer(
        {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}
    )


def test_feishu_signed_card(receiver: Callable[..., Receiver]) -> None:
    r = receiver(feishu_bot)
    n = build(
        "feishu",
        {
            "webhook_url": f"{r.url}/open-apis/bot/v2/hook/0f3c-abcdef-hooktoken",
            "secret": FEISHU_SECRET,
            "title": "Latency alert",
            "text": "p99 above 1s",
        },
    )
    n.notify(sample_notification())
    body = r.requests[0].json()
    assert set(body) == {"timestamp", "sign", "msg_type", "card"}
    assert body["timestamp"].isdigit()
    assert body["msg_type"] == "interactive"
    assert body["card"] == {
        "config": {"wide_screen_mode": True},
        "header": {"title": {"tag": "plain_text", "content": "Latency alert"}, "template": "red"},
        "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "p99 above 1s"}}],
    }


def test_feishu_text_message(receiver: Callable[..., Receiver]) -> None:
    r = receiver(feishu_bot)
    n = build(
        "feishu",
        {
            "webhook_url": f"{r.url}/hook/x",
            "secret": FEISHU_SECRET,
            "msg_type": "text",
            "title": "T",
            "text": "body",
        },
    )
    n.notify(sample_notification())
    assert r.requests[0].json()["content"] == {"text": "T\nbody"}


def test_feishu_wrong_or_missing_secret_rejected(
    receiver: Callable[..., Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    r = receiver(feishu_bot)
    for config in ({"secret": "not-the-secret"}, {}):
        n = build("feishu", {"webhook_url": f"{r.url}/hook/abcdefghijklmnopqrstu", **config})
        with caplog.at_level(logging.DEBUG), pytest.raises(NotifyError) as info:
            n.notify(sample_notification())
        assert not info.value.retryable and "19021" in str(info.value)
        assert "not-the-secret" not in caplog.text + str(info.value) + repr(n)
        assert "abcdefghijklmnopqrstu" not in caplog.text + str(info.value)


@pytest.mark.parametrize("code", [9499, 11232])
def test_feishu_rate_limits_retryable(receiver: Callable[..., Receiver], code: int) -> None:
    r = receiver(lambda req: json_answer({"code": code, "msg": "too many request"}))
    n = build("feishu", {"webhook_url": f"{r.url}/hook/x"})
    with pytest.raises(NotifyError) as info:
        n.notify(sample_notification())
    assert info.value.retryable


def test_http_500_from_a_robot_is_retryable(receiver: Callable[..., Receiver]) -> None:
    r = receiver(lambda req: (500, {}, b"oops"))
    for kind in ("dingtalk", "wecom", "feishu"):
        with pytest.raises(NotifyError) as info:
            build(kind, {"webhook_url": f"{r.url}/x?key=k"}).notify(sample_notification())
        assert info.value.retryable


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("dingtalk", {}, "webhook_url"),
        ("dingtalk", {"webhook_url": "http://x", "at_all": "yes"}, "at_all"),
        ("wecom", {"webhook_url": "http://x", "mentioned": []}, "mentioned"),
        ("feishu", {"webhook_url": "http://x", "msg_type": "post"}, "msg_type"),
        ("feishu", {"webhook_url": "http://x", "secret": "a", "secret_file": "b"}, "secret"),
    ],
)
def test_bad_config_names_the_field(kind: str, config: dict[str, Any], field: str) -> None:
    with pytest.raises(AlertingConfigError) as info:
        build(kind, config)
    assert info.value.field == f"receivers[0].{kind}_configs[0].{field}"
