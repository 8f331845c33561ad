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
import re
import shutil
import threading
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
    _missing(f"{missing} is not installed (apt-get install chromium chromium-driver; see the README's test section)")


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
        browser.set_window_size(900, 1010)
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


class StepStandIn:
    """A method stand-in whose tiles the test completes one by one (``step``), or all at once
    (``finish``); it reports progress as the engine does and records cancellations."""

    device = "cpu"
    precision = "fp32"
    weights_info = None

    def __init__(self) -> None:
        self.total = 1
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self._steps = threading.Semaphore(0)
        self._finish = threading.Event()

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self._steps.release()

    def finish(self) -> None:
        self._finish.set()

    def run(self, rgb, progress=None):
        from deblur_cli.serve.jobs import Cancelled

        self._finish.clear()
        self.started.append(rgb.shape[1])
        done, total = 0, self.total
        try:
            progress(done, total)
            while done < total and not self._finish.is_set():
                if self._steps.acquire(timeout=0.02):
                    done += 1
                progress(done, total)  # a cancelled job raises here, as in the engine
        except Cancelled:
            self.cancelled.append(rgb.shape[1])
            raise
        return 1.0 - rgb


@pytest.fixture
def make_page_server(tmp_path, monkeypatch):
    """The page and API over a stand-in method (uvicorn in a thread, as tests/serve/test_serve_queue.py)."""
    from tests.serve.test_serve_queue import ThreadServer

    made = []

    def make(standin, loader=None):
        (tmp_path / "tmp").mkdir(exist_ok=True)
        made.append(ThreadServer(standin, tmp_path / "tmp", monkeypatch, loader))
        return made[-1]

    yield make
    for server in made:
        server.close()


# ----------------------------------------------------------------------------- issue 27 item 16


def _click(driver, element) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _rendered_width(driver, element) -> float:
    return driver.execute_script("return arguments[0].getBoundingClientRect().width", element)


def test_the_view_shows_the_photo_at_100_and_200_percent(browser, server):
    """Deblurring is judged at full size: 100 % is one photo pixel per screen pixel, in a frame
    that scrolls; 200 % doubles it; Fit goes back; the divider works at every size."""
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(700, 900)
    _open(browser, server)
    wide = images.encode(Image.fromarray(images.photo_array(1000, 600, seed=21)), "JPEG", quality=90)
    _drop(browser, (wide, "wide.jpg", "image/jpeg"))  # under the test server's 1 MB
    assert _finished(browser, 1) == ["done"]
    card = browser.find_element("css selector", ".card")
    after, viewport = card.find_element("css selector", ".after"), card.find_element("css selector", ".viewport")
    ratio = browser.execute_script("return window.devicePixelRatio")
    fit = _rendered_width(browser, after)
    assert fit < 700  # fitted into the page
    buttons = {b.text: b for b in card.find_elements("css selector", ".zoom button")}
    assert set(buttons) == {"Fit", "100 %", "200 %"} and buttons["Fit"].get_attribute("aria-pressed") == "true"
    _click(browser, buttons["100 %"])
    assert abs(_rendered_width(browser, after) - 1000 / ratio) < 1
    assert buttons["100 %"].get_attribute("aria-pressed") == "true"
    scroll = browser.execute_script("return [arguments[0].scrollWidth, arguments[0].clientWidth, arguments[0].scrollLeft]", viewport)
    assert scroll[0] > scroll[1] and scroll[2] > 0  # it scrolls, and starts at the middle
    compare = card.find_element("css selector", ".compare")
    compare.send_keys(Keys.ARROW_LEFT)
    assert int(compare.get_attribute("aria-valuenow")) == 48
    before_width = browser.execute_script("return arguments[0].querySelector('.before').getBoundingClientRect().width", compare)
    assert abs(before_width - 1000 / ratio) < 1  # the original is shown at the same size
    _click(browser, buttons["200 %"])
    assert abs(_rendered_width(browser, after) - 2000 / ratio) < 1
    _click(browser, buttons["Fit"])
    assert abs(_rendered_width(browser, after) - fit) < 1
    assert not _console_errors(browser)


def test_download_all_saves_every_result_in_one_zip(browser, server):
    import zipfile

    _open(browser, server)
    uploads = [(images.png(40, 30, seed=31), "same.png"), (images.png(36, 28, seed=32), "same.png"),
               (images.jpeg_with_metadata(40, 24), "holiday.jpg")]
    _drop(browser, *[(data, name, "image/png" if name.endswith("png") else "image/jpeg") for data, name in uploads])
    assert _finished(browser, 3) == ["done"] * 3
    button = browser.find_element("id", "download-all")
    assert button.is_displayed() and "3" in button.text
    _click(browser, button)
    target = browser.downloads / "deblurred.zip"
    _wait(browser, lambda: target.exists() and not list(browser.downloads.glob("*.crdownload")), "the ZIP is saved")
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None  # every CRC right
        assert archive.namelist() == ["same_deblurred.png", "same_deblurred (2).png", "holiday_deblurred.jpg"]
        for (data, name), member in zip(uploads, archive.namelist()):
            assert archive.read(member) == server.post("api/deblur", data, name=name).content
    assert not _console_errors(browser)


