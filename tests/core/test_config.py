import pytest

from aionix import config
from aionix.errors import ConfigError


def test_defaults_are_secure():
    cfg = config.load(env={})
    assert cfg.server.host == "127.0.0.1"
    assert cfg.server.port == 53000
    assert cfg.database.synchronous == "FULL"
    assert cfg.security.cors_origins == []


def test_precedence_flag_over_env_over_file_over_default(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('[server]\nport = 1111\nhost = "127.0.0.2"\n[limits]\nmax_page_size = 7\n')
    cfg = config.load(
        file, env={"AIONIX_SERVER_PORT": "2222", "AIONIX_SERVER_HOST": "127.0.0.3"}, overrides={"server.port": 3333}
    )
    assert cfg.server.port == 3333
    assert cfg.server.host == "127.0.0.3"
    assert cfg.limits.max_page_size == 7
    assert cfg.limits.max_body_bytes == 1_048_576


def test_env_lists_and_service_sections():
    cfg = config.load(env={"AIONIX_SECURITY_CORS_ORIGINS": "http://a,http://b", "AIONIX_FUNCTIONS_POOL_SIZE": "3"})
    assert cfg.security.cors_origins == ["http://a", "http://b"]
    assert cfg.functions == {"pool_size": "3"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"env": {"AIONIX_SERVER_PORT": "abc"}}, "server.port: Input should be a valid integer"),
        ({"env": {"AIONIX_SERVER_PORT": "70000"}}, "server.port"),
        ({"env": {"AIONIX_DATABASE_SYNCHRONOUS": "OFF"}}, "database.synchronous"),
        ({"overrides": {"limits.max_body_bytes": -1}}, "limits.max_body_bytes"),
    ],
)
def test_bad_values_name_key_reason_and_origin(source, expected):
    with pytest.raises(ConfigError) as info:
        config.load(env=source.get("env", {}), overrides=source.get("overrides"))
    assert expected in info.value.message
    assert "\n" not in info.value.message


def test_unknown_key_in_file_is_named(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"server\.prot: unknown key"):
        config.load(file, env={})


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(bad, env={})
    with pytest.raises(ConfigError, match="cannot read config file"):
        config.load(tmp_path / "missing.toml", env={})


def test_shipped_config_toml_documents_every_core_key():
    from pathlib import Path

    text = (Path(__file__).parents[2] / "config.toml").read_text()
    cfg = config.load(Path(__file__).parents[2] / "config.toml", env={})
    for section in config.CORE_SECTIONS:
        assert f"[{section}]" in text
        for key in type(getattr(cfg, section)).model_fields:
            assert f"\n{key} =" in text, f"{section}.{key} is not documented in config.toml"
