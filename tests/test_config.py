"""``inferwatch.yaml``: loading, defaults, path resolution and errors naming file:line:field."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferwatch._errors import ConfigError
from inferwatch.config import load_config, parse_config

EXAMPLE = Path(__file__).parent.parent / "examples" / "inferwatch.yaml"


def test_the_example_loads_with_every_section() -> None:
    cfg = load_config(EXAMPLE)
    folder = EXAMPLE.parent
    assert (cfg.listen_host, cfg.listen_port) == ("127.0.0.1", 9090)
    assert cfg.external_url == "http://127.0.0.1:9090"
    assert cfg.storage.retention_s == 15 * 86400
    assert cfg.storage.path == str(folder / "inferwatch.db")
    assert cfg.prometheus.rule_files[0] == str(folder / "rules" / "model-serving.yml")
    assert [job.job_name for job in cfg.prometheus.scrape_configs] == ["demo"]
    assert cfg.prometheus_file is None
    assert cfg.prometheus_raw["scrape_configs"][0]["job_name"] == "demo"
    assert cfg.alertmanager_raw is not None and cfg.alertmanager_raw["route"]["receiver"] == "team"
    assert cfg.alertmanager_config().route.receiver == "team"
    assert cfg.probe_files == (str(folder / "probes.yml"),)
    assert cfg.baseline_files == (str(folder / "baselines.yml"),)
    assert cfg.prices_file == str(folder / "prices.yml")
    assert cfg.scaling_interval_s == 15
    assert cfg.scaling["digits"].capacity_rps == 50
    assert cfg.deployment is not None and cfg.deployment.model == "digits"
    assert cfg.auth is None


def test_an_empty_file_gives_the_defaults() -> None:
    cfg = parse_config("")
    assert cfg.listen == "127.0.0.1:9090"
    assert cfg.prometheus.scrape_configs == ()
    assert cfg.alertmanager_config() is None
    assert cfg.scaling == {}


def test_a_plain_prometheus_file_is_read_as_the_prometheus_part(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text("global: {scrape_interval: 2s}\nrule_files: [r.yml]\n")
    cfg = load_config(path)
    assert cfg.prometheus.scrape_interval_s == 2
    assert cfg.prometheus.rule_files == (str(tmp_path / "r.yml"),)
    assert cfg.prometheus_file == str(path)


def test_relative_files_are_resolved_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "prom.yml").write_text("global: {evaluation_interval: 3s}\n")
    (tmp_path / "am.yml").write_text("route: {receiver: x}\nreceivers: [{name: x}]\n")
    (tmp_path / "token").write_text("t0ken\n")
    path = tmp_path / "inferwatch.yaml"
    path.write_text(
        "listen: 0.0.0.0:9999\n"
        "storage: {path: data/x.db, retention: 2h}\n"
        "prometheus: prom.yml\n"
        "alertmanager: am.yml\n"
        "auth:\n"
        "  bearer_token_file: token\n"
        "  basic_auth: {username: admin, password: pw}\n"
    )
    cfg = load_config(path)
    assert cfg.storage.path == str(tmp_path / "data" / "x.db")
    assert cfg.storage.retention_s == 7200
    assert cfg.prometheus.evaluation_interval_s == 3
    assert cfg.prometheus_file == str(tmp_path / "prom.yml")
    assert cfg.alertmanager_file == str(tmp_path / "am.yml")
    assert cfg.auth is not None
    assert cfg.auth.bearer_token == "t0ken"
    assert cfg.auth.basic_auth == ("admin", "pw")
    assert cfg.external_url == "http://0.0.0.0:9999"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "listen: 127.0.0.1:9090\nstorage:\n  retention: 15x\n",
            "c.yaml:3: storage.retention: not a duration (use Prometheus units: 30s, 5m, 15d, "
            "1h30m) (got '15x')",
        ),
        ("listn: 1\n", "c.yaml:1: listn: unknown field"),
        ("scrape_configs: []\nlisten: 127.0.0.1:1\n", "c.yaml:1: scrape_configs: unknown field"),
        ("listen: nowhere\n", "c.yaml:1: listen: must be host:port"),
        ("listen: 0.0.0.0:9090\n", "c.yaml:1: auth: listening on 0.0.0.0:9090"),
        ("deployment:\n  name: d\n  port: 70000\n", "c.yaml:3: deployment.port: must be a port"),
        ("deployment:\n  port: 80\n", "c.yaml:1: deployment.name: is required"),
        ("probes: [missing.yml]\n", "c.yaml:1: probes[0]: no such file (got 'missing.yml')"),
        ("probes: nope\n", "c.yaml:1: probes: must be a valid list (got 'nope')"),
        (
            "scaling:\n  models:\n    m: {capacity_rps: -1}\n",
            "c.yaml:3: scaling.models.m.capacity_rps: must be a positive number",
        ),
        (
            "scaling:\n  models:\n    m: {capacty_rps: 1}\n",
            "c.yaml:3: scaling.models.m.capacty_rps: unknown field",
        ),
        ("auth: {}\n", "c.yaml:1: auth: set bearer_token, bearer_token_file or basic_auth"),
        (
            "auth:\n  basic_auth: {username: a}\n",
            "c.yaml:2: auth.basic_auth: give one of password or password_file",
        ),
        (
            "prometheus:\n  scrape_configs:\n    - job_name: a\n      scrape_interval: 1x\n",
            "c.yaml:4: prometheus.scrape_configs[0].scrape_interval:",
        ),
        ("prometheus: 3\n", "c.yaml:1: prometheus: must be a prometheus.yml file name"),
        ("listen: a:1\nlisten: b:2\n", 'c.yaml:2: mapping key "listen" already defined at line 1'),
        ("storage: [\n", "c.yaml:2: yaml:"),
        ("[1, 2]\n", "c.yaml:1: the file must be a mapping"),
    ],
)
def test_mistakes_name_the_file_the_line_and_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="c.yaml")
    assert message in str(err.value)


def test_every_schema_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("storage: {retention: x}\nlistn: 1\nprobes: 2\n", source="c.yaml")
    lines = str(err.value).splitlines()
    assert [line.split(": ")[0] for line in lines] == ["c.yaml:1", "c.yaml:2", "c.yaml:3"]
    assert err.value.field == "storage.retention"


def test_an_inline_alertmanager_mistake_names_the_line_in_this_file() -> None:
    text = "listen: 127.0.0.1:1\nalertmanager:\n  route: {receiver: nobody}\n  receivers: []\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="c.yaml")
    assert str(err.value).startswith("c.yaml:3")
    assert "nobody" in str(err.value)


def test_a_bad_price_file_stops_the_load_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "prices.yml").write_text(
        "instance_types: {a: {hourly: 1, cpus: 1, memory_gib: 1}}\n"
        "models: {m: {instance_type: b}}\n"
    )
    with pytest.raises(ConfigError, match=r"prices\.yml:2: models\.m\.instance_type: unknown"):
        parse_config("prices: prices.yml\n", source="c.yaml", base=tmp_path)
