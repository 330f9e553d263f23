"""The console in a real browser (Debian's headless Chromium through chromedriver) against the
real daemon: sign in, create a number and see it win in "Which number answers?", watch a SIPp
call appear live and end (its page lists the media stream its RCML asked for: a ws:// URL, refused
with 31922), hang up a second live SIPp call with the call page's button (the
live-call API), release the number, sign out. Every page visited is checked with
axe-core (WCAG 2 A/AA: labels, contrast, landmarks…) and the keyboard focus order is walked.

Screenshots are kept in ``tests/artifacts/console/`` (ignored by git; ``CONSOLE_ARTIFACTS``
moves them).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from support.daemon import DaemonProcess
from support.ports import free_port
from support.sipp import scenario, start_call
from support.webhooks import WebhookServer, rcml

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "tests" / "e2e" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("CONSOLE_ARTIFACTS", REPO / "tests" / "artifacts" / "console"))
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,1000",
)  # fmt: skip
PATTERN = "^7788.*"
DIALED = "77881234"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    for needed in ("/usr/bin/chromium", "/usr/bin/chromedriver", str(AXE)):
        if not Path(needed).exists():
            pytest.fail(f"{needed} is missing: run `make test-setup` (chromium, axe-core)")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(20)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def shot(driver: WebDriver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def wait_for(driver: WebDriver, condition: Any, timeout: float = 10) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def check_accessibility(driver: WebDriver, page: str) -> None:
    """axe-core's WCAG 2 A and AA rules on the page as it is; no violation allowed."""
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
        ".then(r => done({violations: r.violations.map(v => ({id: v.id, help: v.help, "
        "nodes: v.nodes.map(n => n.target.join(' '))}))}), e => done({error: String(e)}));"
    )
    assert "error" not in result, result
    assert result["violations"] == [], f"{page}: {result['violations']}"


def check_focus_order(driver: WebDriver, page: str) -> None:
    """Tab from the top: the skip link first, then every control in document order."""
    focusable = driver.execute_script(
        "return Array.from(document.querySelectorAll('a[href], button:not([disabled]), "
        "input:not([type=hidden]):not([disabled]), select, textarea'))"
        ".filter(e => e.offsetParent !== null || e.classList.contains('skip'));"
    )
    driver.execute_script(  # the sequential focus starting point: the top of the document
        "const top = document.documentElement; top.setAttribute('tabindex', '-1'); top.focus();"
        "top.removeAttribute('tabindex'); window.scrollTo(0, 0);"
    )
    seen = []
    for _ in range(min(len(focusable), 25)):
        driver.switch_to.active_element.send_keys(Keys.TAB)
        seen.append(driver.switch_to.active_element)
    assert seen and "skip" in (seen[0].get_attribute("class") or ""), page
    assert [e.id for e in seen] == [e.id for e in focusable[: len(seen)]], page


def visit(driver: WebDriver, url: str, name: str) -> None:
    driver.get(url)
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete")
    check_accessibility(driver, name)
    shot(driver, name)