def test_wording_time_left_and_cancel(browser, make_page_server):
    """A photo of one tile says "deblurring…" (not "tile 0 of 1"); one of several says how
    many tiles are done and about how long is left; Cancel stops a running photo on the
    server (at its next tile) and takes a waiting one out before it is sent."""
    standin = StepStandIn()
    page = make_page_server(standin)
    _open(browser, page)
    _drop(browser, (images.png(20, 16, seed=1), "one.png", "image/png"))
    standin.total = 1
    _wait(browser, lambda: standin.started, "the first photo runs")
    status = browser.find_elements("css selector", ".card .status-text")[0]
    _wait(browser, lambda: status.text == "deblurring…", "the one-tile wording")
    standin.finish()
    assert _finished(browser, 1) == ["done"]
    log = browser.execute_script("return window.statusLog[0]")
    assert not any("0 of 1" in text or "tile 0" in text for text in log), log

    standin.total = 10
    _drop(browser, (images.png(30, 16, seed=2), "long.png", "image/png"), (images.png(31, 16, seed=3), "next.png", "image/png"))
    _wait(browser, lambda: len(standin.started) == 2, "the second photo runs")
    standin.step(3)
    card = browser.find_elements("css selector", ".card")[1]
    _wait(browser, lambda: re.fullmatch(r"deblurring: 3 of 10 tiles done · (about \d+ (s|min) left|a few seconds left)",
                                        card.find_element("css selector", ".status-text").text), "the time left")
    waiting = browser.find_elements("css selector", ".card")[2]
    _click(browser, waiting.find_element("css selector", ".cancel"))
    assert waiting.get_attribute("data-state") == "cancelled"
    _click(browser, card.find_element("css selector", ".cancel"))
    _wait(browser, lambda: standin.cancelled == [30], "the running photo stopped on the server")
    _wait(browser, lambda: card.get_attribute("data-state") == "cancelled", "the card says cancelled")
    assert standin.started == [20, 30]  # the waiting one was never sent
    _wait(browser, lambda: page.health()["queue"]["deblur"]["taken"] == 0, "the place is free")
    assert not card.find_element("css selector", ".cancel").is_displayed()
    assert not _console_errors(browser)


def test_a_choice_of_weights(browser, server):
    """The page offers the server's weights and the registered ones on this machine; a photo
    added after choosing others is deblurred with them (the answer names them)."""
    from selenium.webdriver.support.select import Select

    _open(browser, server)
    offered = server.healthy()["choices"]
    choice = Select(browser.find_element("id", "weights"))
    assert [o.text for o in choice.options] == offered["weights"]
    assert offered["weights"][0] == "tiny.safetensors" and "lite" in offered["weights"]
    assert not browser.find_element("id", "method-choice").is_displayed()  # one method: nothing to choose
    choice.select_by_visible_text("lite")
    data = images.png(40, 32, seed=41)
    _drop(browser, (data, "pick.png", "image/png"))
    assert _finished(browser, 1) == ["done"]
    card = browser.find_element("css selector", ".card")
    assert "weights lite" in card.find_element("css selector", ".scores").text
    _click(browser, card.find_element("css selector", "a.download"))
    target = browser.downloads / "pick_deblurred.png"
    _wait(browser, lambda: target.exists() and not list(browser.downloads.glob("*.crdownload")), "the download is saved")
    lite = server.post("api/deblur", data, name="pick.png", fields={"weights": "lite"})
    assert lite.headers["x-deblur-weights"] == "lite" and target.read_bytes() == lite.content
    assert target.read_bytes() != server.post("api/deblur", data, name="pick.png").content


def test_the_form_carries_a_method_when_the_server_offers_several(browser, make_page_server, monkeypatch):
    """The method list is the server's (its registry): with one method the page shows no
    choice; with two it offers both, and a photo added after choosing one without weights
    is sent with that method and no weights."""
    from selenium.webdriver.support.select import Select

    from deblur_cli.methods import registry
    from tests.serve.test_serve_queue import StandIn

    registry.names()  # the real methods first
    sketch = registry.Method(name="sketch", help="a stand-in method of this test", create=lambda options: None)
    monkeypatch.setitem(registry._REGISTRY, "sketch", sketch)
    asked: list[tuple[str, str | None]] = []

    def loader(method, weights):
        asked.append((method, weights))
        return StandIn()

    page = make_page_server(StandIn(), loader)
    _open(browser, page)
    method = Select(browser.find_element("id", "method"))
    assert [o.text for o in method.options] == ["network", "sketch"]
    assert browser.find_element("id", "method-choice").is_displayed()
    method.select_by_visible_text("sketch")
    assert not browser.find_element("id", "weights").is_enabled()  # sketch takes no weights
    _drop(browser, (images.png(24, 16, seed=5), "m.png", "image/png"))
    assert _finished(browser, 1) == ["done"]
    assert asked == [("sketch", None)]
