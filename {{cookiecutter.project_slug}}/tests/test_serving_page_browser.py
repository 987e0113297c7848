"""The page ``serve`` answers on ``GET /``, in a real headless Chromium driven by Selenium.

Needs a Chromium (or Chrome) and its ChromeDriver: Debian's ``chromium`` and ``chromium-driver``
packages, or CHROME_BIN / CHROMEDRIVER pointing at them (GitHub's Ubuntu runners have both). The
test skips, saying what is missing, where there is no browser; with REQUIRE_BROWSER=1 (set by
CI that installs one) it fails instead, so a broken install cannot pass as a skip.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

pytestmark = pytest.mark.engine

SENTENCE = "이 영화 정말 재밌어요, 배우들 연기도 최고!"


def _find(env_var: str, names: tuple[str, ...], folder_env: str | None = None) -> str | None:
    if os.environ.get(env_var):
        return os.environ[env_var]
    if folder_env and os.environ.get(folder_env):
        for name in names:
            candidate = Path(os.environ[folder_env]) / name
            if candidate.is_file():
                return str(candidate)
    return next((found for name in names if (found := shutil.which(name))), None)


def _require(reason: str) -> NoReturn:
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _require("selenium is not installed (pip install -e '.[dev]')")
    binary = _find("CHROME_BIN", ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"))
    driver_path = _find("CHROMEDRIVER", ("chromedriver",), folder_env="CHROMEWEBDRIVER")
    if binary is None or driver_path is None:
        _require(
            "no headless browser: install Debian's chromium and chromium-driver (or set CHROME_BIN "
            f"and CHROMEDRIVER); found browser={binary}, driver={driver_path}"
        )
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        # Offline machines: no update checks, sync or background fetches that fail and retry.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def page_server(live_server, tiny_model_dir):
    return live_server(tiny_model_dir)


def _invoke(port: int, text: str) -> list[dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"inputs": text, "parameters": {"top_k": None}}).encode("utf-8")
    connection.request("POST", "/invocations", body, {"Content-Type": "application/json"})
    return json.loads(connection.getresponse().read())


def test_typing_a_korean_sentence_shows_the_label_and_a_bar_per_label(browser, page_server, config):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, port = page_server
    browser.get(f"http://127.0.0.1:{port}/")
    labels = list(config.data.label_names)
    # textContent, not .text: label names keep their exact spaces.
    assert browser.find_element(By.ID, "labels").get_attribute("textContent") == ", ".join(labels)
    assert browser.find_element(By.ID, "version").get_attribute("textContent")
    box = browser.find_element(By.ID, "text")
    box.send_keys(SENTENCE)
    assert box.get_attribute("value") == SENTENCE
    browser.find_element(By.ID, "classify").click()
    WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scores .bar")) == len(labels)
    )

    bars = browser.find_elements(By.CSS_SELECTOR, "#scores .bar")
    shown = [(bar.get_attribute("data-label"), float(bar.get_attribute("data-score"))) for bar in bars]
    expected = _invoke(port, SENTENCE)
    assert [label for label, _ in shown] == [item["label"] for item in expected]
    assert [score for _, score in shown] == pytest.approx([item["score"] for item in expected], abs=1e-6)
    assert sorted(label for label, _ in shown) == sorted(labels)
    assert browser.find_element(By.ID, "predicted").get_attribute("textContent") == expected[0]["label"]
    for bar, item in zip(bars, expected, strict=True):
        width = bar.find_element(By.CSS_SELECTOR, ".fill").value_of_css_property("width")
        track = bar.find_element(By.CSS_SELECTOR, ".track").value_of_css_property("width")
        ratio = float(width.removesuffix("px")) / float(track.removesuffix("px"))
        assert ratio == pytest.approx(item["score"], abs=0.01), "a bar's length must be its score"
        assert bar.find_element(By.CSS_SELECTOR, ".value").text == f"{100 * item['score']:.1f}%"


def test_an_empty_text_is_refused_on_the_page_and_an_error_is_shown(browser, page_server):
    from selenium.webdriver.common.by import By

    _, port = page_server
    browser.get(f"http://127.0.0.1:{port}/")
    browser.find_element(By.ID, "classify").click()
    assert "Type a text first" in browser.find_element(By.ID, "status").text
    assert browser.find_elements(By.CSS_SELECTOR, "#scores .bar") == []


def _classify_on_page(browser, port: int, text: str, count: int) -> list:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"http://127.0.0.1:{port}/")
    browser.find_element(By.ID, "text").send_keys(text)
    browser.find_element(By.ID, "classify").click()
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scores .bar")) == count)
    return browser.find_elements(By.CSS_SELECTOR, "#scores .bar")


def test_a_multi_label_model_shows_every_decided_label_and_each_threshold(
    browser, live_server, multi_label_model_dir
):
    from conftest import MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS
    from selenium.webdriver.common.by import By

    _, port = live_server(multi_label_model_dir)
    thresholds = dict(zip(MULTI_LABEL_NAMES, MULTI_LABEL_THRESHOLDS, strict=True))
    bars = _classify_on_page(browser, port, SENTENCE, len(MULTI_LABEL_NAMES))
    expected = _invoke(port, SENTENCE)  # every label's score, best first
    decided = [item["label"] for item in expected if item["score"] >= thresholds[item["label"]]]
    assert len(decided) >= 2
    # The labels the endpoint decides without top_k, in the same order.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/invocations", json.dumps({"inputs": SENTENCE}).encode(), {})
    assert [item["label"] for item in json.loads(connection.getresponse().read())] == decided
    assert browser.find_element(By.ID, "predicted").get_attribute("textContent") == ", ".join(decided)
    for bar, item in zip(bars, expected, strict=True):
        label = item["label"]
        assert bar.get_attribute("data-label") == label
        assert float(bar.get_attribute("data-score")) == pytest.approx(item["score"], abs=1e-6)
        assert float(bar.get_attribute("data-threshold")) == thresholds[label]
        assert ("decided" in bar.get_attribute("class").split()) == (label in decided)
        assert (
            bar.find_element(By.CSS_SELECTOR, ".threshold").text
            == f"threshold {100 * thresholds[label]:.1f}%"
        )
        mark = bar.find_element(By.CSS_SELECTOR, ".mark").value_of_css_property("left")
        track = bar.find_element(By.CSS_SELECTOR, ".track").value_of_css_property("width")
        ratio = float(mark.removesuffix("px")) / float(track.removesuffix("px"))
        assert ratio == pytest.approx(thresholds[label], abs=0.01), "the mark sits at the threshold"


def test_a_multi_label_text_without_a_decided_label_shows_no_label(
    browser, live_server, multi_label_model_dir, tmp_path
):
    import shutil

    from conftest import MULTI_LABEL_NAMES
    from selenium.webdriver.common.by import By

    strict = tmp_path / "strict"
    shutil.copytree(multi_label_model_dir, strict)
    config = json.loads((strict / "config.json").read_text("utf-8"))
    config["label_thresholds"] = [0.99] * len(MULTI_LABEL_NAMES)
    (strict / "config.json").write_text(json.dumps(config), "utf-8")
    _, port = live_server(strict)
    bars = _classify_on_page(browser, port, SENTENCE, len(MULTI_LABEL_NAMES))
    assert browser.find_element(By.ID, "predicted").get_attribute("textContent") == "no label"
    assert not any("decided" in bar.get_attribute("class").split() for bar in bars)


def test_a_pair_model_gets_two_boxes_named_by_its_columns_and_shows_the_labels(
    browser, live_server, tmp_path, config
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_serving_text_pairs import build_pair_model, pair_columns

    _, port = live_server(build_pair_model(tmp_path / "pair-model", config))
    browser.get(f"http://127.0.0.1:{port}/")
    first, second = pair_columns(config)
    assert browser.find_element(By.ID, "text-label").get_attribute("textContent") == first
    assert browser.find_element(By.ID, "text-pair-label").get_attribute("textContent") == second
    # Only one text typed: the page asks for both before calling the endpoint.
    browser.find_element(By.ID, "text").send_keys(SENTENCE)
    browser.find_element(By.ID, "classify").click()
    assert "Type both texts first" in browser.find_element(By.ID, "status").text
    other = "배우들 연기가 아쉬웠다"
    browser.find_element(By.ID, "text-pair").send_keys(other)
    browser.find_element(By.ID, "classify").click()
    labels = list(config.data.label_names)
    WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scores .bar")) == len(labels)
    )
    bars = browser.find_elements(By.CSS_SELECTOR, "#scores .bar")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = {"inputs": {"text": SENTENCE, "text_pair": other}, "parameters": {"top_k": None}}
    connection.request("POST", "/invocations", json.dumps(body).encode("utf-8"), {})
    expected = json.loads(connection.getresponse().read())
    shown = [(bar.get_attribute("data-label"), float(bar.get_attribute("data-score"))) for bar in bars]
    assert [label for label, _ in shown] == [item["label"] for item in expected]
    assert [score for _, score in shown] == pytest.approx([item["score"] for item in expected], abs=1e-6)
    assert browser.find_element(By.ID, "predicted").get_attribute("textContent") == expected[0]["label"]


def test_a_one_text_model_shows_no_second_box(browser, page_server):
    from selenium.webdriver.common.by import By

    _, port = page_server
    browser.get(f"http://127.0.0.1:{port}/")
    assert not browser.find_element(By.ID, "text-pair").is_displayed()
    assert browser.find_element(By.ID, "text-label").get_attribute("textContent") == "Text to classify"
