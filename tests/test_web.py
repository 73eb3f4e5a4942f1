"""The web page at / in real headless Chromium (Debian's chromium, driven by Playwright), against
the real API over HTTP on 127.0.0.1 and the real index of the five reports. Screenshots of the ask
and reports views at desktop and phone sizes go to build/screenshots (or GOVQA_SCREENSHOTS)."""

import copy
import os
import shutil
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from bot.api import Keys, create_app
from bot.live import LiveService

from .conftest import HEADLINE, NEW_QUESTION, NEW_REPORT, ServerThread, needs_shared

READ, ADMIN = "read-key-for-web", "admin-key-for-web"
SHOTS = Path(os.environ.get("GOVQA_SCREENSHOTS") or Path(__file__).resolve().parent.parent / "build" / "screenshots")
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
# the flags a browser needs on a machine with no outside network and no sandbox for root
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# a report whose text carries markup and scripts: the page must show them as text and run nothing
MARKUP_REPORT = """白沙镇人民政府2024年法治政府建设年度报告

2024年，白沙镇人民政府坚持依法行政，现将法治政府建设情况报告如下。
一、主要工作
全年举办法治讲座<script>window.pwned = 1</script>18场，<img src=x onerror="window.pwned = 2">覆盖村干部300余人次。
二、下一步打算
继续加强法治宣传。

白沙镇人民政府
2025年1月8日
"""
# a 2023 report of the unit of NEW_REPORT, for a comparison of two years
EARLIER_REPORT = NEW_REPORT.replace("2024年", "2023年").replace("2025年", "2024年").replace("146件", "120件")
COMPARE = "青石县市场监管局2023年和2024年分别办理了多少件行政处罚案件？"


