"""The page in a real headless browser (Debian's chromium and chromedriver, via selenium),
against a real `deblur serve` process: drop photos, watch them queue, get the before / after
view, drag the divider, download the result.

Without chromium this module is skipped locally (with the reason) and fails in CI (the CI
environment variable is set): `.ci/run` installs chromium and chromium-driver.

``DEBLUR_SERVE_SCREENSHOT=docs/images/serve.png pytest tests/serve/test_serve_page.py -k screenshot``
also takes the README's screenshot: the bundled weights on docs/sample/blurry.jpg.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import time

import pytest
from PIL import Image

from tests.serve import images
from tests.serve.conftest import ROOT, ServerProcess

SAMPLE = ROOT / "docs" / "sample" / "blurry.jpg"
WAIT_SECONDS = 180  # a generous bound for a busy CI machine; never an assertion about speed


def _find(*names: str) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    browser = _find("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    driver = _find("chromedriver")
    if browser and driver:
        return browser, driver
    missing = "chromium" if not browser else "chromedriver"
    _missing(f"{missing} is not installed (apt-get install chromium chromium-driver)")


def _missing(message: str):
    """Skip with the reason on a developer's machine; fail in CI, which must run this test."""
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI must run the browser test (.ci/run installs what it needs)")
    pytest.skip(message)


@pytest.fixture
def browser(browser_paths, tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[test]')")

    options = webdriver.ChromeOptions()
    options.binary_location = browser_paths[0]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1100,900",
                "--no-first-run", "--lang=en-US", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=browser_paths[1]), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


# ----------------------------------------------------------------------------- page helpers

DROP = """
const [files, target] = [arguments[0], document.getElementById('drop')];
const transfer = new DataTransfer();
for (const [b64, name, type] of files) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  transfer.items.add(new File([bytes], name, { type }));
}
for (const kind of ['dragenter', 'dragover', 'drop']) {
  target.dispatchEvent(new DragEvent(kind, { bubbles: true, cancelable: true, dataTransfer: transfer }));
}
"""
# Every status text each card shows, in order (the page's progress indication).
WATCH = """
window.statusLog = [];
new MutationObserver(() => {
  document.querySelectorAll('.card').forEach((card, i) => {
    const text = card.querySelector('.status-text').textContent;
    const log = (window.statusLog[i] = window.statusLog[i] || []);
    if (log[log.length - 1] !== text) log.push(text);
  });
}).observe(document.getElementById('results'), { subtree: true, childList: true, characterData: true });
"""


def _open(driver, server) -> None:
    driver.get(server.url)
    _wait(driver, lambda: "weights" in driver.find_element("id", "server-info").text, "the page shows the server's weights")
    driver.execute_script(WATCH)


def _drop(driver, *files: tuple[bytes, str, str]) -> None:
    driver.execute_script(DROP, [[base64.b64encode(data).decode(), name, kind] for data, name, kind in files])


def _wait(driver, condition, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"the page never got there: {what}; console: {driver.get_log('browser')[-5:]}")


def _states(driver) -> list[str]:
    return driver.execute_script("return [...document.querySelectorAll('.card')].map((c) => c.dataset.state)")


def _finished(driver, count: int) -> list[str]:
    return _wait(
        driver,
        lambda: (s := _states(driver)) and len(s) == count and all(x in ("done", "failed") for x in s) and s,
        f"{count} photos finished",
    )


def _images_shown(card) -> list[tuple[int, int]]:
    return card.parent.execute_script(
        "return [...arguments[0].querySelectorAll('.compare img')].map((i) => i.complete ? [i.naturalWidth, i.naturalHeight] : [0, 0])",
        card,
    )


def _console_errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


# ----------------------------------------------------------------------------- tests


