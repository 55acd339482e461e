"""Compare the catalog's OAuth 2.0 authorize and token URLs with two independent open catalogs.

Usage::

    python scripts/crosscheck.py            # differences only, then a summary
    python scripts/crosscheck.py --all      # every app, agreeing ones too
    python scripts/crosscheck.py --unexplained   # exit 1 if a difference has no explanation

Runs offline from the snapshot in ``scripts/data/`` (see its README.md; rebuilt with
``snapshot_catalogs.py``): ``simov/grant`` ``config/oauth.json`` and ``amp-labs/connectors``
``providers/*.go``, both MIT. Nango's ``providers.yaml`` (ELv2) is not used.

A difference is *explained* when the app's YAML file carries a ``# crosscheck:`` comment (the
reason our URL is right, e.g. "HubSpot moved to /oauth/2026-03/token"). Placeholders are compared
by position only (``{subdomain}``, grant's ``[subdomain]`` and amp's ``{{.workspace}}`` are equal),
and a trailing slash is ignored.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(ROOT))

from portal.catalog import SHIPPED_DIR, load_catalog  # noqa: E402

#: Our slug -> (grant key, amp-labs key) where the names do not simply match after dropping
#: case and punctuation. ``None``: that catalog has no entry for the app.
ALIASES: dict[str, tuple[str | None, str | None]] = {
    "adobe-sign": ("echosign", None),
    "confluence": ("atlassian", "atlassian"),
    "jira": ("atlassian", "atlassian"),
    "gmail": ("google", "google"),
    "google-analytics": ("google", "google"),
    "google-calendar": ("google", "google"),
    "google-docs": ("google", "google"),
    "google-drive": ("google", "google"),
    "google-sheets": ("google", "google"),
    "google-bigquery": ("google", "google"),
    "youtube": ("google", "google"),
    "google-contacts": ("google", "google"),
    "google-forms": ("google", "google"),
    "microsoft-planner": ("microsoft", "microsoft"),
    "x": ("twitter2", None),
    "microsoft-onedrive": ("microsoft", "microsoft"),
    "microsoft-outlook": ("microsoft", "microsoft"),
    "microsoft-sharepoint": ("microsoft", "microsoft"),
    "microsoft-teams": ("microsoft", "microsoft"),
    "microsoft-excel": ("microsoft", "microsoft"),
    "microsoft-dynamics-365": (None, "dynamicsCRM"),
    "dynamics-365-business-central": (None, "dynamicsBusinessCentral"),
    "quickbooks": ("intuit", "quickbooks"),
    "stripe-connect": ("stripe", None),
    "zendesk": ("zendesk", "zendeskSupport"),
    "zendesk-chat": (None, "zendeskChat"),
    "zoho-books": ("zoho", "zoho"),
    "zoho-campaigns": ("zoho", "zoho"),
    "zoho-crm": ("zoho", "zoho"),
    "zoho-desk": ("zoho", "zoho"),
    "zoho-invoice": ("zoho", "zoho"),
    "zoho-projects": ("zoho", "zoho"),
    "keap": ("infusionsoft", "keap"),
    "dropbox-sign": ("hellosign", "dropboxSign"),
    "linkedin": ("linkedin", "linkedIn"),
    "gohighlevel": (None, "highLevelStandard"),
    "basecamp": ("basecamp", "basecamp"),
    "harvest": ("harvest", None),
    "goto-meeting": (None, "goTo"),
    "zendesk-sell": ("getbase", None),
    "wordpress-com": ("wordpress", "wordPress"),
    "zoho-sign": ("zoho", "zoho"),
    "google-tasks": ("google", "google"),
    "microsoft-todo": ("microsoft", "microsoft"),
    "timely": ("timelyapp", "timely"),
    "zoho-recruit": ("zoho", "zoho"),
    "zoho-people": ("zoho", "zoho"),
    "power-bi": ("microsoft", "microsoft"),
}

_PLACEHOLDER = re.compile(r"\{\{[^}]*\}\}|\{[^}]*\}|\[[^\]]*\]")


def norm_name(name: str) -> str:
    """``Zoho-CRM`` -> ``zohocrm``: how names are matched across catalogs."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def norm_url(url: str | None) -> str | None:
    """A URL with every placeholder written ``{}`` and no trailing slash, for comparison."""
    if not url:
        return None
    return _PLACEHOLDER.sub("{}", url).rstrip("/")


