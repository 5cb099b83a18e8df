"""accounts.canonical: one sorted form, one fingerprint, whatever the input order."""

import json
import random

import pytest

from accounts.canonical import (
    InvalidPrivilegeSet,
    canonical_json,
    canonical_with_fingerprint,
    canonicalize,
    fingerprint,
)

RAW = {
    "engine": "MySQL",
    "attributes": {
        "superuser": False,
        "locked": False,
        "can_login": True,
        "plugin": "mysql_native_password",
    },
    "roles": ["app_read", "app_write", "app_read"],
    "grants": [
        {"scope": "global", "object": "", "privilege": "PROCESS", "option": ""},
        {"scope": "DATABASE", "object": "Shop_Mixed", "privilege": "SELECT", "option": "grant"},
        {"scope": "table", "object": "shop.orders", "privilege": "UPDATE", "option": ""},
        ("column", "shop.orders.price", "SELECT", ""),
        {"scope": "table", "object": "shop.orders", "privilege": "UPDATE", "option": ""},
    ],
}


def shuffled(raw: dict, seed: int) -> dict:
    rng = random.Random(seed)
    grants, roles = list(raw["grants"]), list(raw["roles"])
    rng.shuffle(grants)
    rng.shuffle(roles)
    attributes = list(raw["attributes"].items())
    rng.shuffle(attributes)
    return {
        "engine": raw["engine"],
        "attributes": dict(attributes),
        "roles": roles,
        "grants": grants,
    }


def test_canonical_form_is_sorted_deduplicated_and_normalised():
    canonical = canonicalize(RAW)
    assert canonical["engine"] == "mysql"
    assert list(canonical["attributes"]) == ["can_login", "locked", "plugin", "superuser"]
    assert canonical["roles"] == ["app_read", "app_write"]
    assert canonical["grants"] == [
        {"scope": "column", "object": "shop.orders.price", "privilege": "SELECT", "option": ""},
        {"scope": "database", "object": "Shop_Mixed", "privilege": "SELECT", "option": "GRANT"},
        {"scope": "global", "object": "", "privilege": "PROCESS", "option": ""},
        {"scope": "table", "object": "shop.orders", "privilege": "UPDATE", "option": ""},
    ]


@pytest.mark.parametrize("seed", range(20))
def test_order_does_not_change_the_fingerprint(seed):
    assert fingerprint(shuffled(RAW, seed)) == fingerprint(RAW)
    assert canonical_json(canonicalize(shuffled(RAW, seed))) == canonical_json(canonicalize(RAW))


def test_canonicalize_is_idempotent():
    once = canonicalize(RAW)
    assert canonicalize(once) == once
    assert canonical_with_fingerprint(once) == (once, fingerprint(RAW))


def test_fingerprint_is_sha256_hex_of_the_canonical_json():
    import hashlib

    expected = hashlib.sha256(canonical_json(canonicalize(RAW)).encode()).hexdigest()
    assert fingerprint(RAW) == expected
    assert len(expected) == 64


def test_any_difference_changes_the_fingerprint():
    base = fingerprint(RAW)
    assert fingerprint({**RAW, "attributes": {**RAW["attributes"], "locked": True}}) != base
    assert fingerprint({**RAW, "roles": ["app_read"]}) != base
    assert fingerprint({**RAW, "grants": RAW["grants"][:1]}) != base


def test_names_keep_their_case():
    canonical = canonicalize(
        {"engine": "mysql", "grants": [("database", "Shop_Mixed", "Select", "")]}
    )
    assert canonical["grants"][0]["object"] == "Shop_Mixed"
    assert canonical["grants"][0]["privilege"] == "Select"


def test_dates_and_lists_in_attributes_become_stable_json():
    import datetime

    canonical = canonicalize(
        {
            "engine": "postgresql",
            "attributes": {
                "valid_until": datetime.datetime(2030, 1, 2, 3, 4, tzinfo=datetime.UTC),
                "admin_roles": ["b", "a", "b"],
            },
        }
    )
    assert canonical["attributes"] == {
        "admin_roles": ["a", "b"],
        "valid_until": "2030-01-02T03:04:00+00:00",
    }
    json.loads(canonical_json(canonical))


@pytest.mark.parametrize(
    "raw",
    [
        {"engine": "db2"},
        {"engine": "mysql", "grants": [("galaxy", "", "SELECT", "")]},
        {"engine": "mysql", "grants": [("global", "", "SELECT", "MAYBE")]},
        {"engine": "mysql", "grants": [("global", "", "", "")]},
        {"engine": "mysql", "grants": [("table", "", "SELECT", "")]},
        {"engine": "mysql", "grants": [("table", "t", "SELECT")]},
        {"engine": "mysql", "attributes": {"x": object()}},
    ],
)
def test_invalid_sets_are_refused(raw):
    with pytest.raises(InvalidPrivilegeSet):
        canonicalize(raw)
