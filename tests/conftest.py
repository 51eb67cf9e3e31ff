"""Shared pytest setup: CPU-only, quiet, deterministic where it matters."""

import os
import shutil
from pathlib import Path

import pytest
import torch

os.environ.setdefault("SR_PROFILE", "smoke")
# At most 2 threads (the CI machine has 2 cores); under pytest-xdist, the worker's share (conftest.py).
torch.set_num_threads(min(2, int(os.environ.get("SR_THREADS", os.cpu_count() or 1))))


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "demo: runs the demo profile in full, about 4 minutes on 2 cores (pytest -m demo)",
    )


def pytest_runtest_setup(item):
    """Tests marked demo run only when selected (pytest -m demo): each trains the demo in full."""
    if item.get_closest_marker("demo") and "demo" not in (item.config.getoption("markexpr") or ""):
        pytest.skip("trains the demo profile in full (about 4 minutes on 2 cores): pytest -m demo")


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def built_sample(tmp_path_factory):
    """The built-in sample dataset, built once per test process: copy it, never write in it."""
    from sr_course.data.sample import build_sample

    root = tmp_path_factory.mktemp("sample")
    build_sample(root, verbose=False)
    return root


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory, built_sample):
    """The built-in sample dataset, a copy of its own per test module (a module may write its
    caches; its data lists hold relative paths)."""
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(built_sample, root, dirs_exist_ok=True)
    return root


@pytest.fixture
def package_copy():
    """copy(root, {file: text}): a copy of the package under root/sr_course with some of its files'
    texts replaced (a student's broken file, run in a subprocess with PYTHONPATH=root)."""
    package = Path(__file__).resolve().parents[1] / "sr_course"

    def copy(root: Path, files: dict[str, str]) -> Path:
        shutil.copytree(package, root / "sr_course", ignore=shutil.ignore_patterns("__pycache__"))
        for name, text in files.items():
            (root / "sr_course" / name).write_text(text)
        return root

    return copy


@pytest.fixture
def chromium(tmp_path, monkeypatch):
    """start(*flags, prefs=None): a headless Debian Chromium driven by Selenium, offline, with its
    own profile under tmp_path; quit at the end of the test. Skipped without the browser (a failure
    under CI, whose .ci/run installs it)."""
    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver_path):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are missing: .ci/run installs them")
        pytest.skip(
            "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        )
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def start(*flags, prefs=None):
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in (
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}", *flags,
        ):  # fmt: skip
            options.add_argument(flag)
        if prefs:
            options.add_experimental_option("prefs", prefs)
        drivers.append(webdriver.Chrome(service=Service(driver_path), options=options))
        return drivers[-1]

    yield start
    for driver in drivers:
        driver.quit()
