"""Cheaper ways to the same results, put into the SDK's and ``azure.functions``' modules.

Every episode re-sends the whole history and the SDK rebuilds its context from it, so work the
SDK repeats per event or per call is most of the host's CPU (docs/benchmarks.md, the passes).
Each change here gives the same values, text and errors as the code it stands in for (the
tests compare them), is made once per process when ``devhost.engine.invoke`` is imported, and
leaves a version of the SDK it was not written for as it is.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import sys
import time
from datetime import datetime
from typing import Any

from azure.functions import _durable_functions as durable_codec

_HOST_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,7}))?Z", re.ASCII
)


def _memoise_sdk_timestamp_parsing() -> None:
    """Parse each history timestamp once per process instead of once per episode.

    The SDK builds every history event with ``dateutil.parser.parse`` (about 0.2-0.6 ms each),
    and every episode re-sends the whole history, so parsing dominated replay time. Caching
    the results changes nothing the app can observe: the same string always gives an equal,
    immutable datetime. (tests/devhost/test_invoke_timestamps.py compares with dateutil.)
    """
    # The package re-exports a class of the same name, so import the module by its path.
    history_module = importlib.import_module("azure.durable_functions.models.history.HistoryEvent")
    original = history_module.dt_parse
    if getattr(original, "_devhost_cached", False):
        return

    # dateutil gives "...Z" the local zone (tzlocal) when that zone is named UTC, else tzutc,
    # and may decide by date where the local zone has daylight saving time. Without DST its
    # choice is the same for every date, so it is learnt once.
    zone = original("2000-01-01T00:00:00Z").tzinfo if time.daylight == 0 else None

    def parse_once(timestr: Any, *args: Any, **kwargs: Any) -> Any:
        # The host's own timestamps (dotnet_time) are read directly, as dateutil's general
        # parser (about 0.2 ms) reads them: the fraction truncated to microseconds, the zone
        # as above. Anything else goes to dateutil itself.
        match = (
            _HOST_TIMESTAMP.fullmatch(timestr)
            if type(timestr) is str and not args and not kwargs
            else None
        )
        if match is None or zone is None:
            return original(timestr, *args, **kwargs)
        *fields, fraction = match.groups()
        year, month, day, hour, minute, second = map(int, fields)
        micro = int((fraction or "").ljust(6, "0")[:6])
        try:
            return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
        except ValueError:
            return original(timestr)  # an impossible date: dateutil's own error

    # The cache is the parser the SDK calls (one call per event per episode, so no wrapper
    # around it): the SDK passes one text, and any hashable arguments give the same datetime
    # each time; an exception is not cached.
    parse = functools.lru_cache(maxsize=200_000)(parse_once)

    parse._devhost_cached = True  # type: ignore[attr-defined]
    history_module.dt_parse = parse  # type: ignore[attr-defined]


_memoise_sdk_timestamp_parsing()


def _memoise_sdk_function(module_name: str, name: str, maxsize: int) -> None:
    """Put an ``lru_cache`` around the SDK module's ``name`` (once; left alone if absent)."""
    module = importlib.import_module(module_name)
    original = getattr(module, name, None)
    if original is not None and not hasattr(original, "cache_info"):
        setattr(module, name, functools.lru_cache(maxsize=maxsize)(original))


# The SDK's orchestration executor builds the same two-field ``namedtuple`` class each time it
# is created, once per episode; ``namedtuple`` compiles code for that (about 0.15 ms). The class
# is only used to build the executor's own constant table, so one class serves.
_memoise_sdk_function("azure.durable_functions.models.TaskOrchestrationExecutor", "namedtuple", 8)
# Every ``DurableOrchestrationContext`` parses the same two timer settings ("3.00:00:00" and
# "6.00:00:00") with a regular expression; the ``timedelta`` they give is immutable, so one
# parse of each text serves (an exception is not cached).
_memoise_sdk_function(
    "azure.durable_functions.models.DurableOrchestrationContext", "parse_timespan_attrib", 64
)


