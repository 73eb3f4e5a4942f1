"""Typed settings (bot/config.py): config.toml and GOVQA_* environment variables through one model."""

import re

import pytest

from bot.config import DEFAULTS, ConfigError, Settings, load_config, load_settings

from .conftest import REPO

CONFIG = REPO / "config.toml"


def test_config_toml_says_what_the_model_defaults_are():
    """config.toml documents every setting with its default: loading it changes nothing."""
    assert load_config(CONFIG, environ={}) == DEFAULTS
    text = CONFIG.read_text(encoding="utf-8")
    for section, values in DEFAULTS.items():
        assert f"[{section}]" in text
        for key in values:
            assert re.search(rf"^{key} = ", text, re.M), f"{section}.{key} is not in config.toml"


def test_the_keys_other_parts_read_and_their_defaults():
    c = load_config(CONFIG, environ={})
    assert c["index"] == {"dir": "data/index", "keep_generations": 3, "watch_quiet_seconds": 2.0, "max_deltas": 8,
                          "delta_share": 0.1}
    assert c["search"]["alpha"] == 0.4 and c["search"]["faiss_ann"] == "ivf" and c["answer"]["min_confidence"] == 0.45
    assert {k: c["api"][k] for k in ("host", "port", "rate_per_second", "burst", "max_body_bytes", "max_upload_bytes",
                                   "max_files", "reload_seconds")} == {
        "host": "127.0.0.1", "port": 8000, "rate_per_second": 20.0, "burst": 40, "max_body_bytes": 65536,
        "max_upload_bytes": 52428800, "max_files": 20, "reload_seconds": 2.0}
    assert {k: c["api"][k] for k in ("forwarded_allow_ips", "allowed_hosts")} == {
        "forwarded_allow_ips": [], "allowed_hosts": []}
    assert c["observability"] == {"query_log": "", "query_log_days": 30, "log_json": False}
    assert c["limits"] == {"max_expanded_mb": 200}
    assert c["telegram"] == {"api_base_url": "", "allowed_chats": [], "webhook_url": ""}


def test_a_wrong_type_in_the_environment_names_the_setting_and_the_variable():
    with pytest.raises(ConfigError) as e:
        load_config(CONFIG, environ={"GOVQA_SEARCH__ALPHA": "high"})
    assert "search.alpha: expected a number, got 'high'" in str(e.value)
    assert "GOVQA_SEARCH__ALPHA" in str(e.value)
    with pytest.raises(ConfigError, match=r"api\.port: expected an integer, got 'eighty'"):
        load_config(CONFIG, environ={"GOVQA_API__PORT": "eighty"})
    with pytest.raises(ConfigError, match=r"observability\.log_json: expected true or false, got 'perhaps'"):
        load_config(CONFIG, environ={"GOVQA_OBSERVABILITY__LOG_JSON": "perhaps"})


def test_a_wrong_type_in_the_file_names_the_setting_and_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[search]\nalpha = "high"\n\n[observability]\nquery_log_days = "a month"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path, environ={})
    message = str(e.value)
    assert "search.alpha: expected a number, got 'high'" in message and str(path) in message
    assert "observability.query_log_days: expected an integer, got 'a month'" in message


def test_unknown_settings_and_out_of_range_values_are_errors(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[search]\nalfa = 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown setting search\.alfa"):
        load_config(path, environ={})
    path.write_text("[serch]\nalpha = 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown section \[serch\]"):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match="GOVQA_INDEX__DIRR names no setting"):
        load_config(CONFIG, environ={"GOVQA_INDEX__DIRR": "x"})
    with pytest.raises(ConfigError, match=r"search\.alpha: input should be less than or equal to 1"):
        load_config(CONFIG, environ={"GOVQA_SEARCH__ALPHA": "1.5"})


def test_environment_nesting_overrides_the_file_and_leaves_the_rest(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[index]\ndir = "from-file"\nkeep_generations = 5\n', encoding="utf-8")
    env = {"GOVQA_INDEX__DIR": "/srv/govqa/index", "GOVQA_API__PORT": "9000", "GOVQA_SEARCH__ALPHA": "0.25",
           "GOVQA_OBSERVABILITY__LOG_JSON": "true", "GOVQA_LIMITS__MAX_EXPANDED_MB": "50",
           "GOVQA_API_KEYS": "secret", "GOVQA_ADMIN_KEYS": "secret2", "OTHER": "x"}  # secrets are no settings
    c = load_config(path, environ=env)
    assert c["index"]["dir"] == "/srv/govqa/index" and c["index"]["keep_generations"] == 5
    assert c["api"]["port"] == 9000 and c["search"]["alpha"] == 0.25 and c["observability"]["log_json"] is True
    assert c["limits"]["max_expanded_mb"] == 50 and c["search"]["candidates"] == 100
    typed = load_settings(path, environ=env)
    assert isinstance(typed, Settings) and typed.api.port == 9000 and typed.index.keep_generations == 5


@pytest.mark.parametrize("raw", ['["a.example.org", "b.example.org"]',
                                 "a.example.org,b.example.org",
                                 " a.example.org , b.example.org, "])
def test_lists_from_json_or_comma_separated(raw):
    c = load_config(CONFIG, environ={"GOVQA_API__ALLOWED_HOSTS": raw})
    assert c["api"]["allowed_hosts"] == ["a.example.org", "b.example.org"]


def test_cors_origins_are_origins():
    c = load_config(CONFIG, environ={"GOVQA_API__CORS_ORIGINS": "https://portal.example.gov.cn,http://127.0.0.1:3000"})
    assert c["api"]["cors_origins"] == ["https://portal.example.gov.cn", "http://127.0.0.1:3000"]
    assert load_config(CONFIG, environ={})["api"]["cors_origins"] == []  # off by default
    with pytest.raises(ConfigError, match=r"api\.cors_origins: .*not an origin .*: portal\.example\.gov\.cn/path"):
        load_config(CONFIG, environ={"GOVQA_API__CORS_ORIGINS": "https://ok.example,portal.example.gov.cn/path"})


def test_list_values_of_numbers_and_in_toml(tmp_path):
    assert load_config(CONFIG, environ={"GOVQA_TELEGRAM__ALLOWED_CHATS": "-1001234,42"})["telegram"]["allowed_chats"] \
        == [-1001234, 42]
    assert load_config(CONFIG, environ={"GOVQA_TELEGRAM__ALLOWED_CHATS": "[7]"})["telegram"]["allowed_chats"] == [7]
    assert load_config(CONFIG, environ={"GOVQA_API__ALLOWED_HOSTS": ""})["api"]["allowed_hosts"] == []
    with pytest.raises(ConfigError, match=r"telegram\.allowed_chats: expected an integer \(item 2\), got 'x'"):
        load_config(CONFIG, environ={"GOVQA_TELEGRAM__ALLOWED_CHATS": "1,x"})
    path = tmp_path / "config.toml"
    path.write_text('[api]\nforwarded_allow_ips = ["10.0.0.1", "10.0.0.2"]\nallowed_hosts = "a.org"\n',
                    encoding="utf-8")
    c = load_config(path, environ={})
    assert c["api"]["forwarded_allow_ips"] == ["10.0.0.1", "10.0.0.2"] and c["api"]["allowed_hosts"] == ["a.org"]


def test_the_settings_dict_is_json(tmp_path):
    """`govqa serve --workers N` hands the settings to its workers as JSON."""
    import json

    c = load_config(CONFIG, environ={"GOVQA_API__ALLOWED_HOSTS": "a,b"})
    assert json.loads(json.dumps(c)) == c