def _chromium() -> str | None:
    return os.environ.get("GOVQA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


pytestmark = [needs_shared(), pytest.mark.skipif(
    _chromium() is None and not os.environ.get("GOVQA_REQUIRE_BROWSER"),
    reason="no chromium on this machine (apt-get install chromium; .ci/run installs it)")]


@pytest.fixture(scope="module")
def server(config, real_index, use_embedder, tmp_path_factory):
    index = tmp_path_factory.mktemp("web") / "index"
    shutil.copytree(real_index, index)
    config = copy.deepcopy(config)
    config["api"]["rate_per_second"] = 0
    live = LiveService(config, index, embedder=use_embedder, poll_seconds=0.5)
    with ServerThread(create_app(config, live, Keys([READ], [ADMIN]))) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    # console errors (a CSP violation is one) and uncaught exceptions; not the browser's line for a
    # refused request (the first /v1/reports before a key is typed is a 401, which the page shows)
    page.problems = []
    page.on("console", lambda m: page.problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("dialog", lambda d: d.accept())  # the delete confirmation; an alert() from a report would be one too
    page.goto(server.url + "/")
    yield page
    context.close()


def _key(page, key=ADMIN):
    page.fill("#key", key)
    page.click("#key-form button")
    expect(page.locator("#org option")).not_to_have_count(1)  # the units, from /v1/reports


def _ask(page, question: str):
    page.fill("#question", question)
    page.click("#ask")
    turns = page.locator(".turn").count()
    expect(page.locator(".turn .result")).to_have_count(turns)
    return page.locator(".turn").last


def _shot(page, name: str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _no_sideways_scroll(page):
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px viewport"


def test_the_page_is_served_with_a_strict_policy(server):
    r = httpx.get(server.url + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "<script>" not in r.text and "style=" not in r.text  # no inline script or style for the policy to allow
    script = httpx.get(server.url + "/assets/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "innerHTML" not in script.text  # everything is put in the page as text
    assert httpx.get(server.url + "/assets/nothing.js").status_code == 404
    # no CORS by default: another site's page gets no Access-Control-Allow-Origin
    other = httpx.get(server.url + "/v1/reports", headers={"Origin": "https://elsewhere.example", "X-API-Key": READ})
    assert "access-control-allow-origin" not in other.headers


def test_headline_question_shows_the_figure_and_opens_the_source(page):
    _key(page, READ)
    turn = _ask(page, HEADLINE)
    assert turn.locator(".answer strong").all_inner_texts() == ["79件"]
    card = turn.locator(".card").first
    assert "79件" in card.locator("mark").inner_text()  # the answering clause, highlighted
    assert "重点区域规划建设管理署" in card.locator(".card-title").inner_text()
    _shot(page, "ask-desktop")
    excerpt = card.locator("blockquote").inner_text()
    card.locator(".card-open").click()
    dialog = page.locator("#source")
    dialog.wait_for(state="visible")
    hit = page.locator("#source-hit")
    assert hit.inner_text() == excerpt
    expect(hit).to_be_in_viewport()  # scrolled to the excerpt
    assert len(page.locator("#source-text").inner_text()) > len(excerpt) * 5  # the whole report
    _shot(page, "source-desktop")
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert page.problems == []


def test_follow_up_and_not_found_show_what_was_searched(page):
    _key(page, READ)
    _ask(page, HEADLINE)
    turn = _ask(page, "那2022年呢？")  # read as the headline question for 2022, which no report covers
    text = turn.inner_text()
    assert "检索范围" in text and "2022年" in text and not turn.locator(".answer strong").count()
    page.locator("#new-chat").click()
    assert page.locator(".turn").count() == 0


def test_copy_gives_the_answer_with_its_citations(page):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    _key(page, READ)
    turn = _ask(page, HEADLINE)
    turn.get_by_role("button", name="复制回答和出处").click()
    expect(turn.locator(".result [role=status]")).to_have_text("已复制")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "79件" in copied and "[1]" in copied and "重点区域" in copied


def test_reports_upload_with_the_admin_key_then_answer_compare_and_delete(page, tmp_path):
    _key(page, ADMIN)
    page.click("#tab-reports")
    page.wait_for_selector("#reports tbody tr")
    assert page.locator("#reports tbody tr").count() == 5
    files = []
    for name, text in (("青石县2024.txt", NEW_REPORT), ("青石县2023.txt", EARLIER_REPORT)):
        (tmp_path / name).write_text(text, encoding="utf-8")
        files.append(str(tmp_path / name))
    page.set_input_files("#files", files)  # the file picker; the drop zone is tested below
    page.wait_for_selector("#upload-results li:has-text('已添加')")
    assert page.locator("#upload-results li", has_text="已添加").count() == 2
    expect(page.locator("#reports tbody tr")).to_have_count(7)
    page.fill("#filter", "青石县")
    assert page.locator("#reports tbody tr").count() == 2
    _shot(page, "reports-desktop")

    page.click("#tab-ask")
    turn = _ask(page, NEW_QUESTION)
    assert turn.locator(".answer strong").all_inner_texts() == ["146件"]
    turn = _ask(page, COMPARE)  # a comparison: a table and a bar a figure
    cells = turn.locator("table.figures tbody td").all_inner_texts()
    assert "120件" in cells and "146件" in cells
    assert turn.locator("svg.chart rect").count() == 2
    _shot(page, "compare-desktop")

    page.click("#tab-reports")
    page.fill("#filter", "青石县 2023")
    row = page.locator("#reports tbody tr")
    row.wait_for()
    row.get_by_role("button").click()  # delete (the confirmation is accepted)
    expect(page.locator("#reports tbody tr")).to_have_count(0)
    page.fill("#filter", "")
    assert page.locator("#reports tbody tr").count() == 6
    assert page.problems == []


def test_a_report_with_markup_renders_inert(page):
    _key(page, ADMIN)
    page.click("#tab-reports")
    # dropped on the drop zone, as a person drags a file from their desktop
    page.evaluate("""text => {
        const data = new DataTransfer();
        data.items.add(new File([text], "白沙镇.txt", {type: "text/plain"}));
        document.querySelector("#drop").dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
    }""", MARKUP_REPORT)
    page.wait_for_selector("#upload-results li:has-text('已添加')")
    page.click("#tab-ask")
    turn = _ask(page, "白沙镇2024年举办了多少场法治讲座？")
    excerpt = turn.locator(".card blockquote").first.inner_text()
    assert "<script>window.pwned = 1</script>" in excerpt and 'onerror="window.pwned = 2"' in excerpt
    turn.locator(".card-open").first.click()
    page.locator("#source").wait_for(state="visible")
    assert "<img src=x onerror=" in page.locator("#source-text").inner_text()
    assert page.evaluate("window.pwned") is None
    assert page.locator("main img, main script, dialog img, dialog script").count() == 0
    assert page.problems == []


def test_phone_viewport_has_no_sideways_scrolling(browser, server):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.goto(server.url + "/")
    _key(page, ADMIN)
    _ask(page, HEADLINE)
    _no_sideways_scroll(page)
    _shot(page, "ask-phone")
    page.click("#tab-reports")
    page.wait_for_selector("#reports tbody tr")
    _no_sideways_scroll(page)
    _shot(page, "reports-phone")
    page.click("#tab-ask")
    page.locator(".card-open").first.click()
    page.locator("#source").wait_for(state="visible")
    _no_sideways_scroll(page)
    context.close()


def test_keyboard_only(page):
    unlabelled = page.evaluate("""[...document.querySelectorAll('input, select, textarea, button')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map(e => e.id || e.outerHTML)""")
    assert unlabelled == []
    reached = []
    for _ in range(12):  # Tab through the page until the question box has the focus, typing the key on the way
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id"))
        if reached[-1] == "key":
            page.keyboard.type(READ)
            page.keyboard.press("Enter")
            expect(page.locator("#key-state")).to_have_text("已保存（仅本标签页）")
        if reached[-1] == "question":
            break
    assert "key" in reached and reached[-1] == "question", reached
    page.keyboard.type(HEADLINE)
    page.keyboard.press("Enter")
    page.wait_for_selector(".turn .result")
    assert page.locator(".answer strong").all_inner_texts() == ["79件"]
    for _ in range(30):  # on to the first citation card
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('card-open')"):
            break
    else:
        pytest.fail("Tab never reached a citation card")
    page.keyboard.press("Enter")
    page.locator("#source").wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "source-close"
    page.keyboard.press("Escape")
    page.locator("#source").wait_for(state="hidden")
    expect(page.locator(".card-open").first).to_be_focused()  # focus back where it was
    # the reports view by keyboard: the tab buttons are buttons
    page.focus("#tab-reports")
    page.keyboard.press("Enter")
    expect(page.locator("#view-reports")).to_be_visible()
    expect(page.locator("#view-ask")).to_be_hidden()


def test_reports_are_added_by_url(page):
    """The reports view's URL box: the page fetched from a site on 127.0.0.1 is indexed, its URL
    the report's source."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, PlainTextResponse
    from starlette.routing import Route

    text = NEW_REPORT.replace("青石县", "绿水县")
    report = ("<html><head><meta charset='utf-8'><title>绿水县市场监督管理局2024年度法治政府建设工作报告</title></head>"
              "<body><article>" + "".join(f"<p>{line}</p>" for line in text.split("\n") if line) + "</article></body></html>")
    routes = [Route("/ready", lambda r: PlainTextResponse("ok")), Route("/report.html", lambda r: HTMLResponse(report))]
    with ServerThread(Starlette(routes=routes), ready_path="/ready") as site:
        _key(page, ADMIN)
        page.click("#tab-reports")
        page.fill("#urls", f"{site.url}/report.html")
        page.click("#fetch-urls")
        expect(page.locator("#upload-results li")).to_contain_text("已添加")
    page.fill("#filter", "绿水县")
    expect(page.locator("#reports tbody tr")).to_have_count(1)
    assert page.locator("#reports tbody tr a").get_attribute("href") == f"{site.url}/report.html"
    page.click("#tab-ask")
    turn = _ask(page, NEW_QUESTION.replace("青石县", "绿水县"))
    assert turn.locator(".answer strong").all_inner_texts() == ["146件"]
    assert page.problems == []
