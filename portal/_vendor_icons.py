"""Vendor brand icons from the npm package ``simple-icons`` into ``static/icons/``.

Maintainer tool, re-runnable; not used at run time. Run from the repository root::

    python -m portal._vendor_icons                      # npm pack simple-icons@VERSION in a temp dir
    python -m portal._vendor_icons --package /tmp/si/package   # an already unpacked package

For every catalog slug in :data:`SLUGS` that simple-icons covers it writes
``static/icons/<slug>.svg``: simple-icons' single-path 24x24 SVG with ``fill="#<hex>"`` (the brand
colour from ``data/simple-icons.json``) added to the root element, so the logo renders in colour
inside an ``<img>``. It then rewrites ``static/icons/LICENSE-simple-icons.txt`` (version, the
list of files taken, the CC0 1.0 text of the package) and ``static/icons/simple-icons.json``
(``{"version", "icons": {"<slug>.svg": {"title", "hex", "source_slug"}}}``, which the portal
reads to draw brand glyphs on a neutral tile). Icons a previous run vendored that are no longer
mapped are deleted; every other file in ``static/icons/`` (``sandbox*.svg``, ``demo-*.svg``,
``default.svg``, hand-made icons) is left alone.

Brands simple-icons does not carry (several were removed at the brand owner's request, e.g.
Slack, Salesforce, Microsoft's products, LinkedIn) get no file: the portal shows a monogram tile
for them. To add an app, add its slug to :data:`SLUGS` (and to :data:`RENAMED` when simple-icons
spells it differently) and run the script again.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from ._paths import STATIC_DIR

#: simple-icons release the files are taken from.
VERSION = "16.37.0"
ICONS_DIR = STATIC_DIR / "icons"
LICENSE_FILE = ICONS_DIR / "LICENSE-simple-icons.txt"
MANIFEST_FILE = ICONS_DIR / "simple-icons.json"

#: Catalog slugs to look up (issue 5's catalog).
SLUGS = """
salesforce zoho-crm attio copper keap zendesk help-scout front gorgias servicenow mailchimp
constant-contact klaviyo typeform surveymonkey calendly outreach salesloft gong aircall
ringcentral dialpad linkedin zoho-desk close acuity-scheduling livechat drift zoho-campaigns
freshdesk freshsales sendgrid brevo activecampaign customer-io postmark mailgun kit lemlist
apollo mailerlite jotform cal-com discord microsoft-teams microsoft-outlook microsoft-onedrive
google-calendar gmail google-drive google-sheets google-docs dropbox box notion asana jira
confluence linear clickup monday basecamp wrike smartsheet airtable miro figma zoom webex
todoist dropbox-sign canva teamwork harvest pagerduty zoho-projects coda toggl clockify shortcut
twilio telnyx vonage youtrack mattermost zulip nextcloud quickbooks xero freshbooks
sage-accounting zoho-books zoho-invoice wave square paypal shopify etsy ebay github gitlab
bitbucket heroku digitalocean netlify vercel docusign pandadoc gusto deel google-analytics
mercadolibre adobe-sign stripe-connect sentry circleci cloudflare woocommerce bamboohr chargebee recurly
paddle lemon-squeezy openai anthropic mistral posthog amplitude mixpanel render buildkite
launchdarkly supabase plausible slack hubspot intercom pipedrive hunter instantly personio
microsoft-sharepoint
""".split()

#: Our slug -> simple-icons slug where the default (our slug without ``-``) is not the brand.
#: ``None``: a simple-icons icon of that name exists but is another brand.
RENAMED: dict[str, str | None] = {
    "cal-com": "caldotcom",
    "mistral": "mistralai",
    "plausible": "plausibleanalytics",
    "sage-accounting": "sage",
    "stripe-connect": "stripe",
    # Zoho's products share the Zoho mark.
    "zoho-crm": "zoho",
    "zoho-desk": "zoho",
    "zoho-campaigns": "zoho",
    "zoho-projects": "zoho",
    "zoho-books": "zoho",
    "zoho-invoice": "zoho",
    # simple-icons' "kit" is kit.co, not Kit (formerly ConvertKit).
    "kit": None,
}

_SVG_OPEN = re.compile(r"<svg\b([^>]*)>")
_HEX = re.compile(r"^[0-9A-Fa-f]{6}$")


def fetch_package(version: str, workdir: Path) -> Path:
    """``npm pack simple-icons@version`` into ``workdir`` and unpack it; the ``package`` dir.

    :raises subprocess.CalledProcessError: npm failed (offline, unknown version).
    """
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is needed to fetch simple-icons (or pass --package DIR)")
    out = subprocess.run(
        [npm, "pack", f"simple-icons@{version}", "--silent"],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    with tarfile.open(workdir / out) as archive:
        archive.extractall(workdir, filter="data")
    return workdir / "package"


def colour_svg(svg: str, hex_colour: str) -> str:
    """``svg`` with ``fill="#<hex>"`` on its root ``<svg>`` element (simple-icons' files have
    no fill, so they would render black).

    :raises ValueError: ``hex_colour`` is not six hex digits, or ``svg`` has no ``<svg>`` tag.
    """
    if not _HEX.match(hex_colour):
        raise ValueError(f"not a hex colour: {hex_colour!r}")
    match = _SVG_OPEN.search(svg)
    if match is None:
        raise ValueError("no <svg> element")
    attrs = re.sub(r'\s+fill="[^"]*"', "", match.group(1))
    return svg[: match.start()] + f'<svg{attrs} fill="#{hex_colour.upper()}">' + svg[match.end() :]


def vendor(package: Path, icons_dir: Path = ICONS_DIR, slugs: list[str] = SLUGS) -> dict[str, Any]:
    """Write the icons, the licence file and the manifest; return the manifest.

    :param package: an unpacked simple-icons npm package (with ``data/simple-icons.json``).
    """
    version = json.loads((package / "package.json").read_text("utf-8"))["version"]
    data = json.loads((package / "data" / "simple-icons.json").read_text("utf-8"))
    brands = {entry["slug"]: entry for entry in data}
    manifest_path = icons_dir / MANIFEST_FILE.name
    previous: dict[str, Any] = {}
    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text("utf-8")).get("icons", {})

    icons: dict[str, dict[str, str]] = {}
    skipped: list[str] = []
    for slug in slugs:
        source_slug = RENAMED.get(slug, slug.replace("-", ""))
        entry = brands.get(source_slug) if source_slug else None
        svg_path = package / "icons" / f"{source_slug}.svg"
        if source_slug is None or entry is None or not svg_path.exists():
            skipped.append(slug)
            continue
        name = f"{slug}.svg"
        (icons_dir / name).write_text(
            colour_svg(svg_path.read_text("utf-8").strip(), entry["hex"]), "utf-8"
        )
        icons[name] = {
            "title": entry["title"],
            "hex": entry["hex"].upper(),
            "source_slug": source_slug,
        }
    for stale in sorted(set(previous) - set(icons)):
        (icons_dir / stale).unlink(missing_ok=True)

    manifest = {"package": "simple-icons", "version": version, "icons": icons}
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", "utf-8")
    listing = "\n".join(
        f"  {name:26} {info['title']} (simple-icons: {info['source_slug']}, #{info['hex']})"
        for name, info in sorted(icons.items())
    )
    licence = (package / "LICENSE.md").read_text("utf-8").strip()
    (icons_dir / LICENSE_FILE.name).write_text(
        f"The brand icons listed below come from the npm package simple-icons {version}\n"
        "(https://simpleicons.org), released under CC0 1.0 Universal (text below); a brand colour\n"
        "fill was added to each. The logos themselves are trademarks of their owners.\n"
        "They were taken by portal/_vendor_icons.py (python -m portal._vendor_icons).\n"
        "The other icons in this directory (sandbox*.svg, demo-*.svg, default.svg) are the\n"
        "project's own.\n\n"
        f"Files taken ({len(icons)}):\n{listing}\n\n{licence}\n",
        "utf-8",
    )
    manifest["skipped"] = skipped
    return manifest


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=VERSION, help=f"simple-icons version ({VERSION})")
    parser.add_argument("--package", type=Path, help="an unpacked simple-icons package directory")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        package = args.package or fetch_package(args.version, Path(tmp))
        result = vendor(package)
    print(f"simple-icons {result['version']}: wrote {len(result['icons'])} icon(s) to {ICONS_DIR}")
    print("not in simple-icons (monogram tile): " + " ".join(result["skipped"]), file=sys.stderr)


if __name__ == "__main__":
    main()
