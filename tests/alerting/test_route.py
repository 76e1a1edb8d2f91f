"""The routing tree: Alertmanager's dispatch/route_test.go cases and the documented example."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferwatch.alerting.config import parse_config
from inferwatch.alerting.route import Route

RECEIVERS = """
receivers:
- name: notify-def
- name: notify-A
- name: notify-testing
- name: notify-productionA
- name: notify-productionB
- name: notify-BC
"""

# TestRouteMatch's tree from Alertmanager's dispatch/route_test.go.
ROUTE_MATCH_TREE = """
route:
  receiver: 'notify-def'
  routes:
  - match:
      owner: 'team-A'
    receiver: 'notify-A'
    routes:
    - match:
        env: 'testing'
      receiver: 'notify-testing'
      group_by: [...]
    - match:
        env: "production"
      receiver: 'notify-productionA'
      group_wait: 1m
      continue: true
    - match_re:
        env: "produ.*"
        job: ".*"
      receiver: 'notify-productionB'
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 1h
      group_by: ['job']
  - match_re:
      owner: 'team-(B|C)'
    group_by: ['foo', 'bar']
    group_wait: 2m
    receiver: 'notify-BC'
  - match:
      group_by: 'role'
    group_by: ['role']
    routes:
    - match:
        env: 'testing'
      receiver: 'notify-testing'
      routes:
      - match:
          wait: 'long'
        group_wait: 2m
"""


def tree() -> Route:
    return parse_config(ROUTE_MATCH_TREE + RECEIVERS).route


def opts(r: Route) -> tuple[str, frozenset[str], bool, float, float, float]:
    return (
        r.receiver,
        frozenset(r.group_by),
        r.group_by_all,
        r.group_wait_s,
        r.group_interval_s,
        r.repeat_interval_s,
    )


NONE: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("labels", "expected", "keys"),
    [
        (
            {"owner": "team-A"},
            [("notify-A", NONE, False, 30, 300, 14400)],
            ['{}/{owner="team-A"}'],
        ),
        (
            {"owner": "team-A", "env": "unset"},
            [("notify-A", NONE, False, 30, 300, 14400)],
            ['{}/{owner="team-A"}'],
        ),
        (
            {"owner": "team-C"},
            [("notify-BC", frozenset({"foo", "bar"}), False, 120, 300, 14400)],
            ['{}/{owner=~"^(?:team-(B|C))$"}'],
        ),
        (
            {"owner": "team-A", "env": "testing"},
            [("notify-testing", NONE, True, 30, 300, 14400)],
            ['{}/{owner="team-A"}/{env="testing"}'],
        ),
        (
            {"owner": "team-A", "env": "production"},
            [
                ("notify-productionA", NONE, False, 60, 300, 14400),
                ("notify-productionB", frozenset({"job"}), False, 30, 300, 3600),
            ],
            [
                '{}/{owner="team-A"}/{env="production"}',
                '{}/{owner="team-A"}/{env=~"^(?:produ.*)$",job=~"^(?:.*)$"}',
            ],
        ),
        (
            {"group_by": "role"},
            [("notify-def", frozenset({"role"}), False, 30, 300, 14400)],
            ['{}/{group_by="role"}'],
        ),
        (
            {"env": "testing", "group_by": "role"},
            [("notify-testing", frozenset({"role"}), False, 30, 300, 14400)],
            ['{}/{group_by="role"}/{env="testing"}'],
        ),
        (
            {"env": "testing", "group_by": "role", "wait": "long"},
            [("notify-testing", frozenset({"role"}), False, 120, 300, 14400)],
            ['{}/{group_by="role"}/{env="testing"}/{wait="long"}'],
        ),
    ],
)
def test_route_match_as_alertmanager(
    labels: dict[str, str], expected: list[tuple[object, ...]], keys: list[str]
) -> None:
    matched = tree().match(labels)
    assert [opts(r) for r in matched] == expected
    assert [r.key() for r in matched] == keys


def test_walk_order_is_depth_first() -> None:
    assert [r.receiver for r in tree().walk()] == [
        "notify-def",
        "notify-A",
        "notify-testing",
        "notify-productionA",
        "notify-productionB",
        "notify-BC",
        "notify-def",
        "notify-testing",
        "notify-testing",
    ]


def test_child_inherits_group_by_all_unless_it_sets_group_by() -> None:
    text = (
        """
