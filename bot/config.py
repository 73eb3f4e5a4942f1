"""The one place that reads config.toml and GOVQA_* environment overrides.

`Settings` is the single source of defaults and types: pydantic-settings reads the TOML file and
GOVQA_<SECTION>__<KEY> environment variables (environment over file over defaults), the model
validates them, and a wrong value names its setting and the type expected
(`search.alpha: expected a number, got 'high'`). `load_config()` returns the validated settings as
a dict of sections (what the rest of the code reads); `load_settings()` the typed model."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG = Path("config.toml")  # in the working directory; the built-in defaults below otherwise
ENV_PREFIX = "GOVQA_"
ENV_NESTING = "__"


class ConfigError(ValueError):
    pass


def _as_list(value: Any) -> Any:
    """A list setting from the environment (or TOML text): a JSON array, else comma-separated."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ValueError(f"not a JSON list: {exc}") from exc
        return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value]  # GOVQA_TELEGRAM__ALLOWED_CHATS=123 read as a number elsewhere
    return value


StrList = Annotated[list[str], NoDecode]
IntList = Annotated[list[int], NoDecode]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _lists(cls, value: Any, info) -> Any:
        annotation = cls.model_fields[info.field_name].annotation
        if getattr(annotation, "__origin__", None) is list:
            return _as_list(value)
        return value


class IndexSection(Section):
    dir: str = "data/index"
    keep_generations: int = Field(3, ge=1)
    watch_quiet_seconds: float = Field(2.0, ge=0)
    max_deltas: int = Field(8, ge=0)
    delta_share: float = Field(0.1, ge=0)


class EmbedderSection(Section):
    name: str = "use-multilingual"
    model: str = ""
    dim: int = Field(256, ge=1)
    workers: int = Field(0, ge=0)


class SearchSection(Section):
    backend: Literal["embedded", "milvus"] = "embedded"
    alpha: float = Field(0.4, ge=0, le=1)
    candidates: int = Field(100, ge=1)
    context: float = Field(0.3, ge=0)
    faiss_exact_max: int = Field(20000, ge=0)
    faiss_ann: str = "ivf"
    ivf_lists: int = Field(0, ge=0)
    ivf_probe: int = Field(64, ge=1)
    hnsw_m: int = Field(32, ge=1)
    hnsw_ef_construction: int = Field(200, ge=1)
    hnsw_ef_search: int = Field(128, ge=1)


class AnswerSection(Section):
    top_k: int = Field(6, ge=1)
    min_confidence: float = Field(0.45, ge=0, le=1)


class ApiSection(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    rate_per_second: float = Field(20.0, ge=0)
    burst: int = Field(40, ge=0)
    max_body_bytes: int = Field(65536, ge=1)
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1)
    max_files: int = Field(20, ge=1)
    reload_seconds: float = Field(2.0, gt=0)
    # proxies whose X-Forwarded-For / X-Forwarded-Proto are trusted (addresses or networks; "*" all)
    forwarded_allow_ips: StrList = []
    # host names answered without API keys besides loopback's (localhost, 127.0.0.1, [::1]); with
    # keys every host is
    allowed_hosts: StrList = []
    # origins (scheme://host[:port]) whose pages may call the API from a browser (CORS); empty: none
    cors_origins: StrList = []

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        # an origin as browsers send it, e.g. https://portal.example.gov.cn or http://127.0.0.1:3000
        bad = [o for o in v if o != "*" and not re.fullmatch(r"https?://[^/\s?#]+", o)]
        if bad:
            raise ValueError(f"not an origin (scheme://host[:port], no path): {', '.join(bad)}")
        return v


class TelegramSection(Section):
    api_base_url: str = ""
    allowed_chats: IntList = []
    webhook_url: str = ""


class ObservabilitySection(Section):
    # a folder for the audit log of questions (JSON lines, one file a day); empty: off
    query_log: str = ""
    # query log files older than this many days are removed
    query_log_days: int = Field(30, ge=1)
    # logs as JSON lines (govqa's and uvicorn's), as `govqa serve --log-json`
    log_json: bool = False


