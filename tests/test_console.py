"""``/console`` in a real browser: Debian's headless Chromium driven by Playwright against the
session's real gateway, worker, PostgreSQL and Redis (the stub embedder answers).

Sign in, search, open a hit, replay a dead letter, read the stats; screenshots are kept
under ``.test-tmp/console/`` (``CONSOLE_SCREENSHOTS`` to choose; ``UPDATE_DOCS_SCREENSHOT=1``
also writes ``docs/console.png``). A missing browser fails the test, it never skips:
``.ci/run`` installs ``chromium`` when it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy.engine import Engine

from tests.conftest import make_key, new_key, wait_for
from tests.processes import Gateway, Proc
from tests.reliability_helpers import dead_letters_of
from tests.stub_embedder import NAN_MARK

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "gateway" / "console" / "static"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS") or ROOT / ".test-tmp" / "console")
# The full suite runs on two loaded cores: generous deadlines, polled (Playwright's expect).
DEADLINE_MS = 30_000
expect.set_options(timeout=DEADLINE_MS)

POSTINGS = [
    (
        "jobboard",
        "job.posted",
        "Senior data engineer in Nairobi: Spark, Airflow and PostgreSQL "
        "pipelines for mobile payments.",
        {"company": "Safaricom", "city": "Nairobi"},
    ),
    (
        "jobboard",
        "job.posted",
        "Data analyst, Mombasa port logistics: SQL, dashboards and "
        "forecasting of container traffic.",
        {"company": "KPA", "city": "Mombasa"},
    ),
    (
        "jobboard",
        "job.posted",
        "Machine learning engineer in Kigali building credit scoring models for small farmers.",
        {"company": "One Acre Fund", "city": "Kigali"},
    ),
    (
        "jobboard",
        "job.posted",
        "Backend developer (Go, Kafka) for a ride-hailing platform in Lagos; on-call rotation.",
        {"company": "Bolt", "city": "Lagos"},
    ),
    (
        "helpdesk",
        "ticket.opened",
        "Login fails with error 500 after the password reset email link is opened twice.",
        {"priority": "high"},
    ),
    (
        "helpdesk",
        "ticket.opened",
        "Export to CSV cuts the file after the header when a row holds a date before 1900.",
        {"priority": "normal"},
    ),
]


@dataclass
class Tenant:
    key: str
    client: httpx.Client
    dead_event: str


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Never a skip: without the browser this test fails, saying how to get one.
    assert Path(CHROMIUM).exists(), (
        f"no Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does)"
    )
    with sync_playwright() as playwright:
        # Playwright's own browser download cannot run here: Debian's build, launched by path.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def tenant(gateway: Gateway, db: Engine, worker: Proc) -> Iterator[Tenant]:
    """A fresh tenant with six embedded events and one dead letter; its admin key."""
    name = f"console-{uuid.uuid4().hex[:8]}"
    key = make_key(db, name, "ingest,search,admin")
    with httpx.Client(base_url=gateway.url, headers={"X-API-Key": key}, timeout=30) as client:
        events = [
            {"source": s, "type": t, "text": x, "metadata": m, "idempotency_key": new_key()}
            for s, t, x, m in POSTINGS
        ]
        events.append(
            {
                "source": "jobboard",
                "type": "job.posted",
                "text": f"A posting the embedder refuses {NAN_MARK}",
                "idempotency_key": new_key(),
            }
        )
        answer = client.post("/api/v1/events/batch", json={"events": events})
        assert answer.status_code == 200, answer.text
        ids = [r["id"] for r in answer.json()["results"]]

        def settled() -> bool:
            states = [client.get(f"/api/v1/events/{i}").json()["status"] for i in ids]
            return states == ["embedded"] * len(POSTINGS) + ["failed"]

        wait_for(settled, 90, "six embedded, one dead-lettered")
        yield Tenant(key, client, ids[-1])


def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_console_signs_in_searches_opens_a_hit_and_replays_a_dead_letter(
    browser: Browser, gateway: Gateway, db: Engine, tenant: Tenant
) -> None:
    key, dead_event = tenant.key, tenant.dead_event
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(DEADLINE_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            and "status of 401" not in message.text
            and "status of 403" not in message.text
            else None
        ),
    )
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith(gateway.url) or request.url.startswith("data:")
            else outside.append(request.url)
        ),
    )

    page.goto(gateway.url + "/console")
    expect(page.locator("#view-signin")).to_be_visible()

    # A wrong key is refused in words, and nothing is kept.
    page.fill("#api-key", "not-a-key")
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_contain_text("not accepted")
    assert page.evaluate("sessionStorage.length") == 0

    page.fill("#api-key", key)
    page.keyboard.press("Enter")
    expect(page.locator("#view-search")).to_be_visible()
    assert page.evaluate("localStorage.length") == 0  # the key is in sessionStorage only
    assert page.evaluate("sessionStorage.getItem('eventsearch.console.key')") == key

    # Search from the keyboard: "/" focuses the box.
    expect(page.locator("#q")).to_be_focused()  # signed in, the box is ready
    page.locator("#q").blur()
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("data engineer jobs in Nairobi")
    page.keyboard.press("Enter")
    hits = page.locator("#results .hit")
    expect(hits.first).to_be_visible()
    assert hits.count() >= 3
    first = hits.first
    expect(first).to_contain_text("Senior data engineer in Nairobi")
    assert re.fullmatch(r"\d\.\d{3}", first.locator(".score").inner_text())
    expect(first.locator(".rank").first).to_contain_text("#")
    expect(first.locator("mark").first).to_be_visible()  # the matched passage, highlighted
    expect(page.locator("#search-summary")).to_contain_text("hybrid search")
    search_shot = shot(page, "search")

    # Esc leaves the box, j focuses the first result, Enter opens it.
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    expect(first.locator(".hit-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#view-event")).to_be_visible()
    expect(page.locator("#event-title")).to_have_text("jobboard · job.posted")
    facts = page.locator("#event-body .facts")
    expect(facts).to_contain_text("embedded")
    expect(facts).to_contain_text("stub-embed")
    expect(page.locator("#event-body .metadata")).to_contain_text("Safaricom")
    shot(page, "event")
    page.keyboard.press("Escape")
    expect(page.locator("#view-search")).to_be_visible()
    expect(hits.first).to_be_visible()

    # Another mode and a filter.
    page.select_option("#mode", "keyword")
    page.locator("#filters summary").click()
    page.fill("#f-source", "helpdesk")
    page.fill("#q", "password reset login")
    page.keyboard.press("Enter")
    expect(page.locator("#search-summary")).to_contain_text("keyword search")
    expect(hits.first).to_contain_text("Login fails")
    assert all("helpdesk" in hits.nth(i).inner_text() for i in range(hits.count()))
    page.fill("#f-metadata", "{not json")
    page.keyboard.press("Enter")
    expect(page.locator("#results .error")).to_contain_text("must be a JSON object")

    # Dead letters: g d, then replay the one letter from the keyboard.
    page.keyboard.press("Escape")  # out of the filter box
    page.keyboard.press("g")
    page.keyboard.press("d")
    expect(page.locator("#view-dead-letters")).to_be_visible()
    row = page.locator("#dl-rows tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("NaN")
    shot(page, "dead-letters")
    row.locator("button.replay").focus()
    page.keyboard.press("Enter")
    expect(row).to_contain_text("Replayed: queued again")
    expect(page.locator("#notice")).to_contain_text(dead_event)
    wait_for(
        lambda: any(x["replayed_at"] is not None for x in dead_letters_of(db, dead_event)),
        what="the letter marked replayed",
    )

    # Stats with the chart of the last hour.
    page.keyboard.press("g")
    page.keyboard.press("t")
    expect(page.locator("#view-stats")).to_be_visible()
    expect(page.locator("#stats-cards")).to_contain_text("embedded")
    expect(page.locator("#chart svg rect")).to_have_count(60)
    assert "embedded" in (page.locator("#chart svg").get_attribute("aria-label") or "")
    shot(page, "stats")

    # Signing out forgets the key.
    page.click("#sign-out")
    expect(page.locator("#view-signin")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0

    assert not problems, problems
    assert not outside, f"the console fetched from elsewhere: {outside}"
    context.close()
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copy(search_shot, ROOT / "docs" / "console.png")


def test_the_console_is_served_with_a_strict_policy(gateway: Gateway) -> None:
    page = httpx.get(gateway.url + "/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    script = httpx.get(gateway.url + "/console/static/console.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert httpx.get(gateway.url + "/console/static/console.css").status_code == 200
    for path in ("/console/static/index.html", "/console/static/..%2Fapp.py", "/console/static/x"):
        assert httpx.get(gateway.url + path).status_code == 404, path
    assert "/console" not in httpx.get(gateway.url + "/openapi.json").text


def test_the_console_is_offline_and_inline_free() -> None:
    """No CDN, no inline script or style (the policy would refuse them anyway)."""
    html = (STATIC / "index.html").read_text()
    assert re.findall(r"<script[^>]*>", html) == ['<script src="console/static/console.js" defer>']
    assert "<style" not in html and " style=" not in html and not re.search(r" on[a-z]+=", html)
    for name in ("index.html", "console.js", "console.css"):
        urls = set(re.findall(r"https?://[^\s\"'`)]+", (STATIC / name).read_text()))
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)


def test_the_console_files_are_package_data() -> None:
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = data["package-data"]["gateway.console"]
    for name in ("index.html", "console.js", "console.css"):
        assert any(Path("static", name).match(p) for p in patterns), name


EVENT_ID = "0b9f4a52-2c7e-4d0e-9a39-5d3f0f6c1a11"
OLDER_ID = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
TEXT = "Posted 1 November. Senior data engineer in Nairobi, Spark and Airflow. Apply by mail."
PASSAGE = "Senior data engineer in Nairobi, Spark and Airflow."


def fulfil(body: object, status: int = 200) -> object:
    return lambda route: route.fulfill(status=status, json=body)


def test_console_marks_the_passage_and_lists_a_subjects_versions(
    browser: Browser, gateway: Gateway, db: Engine
) -> None:
    """The fields the chunks and subjects work adds (a hit's ``passage``, an event's
    ``subject`` and ``GET /api/v1/subjects/...``), answered at the network by Playwright so
    the console's handling of them is tested whichever of them the gateway has yet."""
    key = make_key(db, f"console-{uuid.uuid4().hex[:8]}", "search")
    start = TEXT.index(PASSAGE)
    hit = {
        "id": EVENT_ID,
        "score": 0.8123,
        "text": TEXT,
        "source": "jobboard",
        "type": "job.posted",
        "metadata": {},
        "occurred_at": "2026-11-01T09:00:00Z",
        "rankings": {"dense": 1},
        "passage": {"text": PASSAGE, "start": start, "end": start + len(PASSAGE)},
    }
    event = {
        **{k: hit[k] for k in ("id", "text", "source", "type", "metadata", "occurred_at")},
        "status": "embedded",
        "attempts": 1,
        "error": None,
        "model": "stub-embed",
        "embedded_at": "2026-11-01T09:00:02Z",
        "created_at": "2026-11-01T09:00:01Z",
        "subject": "posting/42",
    }
    older = {**event, "id": OLDER_ID, "status": "superseded", "occurred_at": "2026-10-01T09:00:00Z"}
    history = {
        "source": "jobboard",
        "subject": "posting/42",
        "current": EVENT_ID,
        "deleted_at": None,
        "versions": [event, older],
        "next_cursor": None,
    }
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(DEADLINE_MS)
    page = context.new_page()
    page.route(
        "**/api/v1/search",
        fulfil({"results": [hit], "model": "m", "mode": "dense", "took_ms": 3.2}),
    )
    page.route(f"**/api/v1/events/{EVENT_ID}", fulfil(event))
    page.route(f"**/api/v1/events/{OLDER_ID}", fulfil({**older, "subject": "gone"}))
    page.route("**/api/v1/subjects/jobboard/posting%2F42", fulfil(history))
    page.route(
        "**/api/v1/subjects/jobboard/gone",
        fulfil({"error": {"code": "not_found", "message": "no subject", "request_id": "r1"}}, 404),
    )

    page.goto(gateway.url + "/console")
    page.fill("#api-key", key)
    page.keyboard.press("Enter")
    page.fill("#q", "data engineering in Kenya")
    page.keyboard.press("Enter")
    marked = page.locator("#results .hit mark")
    expect(marked).to_have_count(1)
    expect(marked).to_have_text(PASSAGE)  # exactly the span, not the query's words
    expect(page.locator("#results .hit .passage")).to_contain_text("Posted 1 November.")

    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#event-body .facts")).to_contain_text("posting/42")
    versions = page.locator("#event-versions tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.nth(0)).to_contain_text("current")
    expect(versions.nth(1)).to_contain_text("superseded")
    versions.nth(1).locator("a").click()
    expect(page.locator("#event-versions")).to_contain_text("keeps no history")
    context.close()