def _read_strict_typing_setting_directly() -> None:
    """``azure.functions`` reads its strict-typing setting from ``os.environ`` on every
    ``df_dumps``/``df_loads`` (about fifty times per HelloSequence5, 1-3 us each: the mapping
    raises and catches a ``KeyError`` for an unset variable). The same answer, read from the
    dictionary ``os.environ`` keeps its values in, costs a tenth of that; it still sees every
    change made through ``os.environ``. (tests/devhost/test_invoke_strict_typing.py compares
    it with the original.)"""
    original = getattr(durable_codec, "_is_strict_mode", None)
    variable = getattr(durable_codec, "_STRICT_ENV_VAR", None)
    truthy = getattr(durable_codec, "_TRUTHY", None)
    environ = os.environ
    values = getattr(environ, "_data", None)
    if (
        original is None
        or getattr(original, "_devhost_direct", False)
        or not isinstance(variable, str)
        or not isinstance(truthy, frozenset)
        or not isinstance(values, dict)
    ):
        return  # not the codec (or the os module) this was written for: leave it as it is
    key = environ.encodekey(variable)
    decode = environ.decodevalue

    def is_strict_mode() -> bool:
        raw = values.get(key)
        return raw is not None and decode(raw).strip().lower() in truthy

    is_strict_mode._devhost_direct = True  # type: ignore[attr-defined]
    durable_codec._is_strict_mode = is_strict_mode


_read_strict_typing_setting_directly()


def _reuse_codec_encoder_and_decoder() -> None:
    """``df_dumps`` calls ``json.dumps`` with a ``default`` and ``df_loads`` calls
    ``json.loads`` with an ``object_hook``, and with either ``json`` makes a new encoder or
    decoder (and its scanner) for each call: about fifty times per HelloSequence5, as the SDK
    encodes every activity's input and decodes every result again each episode. An encoder
    and a decoder hold no state between calls, so one of each with the same settings gives
    the same text and values (0.7 to 0.07 us for a short text, 1.8 to 0.5 us to decode one).
    Strict typing, an expected type, bytes, a leading byte order mark and the decoding that
    emits the codec's one-time notice go the codec's own way. Every SDK module that imported
    the two functions gets these (tests/devhost/test_invoke_codec.py compares them with the
    codec's own)."""
    dumps = getattr(durable_codec, "df_dumps", None)
    loads = getattr(durable_codec, "df_loads", None)
    serialize = getattr(durable_codec, "_serialize_custom_object", None)
    deserialize = getattr(durable_codec, "_deserialize_custom_object", None)
    notified = "_no_expected_type_notice_emitted"
    if (
        dumps is None
        or loads is None
        or serialize is None
        or deserialize is None
        or not hasattr(durable_codec, notified)
        or getattr(dumps, "_devhost_reused", False)
    ):
        return  # not the codec this was written for: leave it as it is
    encoder = json.JSONEncoder(default=serialize)
    decoder = json.JSONDecoder(object_hook=deserialize)

    def df_dumps(value: Any) -> str:
        if durable_codec._is_strict_mode():
            return dumps(value)
        return encoder.encode(value)

    def df_loads(s: str, expected_type: type | None = None) -> Any:
        if (
            expected_type is not None
            or type(s) is not str
            or s.startswith("\ufeff")
            or not getattr(durable_codec, notified, True)  # its one-time notice, from its place
            or durable_codec._is_strict_mode()
        ):
            return loads(s, expected_type)
        return decoder.decode(s)

    df_dumps.__doc__, df_loads.__doc__ = dumps.__doc__, loads.__doc__
    df_dumps.__wrapped__, df_loads.__wrapped__ = dumps, loads  # type: ignore[attr-defined]
    df_dumps._devhost_reused = df_loads._devhost_reused = True  # type: ignore[attr-defined]
    replacements = {id(dumps): df_dumps, id(loads): df_loads}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("azure.functions", "azure.durable_functions")):
            continue
        for attribute in ("df_dumps", "df_loads"):
            current = getattr(module, attribute, None)
            if current is dumps or current is loads:
                setattr(module, attribute, replacements[id(current)])


_reuse_codec_encoder_and_decoder()