def test_console_in_a_browser(
    browser: WebDriver, daemon: DaemonProcess, webhooks: WebhookServer, workdir: Path
) -> None:
    started = time.monotonic()
    base = f"http://127.0.0.1:{daemon.api_port}/console"
    plain_ws = f"ws://127.0.0.1:{free_port()}/"  # refused: no [streams] allow_insecure
    start = f'<Start><Stream url="{plain_ws}" name="recorder"/></Start>'
    voice = webhooks.route("/voice/console", rcml(start, '<Pause length="4"/>', "<Hangup/>"))

    # every page without a session goes to sign-in
    visit(browser, f"{base}/live", "01-sign-in")
    assert "/console/signin?next=" in browser.current_url
    check_focus_order(browser, "sign-in")
    browser.find_element(By.ID, "f-user").send_keys(daemon.account_sid)
    browser.find_element(By.ID, "f-secret").send_keys(daemon.auth_token)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(browser, lambda d: d.current_url.endswith("/console/live"))
    check_accessibility(browser, "live (empty)")

    # create a regex number: the live check shows the API's 21505, then accepts the pattern
    visit(browser, f"{base}/numbers/new", "02-new-number")
    check_focus_order(browser, "new number")
    phone = browser.find_element(By.ID, "f-PhoneNumber")
    phone.send_keys(".*")
    hint = browser.find_element(By.ID, "phone-check")
    wait_for(browser, lambda _d: "21505" in hint.text)
    assert phone.get_attribute("aria-invalid") == "true"
    shot(browser, "03-pattern-refused")
    phone.clear()
    phone.send_keys(PATTERN)
    wait_for(browser, lambda _d: "regex pattern" in hint.text)
    browser.find_element(By.ID, "f-VoiceUrl").send_keys(voice)
    browser.find_element(By.CSS_SELECTOR, "#sip-form button[type=submit]").click()
    wait_for(browser, lambda d: "Done: created" in d.page_source)
    number_url = browser.current_url.split("?")[0]
    check_accessibility(browser, "number page")
    shot(browser, "04-number-created")

    # ... and see it win for a dialed string
    visit(browser, f"{base}/explain?dialed={DIALED}", "05-explain")
    verdict = browser.find_element(By.ID, "verdict").text
    assert f"{PATTERN} answers {DIALED} (regex match)" in verdict
    winner = browser.find_element(By.CSS_SELECTOR, "#steps li[data-outcome=winner]")
    assert winner.get_attribute("data-stage") == "regex" and "longest pattern" in winner.text

    # a SIPp call appears live, then ends
    visit(browser, f"{base}/live", "06-live-before")
    call = start_call(
        scenario("uac_daemon_hangs_up.xml", workdir), daemon.sip_port, service=DIALED,
        workdir=workdir,
    )  # fmt: skip
    try:
        row = wait_for(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#live-rows tr[data-status=in-progress]"),
        )[0]
        call_sid = row.get_attribute("data-call")
        assert "Live, updated" in browser.find_element(By.ID, "live-state").text
        check_accessibility(browser, "live (a call)")
        shot(browser, "07-live-call")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#live-rows tr.empty"), 15)
        shot(browser, "08-live-ended")
        assert call.wait(20) == 0, "the SIPp call failed"
    finally:
        if call.poll() is None:
            call.kill()

    # a second call, in a long pause, hung up from its page (the live-call API's update)
    webhooks.route("/voice/console", rcml('<Pause length="20"/>'))
    visit(browser, f"{base}/live", "08b-live-before-hangup")
    second = start_call(
        scenario("uac_daemon_hangs_up.xml", workdir), daemon.sip_port, service=DIALED,
        workdir=workdir,
    )  # fmt: skip
    try:
        row = wait_for(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#live-rows tr[data-status=in-progress]"),
        )[0]
        second_sid = row.get_attribute("data-call")
        visit(browser, f"{base}/calls/{second_sid}", "08c-live-call-page")
        check_focus_order(browser, "live call page")
        hang_up = browser.find_element(By.XPATH, "//button[normalize-space()='Hang up']")
        assert hang_up.is_enabled()
        clicked = time.monotonic()
        hang_up.click()
        wait_for(browser, lambda d: "hung up; the call is completed" in d.page_source)
        assert browser.find_element(By.ID, "call-status").text == "completed"
        check_accessibility(browser, "hung-up call page")
        shot(browser, "08d-hung-up")
        assert second.wait(20) == 0, "the SIPp call did not get the BYE"
        assert time.monotonic() - clicked < 10  # not the 20 s pause
    finally:
        if second.poll() is None:
            second.kill()

    # the call's record and page
    visit(browser, f"{base}/calls?To={DIALED}", "09-call-log")
    assert call_sid in browser.page_source
    visit(browser, f"{base}/calls/{call_sid}", "10-call-page")
    assert browser.find_element(By.ID, "call-status").text == "completed"
    assert voice in browser.page_source
    streams = browser.find_element(By.CSS_SELECTOR, "section[aria-labelledby=streams-heading]")
    assert "recorder" in streams.text and plain_ws in streams.text
    assert "failed" in streams.text and "31922: ws:// (no TLS) is refused" in streams.text
    for page in ("messages", "accounts", "health"):
        visit(browser, f"{base}/{page}", f"11-{page}")
    try:  # the health charts draw from the metric samples (two are needed for a rate)
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "figure polyline"), 8)
    except TimeoutException:
        pytest.fail("the health charts were not drawn")
    shot(browser, "12-health-charts")

    # release the number, then sign out
    browser.get(number_url)
    browser.find_element(By.LINK_TEXT, "Release this number…").click()
    check_accessibility(browser, "release")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(browser, lambda d: f"released {PATTERN}" in d.page_source)
    shot(browser, "13-released")
    visit(browser, f"{base}/explain?dialed={DIALED}", "14-explain-after")
    assert "No number answers" in browser.find_element(By.ID, "verdict").text
    browser.find_element(By.CSS_SELECTOR, ".who button[type=submit]").click()
    wait_for(browser, lambda d: "/console/signin" in d.current_url)
    browser.get(f"{base}/numbers")
    assert "/console/signin?next=" in browser.current_url
    shot(browser, "15-signed-out")
    assert time.monotonic() - started < 90
