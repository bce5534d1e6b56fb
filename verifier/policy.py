"""Recognition policy (跨省互认): which certificate types from which regions a verifier node accepts.

Policy is data, one JSON file per node (examples in `verifier/policies/`):

    {
      "region": "310000",                          the node's own GB/T 2260 region
      "description": "上海: 营业执照 from 浙江 and 上海",   optional, free text
      "acceptLastKnownUpToSeconds": 900,           optional: see below
      "recognise": [                               allow rules; a certificate is recognised if
        {                                          any rule matches both its type and region
          "types": ["11100000000013338W001"],      21-char type codes, or "*" for every type
          "regions": ["330000", "3101xx", "*"],    issuer regions, GB/T 2260 prefix semantics
          "requireFields": ["holder.name"],        optional: paths a presentation must disclose
          "requireNationalSealFrom": "2027-01-01"  optional: certificates anchored from that day
        }
      ]
    }

Region patterns: `"*"` matches every region; a 6-digit code matches by GB/T 2260 prefix, its
trailing `00` pairs being wildcards: `440000` covers `44xxxx`, `440100` covers `4401xx`,
`440103` only itself. The explicit forms `44xxxx` and `3301xx` mean the same as `440000` and
`330100`. An empty `recognise` list recognises nothing. Unknown keys are refused (a misspelt
`recognize` must not silently recognise nothing).

`requireFields` (optional, per rule): the paths a presentation must disclose when the rule
matches (the union over matching rules), e.g. a node that accepts a licence only with the
holder's name shown. A path also matches its children (`ext.scope` covers `ext.scope[0]`).

`requireNationalSealFrom` (optional, per rule): certificates of the rule's types and regions
anchored on or after that day (China Standard Time) must carry a valid SM2/SM3 national seal
(`verifier.checks.national_seal`); older ones, issued before the agency sealed, are judged
without it, as a rollout date of a 电子印章 requirement applies to what is issued from then on.
A seal that is present is checked whatever the policy says.

`acceptLastKnownUpToSeconds` (optional, whole seconds ≥ 0): with the chain unreachable, the node
answers from its index with what it last knew (`lastKnown`: verdict, block, age). Without this
key such an answer's verdict is ERROR; with it, an answer no older than that many seconds keeps
its verdict (`verifier.checks.freshness`). The answer and the receipt say which it was.

The type and region judged are the chain's (the anchored batch's type, the anchoring agency's
region), never the disclosed fields: see `verifier.checks.policy`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry import regions
from registry.error_codes import ErrorCode
from registry.errors import ConfigError

__all__ = ["POLICY_DIR", "Policy", "Rule", "covers_path", "region_prefix"]

POLICY_DIR = Path(__file__).resolve().parent / "policies"
ANY = "*"
_REGION = re.compile(r"[0-9]{6}")
_TYPE_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}[0-9]{3}")
_POLICY_KEYS = {"region", "description", "recognise", "acceptLastKnownUpToSeconds"}
LAST_KNOWN_MAX_S = 366 * 86400  # a year and a day: beyond that a "last-known" answer is no answer
_RULE_KEYS = {"types", "regions", "requireFields", "requireNationalSealFrom"}
CST = dt.timezone(dt.timedelta(hours=8))  # the days of `requireNationalSealFrom`


def _invalid(message: str) -> ConfigError:
    return ConfigError(message, code=ErrorCode.POLICY_INVALID)


def region_prefix(pattern: str) -> str:
    """The code prefix a region pattern covers (`registry.regions.region_prefix`), refused as a
    policy error."""
    try:
        return regions.region_prefix(pattern)
    except ConfigError as exc:
        raise _invalid(exc.message) from exc


def covers_path(named: str, disclosed: str) -> bool:
    """`named` is `disclosed` or one of its parents (`ext.scope` covers `ext.scope[0]`)."""
    return disclosed == named or disclosed.startswith((named + ".", named + "["))


@dataclass(frozen=True)
class Rule:
    """One allow rule: `types` None means every type; a prefix `""` means every region."""

    types: frozenset[str] | None
    region_prefixes: tuple[str, ...]
    require_fields: tuple[str, ...] = ()
    text: str = ""  # the rule as written, for reasons
    national_seal_from: dt.date | None = None  # certificates anchored from this CST day need one

    def matches(self, type_code: str, region: str) -> bool:
        return (self.types is None or type_code in self.types) and region.startswith(self.region_prefixes)

    @classmethod
    def from_json(cls, data: Any, position: int) -> Rule:
        where = f"recognise[{position}]"
        if not isinstance(data, Mapping):
            raise _invalid(f"{where} must be an object with types and regions")
        if unknown := set(data) - _RULE_KEYS:
            raise _invalid(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_RULE_KEYS)})")
        types = _strings(data.get("types"), f"{where}.types")
        regions = _strings(data.get("regions"), f"{where}.regions")
        required = _strings(data.get("requireFields", []), f"{where}.requireFields", allow_empty=True)
        for code in types:
            if code != ANY and not _TYPE_CODE.fullmatch(code):
                raise _invalid(
                    f"{where}.types: {code!r} is not a 21-character type code (USCC + 3 digits) or *"
                )
        text = f"types {'/'.join(types)} from regions {'/'.join(regions)}"
        return cls(
            None if ANY in types else frozenset(types),
            tuple(region_prefix(r) for r in regions),
            tuple(required),
            text,
            _day(data.get("requireNationalSealFrom"), f"{where}.requireNationalSealFrom"),
        )


def _day(value: Any, where: str) -> dt.date | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _invalid(f"{where} must be a day as YYYY-MM-DD") from None


def _strings(value: Any, where: str, *, allow_empty: bool = False) -> list[str]:
    if (
        not isinstance(value, list)
        or not all(isinstance(v, str) and v for v in value)
        or (not value and not allow_empty)
    ):
        raise _invalid(f"{where} must be a {'' if allow_empty else 'non-empty '}list of strings")
    return value


@dataclass(frozen=True)
class Policy:
    """A node's recognition policy; `allows` answers for one certificate."""

    region: str
    rules: tuple[Rule, ...]
    description: str = ""
    accept_last_known_up_to_s: int | None = None  # None: a last-known answer's verdict is ERROR

    @classmethod
    def load(cls, path: Path | str) -> Policy:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(
                f"Cannot read policy {path}: {exc.strerror}", code=ErrorCode.POLICY_INVALID
            ) from exc
        except ValueError as exc:
            raise ConfigError(f"Policy {path} is not JSON: {exc}", code=ErrorCode.POLICY_INVALID) from exc
        try:
            return cls.from_json(data)
        except ConfigError as exc:
            raise ConfigError(f"Policy {path}: {exc.message}", code=exc.code) from exc

    @classmethod
    def from_json(cls, data: Any) -> Policy:
        if not isinstance(data, Mapping):
            raise _invalid("A policy must be a JSON object with region and recognise")
        if unknown := set(data) - _POLICY_KEYS:
            raise _invalid(f"Unknown keys {sorted(unknown)} (allowed: {sorted(_POLICY_KEYS)})")
        region = data.get("region")
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            raise _invalid("region must be the node's 6-digit GB/T 2260 code")
        rules = data.get("recognise")
        if not isinstance(rules, list):
            raise _invalid("recognise must be a list of rules")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise _invalid("description must be text")
        accept = data.get("acceptLastKnownUpToSeconds")
        if accept is not None and (type(accept) is not int or not 0 <= accept <= LAST_KNOWN_MAX_S):
            raise _invalid(f"acceptLastKnownUpToSeconds must be whole seconds from 0 to {LAST_KNOWN_MAX_S}")
        return cls(
            region, tuple(Rule.from_json(rule, i) for i, rule in enumerate(rules)), description, accept
        )

    def _matching(self, type_code: str, issuer_region: int | str) -> tuple[str | None, list[Rule]]:
        region = (
            f"{issuer_region:06d}"
            if isinstance(issuer_region, int) and not isinstance(issuer_region, bool)
            else issuer_region
        )
        if not isinstance(region, str) or not _REGION.fullmatch(region):
            return None, []
        return region, [rule for rule in self.rules if rule.matches(type_code, region)]

    def allows(self, type_code: str, issuer_region: int | str) -> tuple[bool, str]:
        """Whether this node recognises `type_code` issued in `issuer_region`, and why."""
        region, matched = self._matching(type_code, issuer_region)
        if region is None:
            return False, f"Issuer region {issuer_region!r} is not a 6-digit GB/T 2260 code"
        if not matched:
            return False, f"Node {self.region} does not recognise type {type_code} issued in region {region}"
        return (
            True,
            f"Node {self.region} recognises type {type_code} from region {region} ({matched[0].text})",
        )

    def required_fields(self, type_code: str, issuer_region: int | str) -> tuple[str, ...]:
        """The paths a presentation must disclose, over every rule that matches (sorted)."""
        _, matched = self._matching(type_code, issuer_region)
        return tuple(sorted({path for rule in matched for path in rule.require_fields}))

    def national_seal_rule(
        self, type_code: str, issuer_region: int | str, anchored_at: dt.datetime
    ) -> str | None:
        """The first matching rule that requires a national seal of a certificate anchored at
        `anchored_at` (as text, for the reason), or None."""
        _, matched = self._matching(type_code, issuer_region)
        day = anchored_at.astimezone(CST).date()
        for rule in matched:
            if rule.national_seal_from is not None and day >= rule.national_seal_from:
                return f"{rule.text}, anchored from {rule.national_seal_from.isoformat()}"
        return None

    def missing_fields(self, type_code: str, issuer_region: int | str, disclosed: Iterable[str]) -> list[str]:
        """Required paths that no disclosed path is or falls under."""
        paths = list(disclosed)
        return [
            need
            for need in self.required_fields(type_code, issuer_region)
            if not any(covers_path(need, p) for p in paths)
        ]