route:
  receiver: notify-def
  routes:
  - match: {env: parent}
    group_by: ['...']
    routes:
    - match: {env: child1}
    - match: {env: child2}
      group_by: ['foo']
"""
        + RECEIVERS
    )
    parent = parse_config(text).route.routes[0]
    assert parent.group_by_all
    assert parent.routes[0].group_by_all
    assert not parent.routes[1].group_by_all
    assert parent.routes[1].group_by == ("foo",)


def test_matchers_are_sorted_like_alertmanager() -> None:
    text = (
        """
route:
  receiver: notify-def
  routes:
  - matchers: ['{owner="team-A"}', '{level!="critical"}']
    receiver: notify-A
    routes:
    - matchers: [ env=~"produ.*", job=~".*"]
      receiver: notify-productionB
"""
        + RECEIVERS
    )
    route = parse_config(text).route
    child = route.match({"owner": "team-A", "env": "production"})[0]
    assert child.key() == '{}/{level!="critical",owner="team-A"}/{env=~"produ.*",job=~".*"}'
    assert child.id() == '{}/{level!="critical",owner="team-A"}/{env=~"produ.*",job=~".*"}/0'
    assert route.id() == "{}"


def test_root_is_the_match_when_no_child_matches() -> None:
    route = tree()
    assert route.match({"owner": "team-Z"}) == [route]
    assert route.key() == "{}"


DOCS_EXAMPLE = Path(__file__).parent / "data" / "config" / "valid" / "readme_example.yml"


def test_documented_example_routes_database_alerts() -> None:
    route = parse_config(DOCS_EXAMPLE.read_text()).route
    db_x = route.match({"service": "database", "owner": "team-X", "alertname": "Down"})
    assert [r.receiver for r in db_x] == ["team-X-pager"]
    assert db_x[0].group_by == ("alertname", "cluster", "database")
    db_other = route.match({"service": "database", "alertname": "Down"})
    assert [r.receiver for r in db_other] == ["team-DB-pager"]
    files = route.match({"service": "files", "severity": "critical"})
    assert [r.receiver for r in files] == ["team-Y-pager"]
    assert files[0].repeat_interval_s == 3 * 3600
    frontend = route.match({"service": "foo1", "severity": "warning"})
    assert [r.receiver for r in frontend] == ["team-X-mails"]
    assert [r.receiver for r in route.match({"service": "other"})] == ["team-X-mails"]


def test_continue_sends_to_both_routes_in_simple_example() -> None:
    path = DOCS_EXAMPLE.with_name("simple_example.yml")
    route = parse_config(path.read_text()).route
    matched = route.match({"service": "database", "owner": "team-X"})
    assert [r.receiver for r in matched] == ["team-X-pager"]
    text = path.read_text().replace('owner="team-Y"', 'owner=~"team-.*"')
    matched = parse_config(text).route.match({"service": "database", "owner": "team-X"})
    assert [r.receiver for r in matched] == ["team-X-pager", "team-Y-pager"]


def test_group_key_uses_alertmanagers_format() -> None:
    route = parse_config(DOCS_EXAMPLE.read_text()).route
    labels = {"service": "database", "alertname": "Down", "cluster": "eu", "x": "1"}
    node = route.match(labels)[0]
    assert node.group_labels(labels) == {"alertname": "Down", "cluster": "eu"}
    assert node.group_key(labels) == '{}/{service="database"}:{alertname="Down", cluster="eu"}'
    everything = Route(receiver="r", group_by_all=True)
    assert everything.group_key({"b": 'q"1', "a": "x"}) == '{}:{a="x", b="q\\"1"}'
