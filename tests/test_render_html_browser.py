"""The HTML report opens in headless Chromium (Debian's `chromium` package): no console errors, no network, the
summary and the ECS verdict are in the rendered page, and it prints to PDF."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.data.corpus import DATA
from tfreview.plan import review_plan
from tfreview.render import render

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium missing: apt-get install -y chromium"),
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def console_errors(stderr: str) -> list[str]:
    return [
        line for line in stderr.splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "net::ERR" in line or "Failed to load resource" in line
    ]


def test_html_report_opens_without_console_errors_and_shows_summary_and_verdict(tmp_path):
    review = review_plan((DATA / "ecs_image_bump.json").read_bytes())
    page = tmp_path / "report.html"
    page.write_text(render(review, "html"))
    result = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_errors(result.stderr) == []
    dom = result.stdout
    summary = re.search(r'<section class="summary" id="summary">(.*?)</section>', dom, re.S)
    assert summary and "Plan: 1 to add, 1 to change, 1 to destroy." in summary.group(1)
    assert "deploy-to-idle" in summary.group(1)
    assert '<span class="verdict">web: image 1.0.0 → 1.1.0; env +FEATURE_X</span>' in dom


def test_html_report_prints_to_pdf(tmp_path):
    review = review_plan((DATA / "risky_infrastructure.json").read_bytes())
    page = tmp_path / "report.html"
    page.write_text(render(review, "html"))
    pdf = tmp_path / "report.pdf"
    result = chromium(tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_errors(result.stderr) == []
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000


def test_the_console_check_catches_a_broken_page(tmp_path):
    # Guards against a vacuous check: a page with a script error must be reported.
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    result = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert any("undefinedFunction" in line for line in console_errors(result.stderr))