def test_dropped_photo_gives_before_after_divider_scores_and_download(browser, server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    _open(browser, server)
    second = images.png(96, 60, seed=11)
    _drop(browser, (SAMPLE.read_bytes(), "blurry.jpg", "image/jpeg"), (second, "second.png", "image/png"))
    assert _finished(browser, 2) == ["done", "done"]
    log = browser.execute_script("return window.statusLog")
    assert "waiting: 1 photo ahead" in log[1]  # queued behind the first, then sent
    assert any(text.startswith("uploading") for text in log[0]) and log[0][-1] == "done"

    card = browser.find_elements("css selector", ".card")[0]
    assert _images_shown(card) == [[640, 400], [640, 400]]  # after and before, both decoded
    assert "blur score" in card.find_element("css selector", ".scores").text

    compare = card.find_element("css selector", ".compare")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", compare)
    width = compare.size["width"]
    assert compare.get_attribute("aria-valuenow") == "50"
    ActionChains(browser).move_to_element_with_offset(compare, -width * 0.3, 0).click_and_hold().move_by_offset(
        width * 0.5, 0
    ).release().perform()
    assert abs(int(compare.get_attribute("aria-valuenow")) - 70) <= 3  # dragged from 20% to 70%
    clip = browser.execute_script("return getComputedStyle(arguments[0].querySelector('.before')).clipPath", compare)
    assert "inset" in clip and not clip.startswith("inset(0px 50%")
    compare.send_keys(Keys.ARROW_LEFT)
    assert abs(int(compare.get_attribute("aria-valuenow")) - 68) <= 3

    link = card.find_element("css selector", "a.download")
    assert link.is_displayed() and link.get_attribute("download") == "blurry_deblurred.jpg"
    link.click()
    target = browser.downloads / "blurry_deblurred.jpg"
    _wait(browser, lambda: target.exists() and not list(browser.downloads.glob("*.crdownload")), "the download is saved")
    expected = server.post("api/deblur", SAMPLE.read_bytes(), name="blurry.jpg")
    assert target.read_bytes() == expected.content  # the file is the deblurred image
    assert target.read_bytes() != SAMPLE.read_bytes()
    assert not _console_errors(browser)


def test_a_bad_file_shows_the_servers_error_and_the_next_photo_still_runs(browser, server, tmp_path):
    bad, good = tmp_path / "notes.jpg", tmp_path / "good.png"
    bad.write_bytes(b"this is not a photo\n" * 10)
    good.write_bytes(images.png(50, 40, seed=2))
    _open(browser, server)
    browser.find_element("id", "pick").send_keys(f"{bad}\n{good}")  # the file picker, two at once
    assert _finished(browser, 2) == ["failed", "done"]
    error = browser.find_elements("css selector", ".card")[0].find_element("css selector", ".error")
    assert "not an image" in error.text and "notes.jpg" in error.text
    assert server.healthy()["queue"]["deblur"]["taken"] == 0


def test_tiff_is_shown_through_the_server_preview(browser, server):
    _open(browser, server)
    _drop(browser, (images.tiff(40, 30), "scan.tif", "image/tiff"))
    assert _finished(browser, 1) == ["done"]
    card = browser.find_element("css selector", ".card")
    assert _images_shown(card) == [[40, 30], [40, 30]]
    assert card.find_element("css selector", "a.download").get_attribute("download") == "scan_deblurred.tif"


def test_phone_sized_window(browser, server):
    browser.set_window_size(390, 844)
    _open(browser, server)
    _drop(browser, (SAMPLE.read_bytes(), "blurry.jpg", "image/jpeg"))
    assert _finished(browser, 1) == ["done"]
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"
    inner = browser.execute_script("return window.innerWidth")
    for selector in (".compare", "a.download", "#drop"):
        box = browser.find_element("css selector", selector).rect
        assert box["x"] >= 0 and box["x"] + box["width"] <= inner, selector


@pytest.mark.skipif(not os.environ.get("DEBLUR_SERVE_SCREENSHOT"), reason="set DEBLUR_SERVE_SCREENSHOT=PATH to take the README screenshot")
def test_screenshot_for_the_readme(browser, tmp_path):
    """The bundled weights on the sample photo, the divider dragged a little left of centre."""
    from selenium.webdriver.common.action_chains import ActionChains

    server = ServerProcess(["--device", "cpu"], tmp_path / "tmp")
    try:
        browser.set_window_size(900, 930)
        _open(browser, server)
        _drop(browser, (SAMPLE.read_bytes(), "blurry.jpg", "image/jpeg"))
        assert _finished(browser, 1) == ["done"]
        compare = browser.find_element("css selector", ".compare")
        ActionChains(browser).move_to_element(compare).click_and_hold().move_by_offset(-compare.size["width"] * 0.08, 0).release().perform()
        browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
        shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    finally:
        server.stop()
    out = ROOT / os.environ["DEBLUR_SERVE_SCREENSHOT"]
    shot.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)
    assert out.stat().st_size < 600_000


EVIL_PAGE = """<!doctype html><html><body><form id="f" method="post" enctype="multipart/form-data" target="sink"
action="{api}api/deblur"><input type="hidden" name="x" value="1"></form><iframe name="sink"></iframe><script>
const data = new FormData();
data.append("file", new Blob([new Uint8Array({png})], {{type: "image/png"}}), "p.png");
window.answers = [];
fetch("{api}api/score", {{method: "POST", mode: "no-cors", body: data}})
  .then((r) => window.answers.push("fetch:" + r.type), (e) => window.answers.push("fetch failed"));
document.getElementById("f").submit();
</script></body></html>"""


def test_another_sites_page_cannot_make_the_server_work(browser, server):
    """A page on another origin (here 127.0.0.1 on another port) posts a no-cors fetch and a
    form to the API, as any web site could: both are refused (403) before any work."""
    import http.server
    import threading

    png = list(images.png(32, 24))
    page = EVIL_PAGE.format(api=server.url, png=png).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        before = len(server.stderr)
        browser.get(f"http://127.0.0.1:{evil.server_address[1]}/")
        _wait(browser, lambda: browser.execute_script("return window.answers.length") == 1, "the fetch settled")
        lines = lambda: [line for line in server.stderr[before:] if "/api/" in line]  # noqa: E731
        _wait(browser, lambda: len(lines()) >= 2, "both requests reached the server")
    finally:
        evil.shutdown()
        evil.server_close()
    assert sorted(line.split()[:3] for line in lines()) == [["403", "POST", "/api/deblur"], ["403", "POST", "/api/score"]]
    assert all("cross-origin" in line for line in lines())