class MilvusSection(Section):
    uri: str = "http://127.0.0.1:19530"
    prefix: str = Field("govqa", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # govqa, govqa_staging
    timeout_seconds: float = Field(10.0, gt=0)


class LimitsSection(Section):
    # the most a zip-based document (docx) may expand to, in MB
    max_expanded_mb: float = Field(200.0, gt=0)


class OcrSection(Section):
    # a scanned PDF or image with more pages than this is refused
    max_pages: int = Field(300, ge=1)
    # OCR of one file stops (and the file fails) after this many seconds
    max_seconds: float = Field(900.0, gt=0)
    # a file read by OCR with a lower mean confidence is flagged for review
    min_confidence: float = Field(0.8, ge=0, le=1)


class FetchSection(Section):
    # the most to wait for a connection or for the next bytes of an answer, in seconds
    timeout_seconds: float = Field(20.0, gt=0)
    # the most one download may take in all, in seconds
    max_seconds: float = Field(120.0, gt=0)
    # a larger download is refused, in MB
    max_mb: float = Field(50.0, gt=0)
    max_redirects: int = Field(5, ge=0)


class Settings(BaseSettings):
    """Every setting, its type and its default. Sections are the TOML tables."""

    model_config = SettingsConfigDict(extra="forbid", env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTING,
                                      case_sensitive=False)

    index: IndexSection = IndexSection()
    embedder: EmbedderSection = EmbedderSection()
    search: SearchSection = SearchSection()
    milvus: MilvusSection = MilvusSection()
    answer: AnswerSection = AnswerSection()
    api: ApiSection = ApiSection()
    telegram: TelegramSection = TelegramSection()
    observability: ObservabilitySection = ObservabilitySection()
    limits: LimitsSection = LimitsSection()
    ocr: OcrSection = OcrSection()
    fetch: FetchSection = FetchSection()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_config() reads the file and the environment through the sources below and hands
        # the merged values in; constructing Settings() alone gives the defaults
        return (init_settings,)


SECTIONS = tuple(Settings.model_fields)
DEFAULTS: dict[str, dict[str, Any]] = Settings().model_dump()


class _Environ(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping (tests pass their own)."""

    def __init__(self, environ: dict[str, str]):
        self._given = environ
        super().__init__(Settings, case_sensitive=False, env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTING)

    def _load_env_vars(self):
        return {k.lower(): v for k, v in self._given.items()}


_EXPECTED = {
    "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number",
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "a string", "list_type": "a list", "model_type": "a table of settings",
    "dict_type": "a table of settings",
}


def _describe(error: dict) -> str:
    loc = [str(p) for p in error["loc"]]
    if loc and loc[-1].isdigit():  # an item of a list: name the list and the item
        name, item = ".".join(loc[:-1]), f" (item {int(loc[-1]) + 1})"
    else:
        name, item = ".".join(loc), ""
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown setting {name}" if len(loc) > 1 else f"unknown section [{name}]"
    if kind in _EXPECTED:
        return f"{name}: expected {_EXPECTED[kind]}{item}, got {error['input']!r}"
    msg = error["msg"].removeprefix("Value error, ")
    return f"{name}: {msg[:1].lower()}{msg[1:]}{item}, got {error.get('input')!r}"


def _env_name(loc: tuple) -> str:
    return ENV_PREFIX + ENV_NESTING.join(str(p).upper() for p in loc[:2])


def load_settings(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file (./config.toml when no path is given and it exists), then
    GOVQA_<SECTION>__<KEY> environment variables. Unknown sections or keys are errors, and so are
    values of the wrong type: the message names the setting, where it was set and what it expects."""
    environ = os.environ if environ is None else environ
    file = Path(path) if path else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    if path and not file.is_file():
        raise ConfigError(f"config file {file} does not exist")
    data: dict[str, Any] = {}
    if file is not None:
        try:
            data = TomlConfigSettingsSource(Settings, toml_file=file)()
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: {exc}") from exc
        for section, values in data.items():
            if section not in SECTIONS or not isinstance(values, dict):
                raise ConfigError(f"{file}: unknown section [{section}]")
    env_given = {}
    for name, raw in environ.items():
        if not name.upper().startswith(ENV_PREFIX) or ENV_NESTING not in name:
            continue  # GOVQA_API_KEYS and other secrets are not settings
        section, _, key = name[len(ENV_PREFIX):].lower().partition(ENV_NESTING)
        if section not in SECTIONS or key not in Settings.model_fields[section].annotation.model_fields:
            raise ConfigError(f"environment variable {name} names no setting ({section}.{key})")
        env_given[name] = raw
    try:
        env = _Environ(env_given)()
    except Exception as exc:  # pydantic-settings' own parse errors
        raise ConfigError(f"environment: {exc}") from exc
    merged = {section: dict(values) for section, values in data.items()}
    for section, values in env.items():
        merged.setdefault(section, {}).update(values)
    try:
        return Settings(**merged)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            var = _env_name(loc)
            where = (f"environment variable {var}" if var in {n.upper() for n in env_given}
                     else str(file) if file is not None else "settings")
            problems.append(f"{where}: {_describe(error)}")
        raise ConfigError("; ".join(problems)) from None


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """The settings as a dict of sections ({"index": {"dir": ...}, ...}); see load_settings()."""
    return load_settings(path, environ).model_dump()
