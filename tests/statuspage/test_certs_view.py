"""A mirror's https certificate on the site: the overview's cell, the mirror's section and
status.json, from plain data; whatever the certificate says is escaped."""

from __future__ import annotations

import json

import jsonschema

from syncd.monitor.certs import CertStatus
from syncd.statuspage.site import MirrorView, page_name, render_site
from tests.statuspage.sitedata import DAY, NOW, sample_site, status
from tests.statuspage.test_statussite_e2e import SCHEMA

EVIL = '<script>alert("x")</script>\u202etxt.exe'


def _site(cert: CertStatus | None) -> dict[str, str]:
    return render_site(sample_site(MirrorView(status("tls.example", "fresh", 1.0), cert=cert)))


def test_a_valid_certificate_counts_down_and_an_absent_one_is_a_dash() -> None:
    cert = CertStatus(
        "tls.example",
        "https://tls.example",
        NOW - 60,
        "expiring",
        ("it expires in 6 days",),
        "ab" * 32,
        NOW - 80 * DAY,
        NOW + 6 * DAY,
        ("tls.example",),
        "CN=R11,O=Let's Encrypt",
    )
    files = _site(cert)
    assert "expiring 6 d" in files["index.html"]
    page = files[page_name("tls.example")]
    assert "HTTPS certificate" in page and "it expires in 6 days" in page and "ab" * 32 in page
    doc = json.loads(files["status.json"])
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    entry = next(m for m in doc["mirrors"] if m["name"] == "tls.example")
    assert entry["certificate"]["expires_in_s"] == 6 * DAY
    assert entry["certificate"]["valid"] is True
    # the sample's other mirrors have no https URL
    assert all(m["certificate"] is None for m in doc["mirrors"] if m["name"] != "tls.example")
    assert "No https URL in the inventory" in _site(None)[page_name("tls.example")]


def test_what_a_certificate_says_is_escaped() -> None:
    cert = CertStatus(
        "tls.example",
        "https://tls.example",
        NOW,
        "invalid",
        (f"it is not valid for {EVIL}",),
        "cd" * 32,
        NOW - DAY,
        NOW + DAY,
        (EVIL,),
        EVIL,
    )
    files = _site(cert)
    page = files[page_name("tls.example")]
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "\u202e" not in page and "\u202e" not in files["status.json"]
    doc = json.loads(files["status.json"])
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
