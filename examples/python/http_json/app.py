"""acme.http_json: current weather from a JSON API, with an API token the skill never sees.

``weather`` calls ``GET https://api.weather.example/v1/current?city=...&units=...`` (the one
host skill.toml allows) and answers with a typed ``Weather`` record. The request carries
``Authorization: Bearer <token>``, but the token is not in this code or in the component: the
skill names the secret (``secret("skill:acme.http_json/api_token", prefix="Bearer ")``) and
the host fills the header in from the operator's vault. If the API ever echoes the token back,
the host redacts it from the output and the logs.

The API is fictional; it answers ``{"city": "Paris", "temperature": 21.5,
"conditions": "light rain", "humidity": 81, "observed_at": "2026-01-31T12:00:00Z"}``.
"""

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from palyra_sdk import Field, NotFound, ToolFailure, http, log, secret, tool

API_HOST = "api.weather.example"
VAULT_REF = "skill:acme.http_json/api_token"

Units = Literal["metric", "imperial"]


@dataclass
class Weather:
    """The current weather in a city."""

    city: Annotated[str, Field(description="The city as the API names it")]
    temperature: Annotated[float, Field(description="°C (metric) or °F (imperial)")]
    units: Units
    conditions: Annotated[str, Field(description="e.g. 'light rain'")]
    humidity: Annotated[int, Field(description="Relative humidity, %", minimum=0, maximum=100)]
    observed_at: Annotated[str, Field(description="When the API measured it (ISO 8601)")]


def _field(data: dict[str, Any], name: str, kind: type, limit: int = 200) -> Any:
    """A field of the API's answer, checked: the API is outside the sandbox's trust."""
    value = data.get(name)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ToolFailure(
            "upstream",
            f"the weather API's answer has no valid '{name}' ({kind.__name__})",
            {"field": name},
        )
    if isinstance(value, str) and len(value) > limit:
        value = value[:limit]
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolFailure("upstream", f"the weather API's '{name}' is not a finite number")
    return value


@tool
def weather(
    city: Annotated[
        str, Field(description="City name, any script", min_length=1, max_length=80, pattern=r"\S")
    ],
    units: Units = "metric",
    port: Annotated[
        int,
        Field(
            description="Development and tests only: the API's port on the same host; the "
            "operator's port policy still applies",
            minimum=1,
            maximum=65535,
        ),
    ] = 443,
) -> Weather:
    """Current weather in a city: temperature, conditions and humidity."""
    authority = API_HOST if port == 443 else f"{API_HOST}:{port}"
    log.info(f"weather for {city!r} ({units})")
    try:
        response = http.get(
            f"https://{authority}/v1/current",
            params={"city": city.strip(), "units": units},
            headers={"Accept": "application/json"},
            secret_headers={"Authorization": secret(VAULT_REF, prefix="Bearer ")},
        )
    except NotFound:  # the only not-found an HTTP call has: the secret is not in the vault
        raise ToolFailure(
            "not_found",
            f"the API token is not configured: the operator must store the secret {VAULT_REF}",
            {"secret": VAULT_REF},
        ) from None
    if response.status == 404:
        raise ToolFailure("not_found", f"the weather API knows no city {city.strip()!r}")
    if response.status in (401, 403):
        raise ToolFailure(
            "upstream",
            f"the weather API refused the API token (HTTP {response.status}); "
            f"check the secret {VAULT_REF}",
            {"status": response.status},
        )
    if not response.ok:
        raise ToolFailure(
            "upstream",
            f"the weather API answered HTTP {response.status}",
            {"status": response.status},
        )
    data = response.json()  # a body that is not JSON raises UpstreamError: kind upstream
    if not isinstance(data, dict):
        raise ToolFailure("upstream", "the weather API's answer is not a JSON object")
    humidity = _field(data, "humidity", int)
    if not 0 <= humidity <= 100:
        raise ToolFailure("upstream", f"the weather API reports a humidity of {humidity}%")
    return Weather(
        city=_field(data, "city", str),
        temperature=_field(data, "temperature", float),
        units=units,
        conditions=_field(data, "conditions", str),
        humidity=humidity,
        observed_at=_field(data, "observed_at", str, 64),
    )
