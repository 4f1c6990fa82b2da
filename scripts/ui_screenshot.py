"""Screenshot of the inspection page of a running service (the README's docs/ui.png).

    .venv/bin/python scripts/ui_screenshot.py http://127.0.0.1:8000 docs/ui.png --user 42

Opens ``/ui?user=ID`` in headless chromium (``bash scripts/setup_browser.sh``), waits for
the ranking, and saves a PNG. With a read key, pass ``--key`` (it goes through the form).
"""

from __future__ import annotations

import argparse
import shutil

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the service's base URL")
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("--user", default="42")
    parser.add_argument("--key", default=None, help="a read key, when reads need one")
    parser.add_argument("--size", default="1280,1100", help="window width,height")
    parser.add_argument("--wait-s", type=float, default=600)
    args = parser.parse_args()
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit("error: chromium or chromedriver missing: bash scripts/setup_browser.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={args.size}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))
    try:
        page = f"{args.url.rstrip('/')}/ui?user={args.user}"
        browser.get(page)
        if args.key is not None and browser.find_elements(By.ID, "key"):
            browser.find_element(By.ID, "key").send_keys(args.key)
            browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
            WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "user"))
        wait = WebDriverWait(browser, args.wait_s)
        wait.until(lambda d: d.find_element(By.ID, "ranking").get_attribute("data-done"))
        browser.save_screenshot(args.out)
    finally:
        browser.quit()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
