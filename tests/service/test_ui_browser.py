"""The inspection page in a real headless browser (Debian's chromium, driven by selenium)
against a real uvicorn on the tiny model that writes visible thoughts: the key form, a
user chosen, thoughts streaming in, the ranking /recommend gives, evidence graphs drawn,
and a screenshot in the test's folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.main import create_app
from tests.harness.vllm import REQUIRE_ENV, servers_required
from tests.service.conftest import settings_for
from tests.service.live import live_server

WAIT_S = 180  # the model's first request on a shared CPU, with headroom


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless chromium; missing, it skips, or fails when real servers are required."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    try:
        from selenium import webdriver
    except ImportError:  # pragma: no cover - a dev install has it
        webdriver = None  # type: ignore[assignment]
    if chromium is None or driver is None or webdriver is None:
        message = "chromium, chromedriver or selenium missing: run `bash scripts/setup_browser.sh`"
        if servers_required():
            pytest.fail(f"{REQUIRE_ENV} is set but {message}")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1100")
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))
    try:
        yield session
    finally:
        session.quit()


def test_page_streams_thoughts_and_shows_the_ranking_recommend_gives(
    browser: Any, talkative_model_dir: Any, tmp_path: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    settings = settings_for(
        talkative_model_dir, max_reasoning_tokens=48, thoughts="model", read_key="reader"
    )
    with live_server(create_app(settings)) as url:
        browser.get(f"{url}/ui")  # reads need a key: the form first
        browser.find_element(By.ID, "key").send_keys("reader")
        browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
        wait = WebDriverWait(browser, WAIT_S)
        user = wait.until(lambda d: d.find_elements(By.ID, "user"))[0]
        picker = browser.find_elements(By.CSS_SELECTOR, "#users option")
        assert len(picker) > 10 and picker[0].get_attribute("value") == "1"

        user.send_keys("42")
        k = browser.find_element(By.ID, "k")
        k.clear()
        k.send_keys("5")
        browser.find_element(By.ID, "go").click()

        def thoughts(d: Any) -> list[str]:
            return [p.text for p in d.find_elements(By.CSS_SELECTOR, "#thoughts p") if p.text]

        assert wait.until(thoughts)  # the reasoning appears
        wait.until(lambda d: d.find_element(By.ID, "ranking").get_attribute("data-done"))
        rows = browser.find_elements(By.CSS_SELECTOR, "#ranking li")
        shown = [row.get_attribute("data-item-id") for row in rows]
        scores = [float(row.find_element(By.CLASS_NAME, "score").text) for row in rows]
        history = browser.find_elements(By.CSS_SELECTOR, "#history li")
        graphs = browser.find_elements(By.CSS_SELECTOR, "#evidence svg.chain")
        status = browser.find_element(By.ID, "status").text
        browser.save_screenshot(str(tmp_path / "ui.png"))

        ask = {"user_id": "42", "k": 5, "explain": True}
        expected = httpx.post(
            f"{url}/recommend", json=ask, headers={"X-API-Key": "reader"}, timeout=WAIT_S
        ).json()
    assert status.startswith("done"), status
    assert shown == [item["item_id"] for item in expected["items"]]
    assert scores == sorted(scores, reverse=True)
    assert len(history) == 10 and history[0].get_attribute("data-item-id")
    assert len(graphs) == len(expected["evidence"]) > 0
    assert " ".join(thoughts(browser))[:20] in expected["explanation"]
    assert (tmp_path / "ui.png").stat().st_size > 10_000
