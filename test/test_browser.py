#!/usr/bin/env python3
"""The upload page works in a real browser: Debian's chromium, driven headless through
chromedriver by selenium, opens morsel-serve's GET /, picks a photo in the form's file input,
submits it, and the page it lands on must be the users' answer line

    <label> (<probability>), Inference Time : <seconds> seconds

naming the class `morsel classify` gives that photo with the same model, with the same
probability. A missing chromium, chromedriver or selenium fails the test (no silent skip).

Environment (set by ctest): MORSEL_SERVE (the server binary), MORSEL_BIN (the CLI),
MORSEL_FIXTURES (food11.morsel, from export_fixtures), MORSEL_SHARED (the seed photos).
MORSEL_SCREENSHOT=path keeps the screenshot of the answer page there.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ANSWER = re.compile(r"^(?P<label>.+) \((?P<prob>[-+0-9.eE]+)\), "
                    r"Inference Time : (?P<secs>[0-9.eE-]+) seconds$")


def fail(msg):
    print(f"browser: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def env_path(name):
    v = os.environ.get(name)
    if not v:
        fail(f"{name} is not set (run through ctest)")
    return v


def start_server(serve, model, log_path):
    log = open(log_path, "w+")
    proc = subprocess.Popen([serve, "--model", model, "--host", "127.0.0.1", "--port", "0",
                             "--log", "json"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log.seek(0)
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read())
        if m:
            return proc, m.group(1), log
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    log.seek(0)
    fail(f"morsel-serve did not start:\n{log.read()}")


def main():
    serve, cli = env_path("MORSEL_SERVE"), env_path("MORSEL_BIN")
    model = os.path.join(env_path("MORSEL_FIXTURES"), "food11.morsel")
    # chromedriver wants a canonical path (no "..": MORSEL_SHARED is SOURCE/../shared).
    photo = os.path.realpath(os.path.join(env_path("MORSEL_SHARED"), "images", "seed", "noodles.jpg"))
    for p in (serve, cli, model, photo):
        if not os.path.exists(p):
            fail(f"missing {p}")
    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_bin:
        fail("Debian's chromium and chromium-driver are required "
             "(apt-get install chromium chromium-driver)")
    # Never let Selenium Manager look for (or download) another browser or driver.
    os.environ["SE_OFFLINE"] = "true"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError as e:
        fail(f"selenium is required (pip install -r weights/requirements-test.txt): {e}")

    want = json.loads(subprocess.run([cli, "classify", "--model", model, "--json", photo],
                                     check=True, capture_output=True, text=True).stdout)
    want_label, want_prob = want["top"][0]["label"], want["top"][0]["probability"]

    tmp = tempfile.mkdtemp(prefix="morsel-browser-")
    proc, base, log = start_server(serve, model, os.path.join(tmp, "server.log"))
    driver = None
    try:
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--disable-gpu", "--window-size=900,400", f"--user-data-dir={tmp}/profile"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(executable_path=driver_bin), options=opts)
        driver.set_page_load_timeout(60)
        driver.get(base + "/")
        field = driver.find_element(By.CSS_SELECTOR, "form input[type=file]")
        if field.get_attribute("name") != "file":
            fail(f"the upload field is named {field.get_attribute('name')!r}, users post 'file'")
        form = driver.find_element(By.TAG_NAME, "form")
        if not (form.get_attribute("action") or "").endswith("/predict"):
            fail(f"the form posts to {form.get_attribute('action')!r}, not /predict")
        field.send_keys(photo)
        driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
        WebDriverWait(driver, 60).until(EC.url_contains("/predict"))
        WebDriverWait(driver, 60).until(
            lambda d: ANSWER.match(d.find_element(By.TAG_NAME, "body").text.strip()))
        text = driver.find_element(By.TAG_NAME, "body").text.strip()
        shot = os.environ.get("MORSEL_SCREENSHOT") or os.path.join(tmp, "answer.png")
        if not driver.save_screenshot(shot):
            fail("chromium took no screenshot")
        print(f"browser: screenshot {shot}")
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(timeout=30)

    print(f"browser: chromium shows {text!r}")
    m = ANSWER.match(text)
    if m["label"] != want_label:
        fail(f"label {m['label']!r}, morsel classify says {want_label!r}")
    if abs(float(m["prob"]) - want_prob) > 1e-6:
        fail(f"probability {m['prob']}, morsel classify says {want_prob}")
    if not 0 < float(m["secs"]) < 60:
        fail(f"inference time {m['secs']} s")
    # The server saw the browser's multipart upload carrying the whole photo.
    log.seek(0)
    posts = [json.loads(line) for line in log if line.startswith("{") and '"/predict"' in line]
    size = os.path.getsize(photo)
    if not any(p["status"] == 200 and p["method"] == "POST" and p["bytes_in"] > size
               for p in posts):
        fail(f"no 200 POST /predict of more than {size} bytes in the access log: {posts}")
    if proc.returncode != 0:
        fail(f"morsel-serve exited {proc.returncode} on SIGTERM")
    print(f"browser: OK ({want_label}, p={want_prob}, upload {posts[-1]['bytes_in']} bytes)")


if __name__ == "__main__":
    main()
