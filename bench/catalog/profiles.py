"""Owner profiles: the site figures as a hyperscaler, a neocloud or an enterprise pays them.

`tokenbench cost --profile NAME` replaces the packaged site figures (site.toml) named by the
profile in profiles.toml; the rest stay. The default, enterprise, is the packaged figures as they
are. The same file holds the published owned costs per GPU-hour the profiles are calibrated
against (SemiAnalysis's AI Cloud TCO model, as InferenceX publishes it): see bench/cost/README.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, ValidationError

from bench.catalog.sourced import SiteValue, Sourced, fail, read_toml, site_values
from bench.errors import first_error

DEFAULT_PROFILE = "enterprise"
LABEL = "bench/catalog/profiles.toml"


class PublishedTco(Sourced):
    """A published all-in owned cost per GPU-hour for one GPU and one kind of owner."""

    gpu: str
    owner: Literal["hyperscaler", "neocloud"]
    usd_per_gpu_hour: float = Field(gt=0)
    all_in_kw: float = Field(gt=0)  # the all-in power per GPU the figure is computed at


@dataclass(frozen=True)
class Profile:
    """One kind of owner: a summary and the site figures it replaces."""

    name: str
    summary: str
    site: dict[str, SiteValue]


@dataclass(frozen=True)
class Profiles:
    """The packaged profiles by name, and the published costs they are calibrated against."""

    profiles: dict[str, Profile]
    published: list[PublishedTco]


def _profile(name: str, raw: Any) -> Profile:
    if not isinstance(raw, dict) or not isinstance(raw.get("summary"), str):
        raise fail(LABEL, f"profile.{name}: expected a table with a summary")
    unknown = sorted(set(raw) - {"summary", "site"})
    if unknown:
        raise fail(LABEL, f"profile.{name}: unknown key(s) {unknown}")
    site = site_values(raw.get("site", {}), LABEL, default_source=None, where=f"profile.{name}.site")
    return Profile(name, raw["summary"], site)


@functools.lru_cache(maxsize=1)
def load_profiles() -> Profiles:
    """The packaged owner profiles and published TCO figures (parsed once)."""
    data = read_toml(None, LABEL, "profiles.toml")
    profiles = {name: _profile(name, raw) for name, raw in data.get("profile", {}).items()}
    if DEFAULT_PROFILE not in profiles or profiles[DEFAULT_PROFILE].site:
        raise fail(LABEL, f"profile.{DEFAULT_PROFILE}: the default profile must exist and replace no site figure")
    published = []
    for i, entry in enumerate(data.get("published_tco", [])):
        try:
            published.append(PublishedTco.model_validate(entry))
        except ValidationError as e:
            raise fail(LABEL, f"published_tco[{i}]: {first_error(e, 'entry', show_input=True)}") from None
    return Profiles(profiles, published)


def profile_names() -> list[str]:
    """The packaged profiles' names, the default first."""
    names = list(load_profiles().profiles)
    return [DEFAULT_PROFILE, *(n for n in names if n != DEFAULT_PROFILE)]
