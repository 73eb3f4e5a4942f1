"""The one place that reads config.toml and GOVQA_* environment overrides."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path("config.toml")  # in the working directory; the built-in defaults below otherwise
ENV_PREFIX = "GOVQA_"

DEFAULTS: dict[str, dict[str, Any]] = {
    "index": {"dir": "data/index", "keep_generations": 3, "watch_quiet_seconds": 2.0, "max_deltas": 8,
              "delta_share": 0.1},
    "embedder": {"name": "use-multilingual", "model": "", "dim": 256, "workers": 0},
    "search": {"alpha": 0.4, "candidates": 100, "context": 0.3, "faiss_exact_max": 20000, "faiss_ann": "ivf",
               "ivf_lists": 0, "ivf_probe": 64, "hnsw_m": 32, "hnsw_ef_construction": 200, "hnsw_ef_search": 128},
    "answer": {"top_k": 6, "min_confidence": 0.45},
    "api": {"host": "127.0.0.1", "port": 8000, "rate_per_second": 20.0, "burst": 40, "max_body_bytes": 65536,
            "max_upload_bytes": 50 * 1024 * 1024, "max_files": 20, "reload_seconds": 2.0},
    "telegram": {"api_base_url": "", "allowed_chats": [], "webhook_url": ""},
}


class ConfigError(ValueError):
    pass


def _parse_env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Defaults, then the TOML file (./config.toml when no path is given and it exists),
    then GOVQA_<SECTION>__<KEY> environment variables. Unknown sections or keys are errors."""
    environ = os.environ if environ is None else environ
    config = {section: dict(values) for section, values in DEFAULTS.items()}
    file = Path(path) if path else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    if path and not file.is_file():
        raise ConfigError(f"config file {file} does not exist")
    if file is not None:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: {exc}") from exc
        for section, values in data.items():
            if section not in config or not isinstance(values, dict):
                raise ConfigError(f"{file}: unknown section [{section}]")
            for key, value in values.items():
                if key not in config[section]:
                    raise ConfigError(f"{file}: unknown setting {section}.{key}")
                config[section][key] = value
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if section not in config or key not in config[section]:
            raise ConfigError(f"environment variable {name} names no setting ({section}.{key})")
        config[section][key] = _parse_env_value(raw)
    return config