@dataclass
class Row:
    """One app against one external catalog: ``status`` is ``same``, ``differs`` or ``absent``."""

    slug: str
    catalog: str
    status: str
    ours: tuple[str | None, str | None]
    theirs: tuple[str | None, str | None]
    explanation: str | None


def load_snapshot() -> dict[str, dict[str, tuple[str | None, str | None]]]:
    """``{"grant": {name: (authorize, token)}, "amp-labs": {...}}`` from ``scripts/data``."""
    grant = json.loads((DATA / "grant-oauth.json").read_text("utf-8"))["providers"]
    amp = json.loads((DATA / "amp-connectors.json").read_text("utf-8"))["providers"]
    return {
        "grant": {
            k: (v.get("authorize_url"), v.get("access_url"))
            for k, v in grant.items()
            if v.get("oauth") == 2
        },
        "amp-labs": {
            k: (v.get("authorize_url"), v.get("token_url"))
            for k, v in amp.items()
            if v.get("authorize_url") or v.get("token_url")
        },
    }


def explanation(slug: str) -> str | None:
    """The text of the app file's ``# crosscheck:`` comment (continued on following ``#``
    lines that are indented further), or ``None``."""
    path = SHIPPED_DIR / f"{slug}.yaml"
    lines = path.read_text("utf-8").splitlines()
    for i, line in enumerate(lines):
        found = re.match(r"\s*# crosscheck:\s*(.*)", line)
        if found:
            parts = [found.group(1)]
            for more in lines[i + 1 :]:
                cont = re.match(r"\s*#\s{2,}(\S.*)", more)
                if not cont:
                    break
                parts.append(cont.group(1))
            return " ".join(parts)
    return None


def crosscheck() -> list[Row]:
    """Every shipped OAuth 2.0 app (sandbox apps aside) against both snapshots."""
    snapshot = load_snapshot()
    index = {name: {norm_name(k): k for k in entries} for name, entries in snapshot.items()}
    rows: list[Row] = []
    for app in load_catalog(environ={}):
        if app.oauth2 is None or app.slug.startswith("sandbox"):
            continue
        ours = (app.oauth2.authorize_url, app.oauth2.token_url)
        note = explanation(app.slug)
        for position, name in enumerate(snapshot):
            alias = ALIASES.get(app.slug)
            if alias is not None:
                key = alias[position]
            else:
                key = index[name].get(norm_name(app.slug)) or index[name].get(norm_name(app.title))
            theirs: tuple[str | None, str | None] = (None, None)
            if key is None or key not in snapshot[name]:
                status = "absent"
            else:
                theirs = snapshot[name][key]
                same = all(
                    t is None or norm_url(o) == norm_url(t)
                    for o, t in zip(ours, theirs, strict=True)
                )
                status = "same" if same else "differs"
            rows.append(Row(app.slug, name, status, ours, theirs, note))
    return rows


def report(rows: list[Row], show_all: bool = False) -> list[str]:
    """The printed lines: one block per differing (or, with ``show_all``, every) comparison."""
    lines: list[str] = []
    for row in rows:
        if row.status != "differs" and not show_all:
            continue
        lines.append(f"{row.slug} vs {row.catalog}: {row.status}")
        if row.status == "differs":
            for label, o, t in zip(("authorize", "token"), row.ours, row.theirs, strict=True):
                if t is not None and norm_url(o) != norm_url(t):
                    lines.append(f"  {label:9} ours   {o}")
                    lines.append(f"  {label:9} theirs {t}")
            lines.append(f"  explained: {row.explanation or 'NO (add a # crosscheck: comment)'}")
    apps = {r.slug for r in rows}
    count = {s: sum(1 for r in rows if r.status == s) for s in ("same", "differs", "absent")}
    agreed = {r.slug for r in rows if r.status == "same"}
    both = {s for s in apps if all(r.status == "same" for r in rows if r.slug == s)}
    unexplained = sorted({r.slug for r in rows if r.status == "differs" and not r.explanation})
    lines.append(
        f"{len(apps)} OAuth 2.0 apps; comparisons: {count['same']} same, {count['differs']} "
        f"differ, {count['absent']} absent; {len(agreed)} apps agree with at least one catalog, "
        f"{len(both)} with both; unexplained differences: {', '.join(unexplained) or 'none'}"
    )
    return lines


def main(argv: list[str]) -> int:
    rows = crosscheck()
    for line in report(rows, show_all="--all" in argv):
        print(line)
    if "--unexplained" in argv:
        return 1 if any(r.status == "differs" and not r.explanation for r in rows) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
