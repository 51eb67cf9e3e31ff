"""The blind rating page (driven in headless Chromium), MOS scoring, and LPIPS."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sr_course.cli import main
from sr_course.config import load_config
from sr_course.evaluation.rating import (
    KEY,
    RatingError,
    load_ratings,
    make_study,
    mos_table,
    score_study,
)
from sr_course.models import SRResNet


@pytest.fixture(scope="module")
def study(sample_root, tmp_path_factory):
    """A study on two Sample images: bicubic, a small SRResNet, HR."""
    cfg = load_config("smoke", data_root=str(sample_root))
    torch.manual_seed(0)
    model = SRResNet(n_channels=8, n_blocks=1).eval()
    out = tmp_path_factory.mktemp("study")
    page = make_study({"srresnet": model}, "Sample", cfg, out, images=[0, 1])
    return page, json.loads((page.parent.parent / KEY).read_text())


def test_study_folder_is_self_contained_and_blind(study):
    page, key = study
    html = page.read_text()
    assert len(key["items"]) == 2 * 3
    assert {v["method"] for v in key["items"].values()} == {"bicubic", "srresnet", "HR"}
    for item, what in key["items"].items():
        assert (page.parent / "images" / f"{item}.png").is_file()
        assert item in html
        assert what["method"] not in item
    assert "key.json" not in html and "srresnet" not in html and "bicubic" not in html
    # The page's folder is what raters get: the key is beside it, not in it (the fault: key.json
    # sat in the folder the README said could go on any static host).
    assert page.parent.name == "page"
    assert sorted(p.name for p in page.parent.iterdir()) == ["images", "index.html"]
    assert (page.parent.parent / KEY).is_file()
    assert "http://" not in html and "https://" not in html  # nothing is loaded or sent anywhere
    with pytest.raises(FileExistsError, match="already holds a study"):
        make_study({}, "Sample", None, page.parent.parent)


def _ratings(key, path, rater, by_method):
    scores = {item: by_method[v["method"]] for item, v in key["items"].items()}
    path.write_text(json.dumps({"study": key["study"], "rater": rater, "scores": scores}))
    return path


def test_mos_with_confidence_intervals_and_rater_spread(study, tmp_path, capsys):
    page, key = study
    files = [
        _ratings(key, tmp_path / "a.json", "ann", {"bicubic": 2, "srresnet": 3, "HR": 5}),
        _ratings(key, tmp_path / "b.json", "bob", {"bicubic": 1, "srresnet": 4, "HR": 5}),
    ]
    table = mos_table(key, load_ratings(key, files))
    assert table["bicubic"]["mos"] == 1.5 and table["srresnet"]["mos"] == 3.5
    assert table["HR"] == {
        "mos": 5.0, "ci95": 0.0, "n": 4, "counts": [0, 0, 0, 0, 4], "rater_means": [5.0, 5.0],
    }  # fmt: skip
    # 4 ratings 2, 2, 1, 1: sd 0.57735, t(0.975, 3) = 3.18245 -> +-0.9187
    assert table["bicubic"]["ci95"] == pytest.approx(3.182446 * 0.577350 / 2, abs=1e-4)
    assert table["bicubic"]["counts"] == [2, 2, 0, 0, 0]
    assert table["srresnet"]["rater_means"] == [3.0, 4.0]
    score_study(page.parent.parent / KEY, files, tmp_path / "scored")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "MOS of 2 raters on Sample (6 images, scores 1-5)"
    assert "| bicubic | 1.50 | ±0.92 | 4 | 1.00-2.00 |" in out
    assert "| HR | 5.00 | ±0.00 | 4 | 5.00-5.00 |" in out
    for name in ("mos.md", "mos.json", "mos_distribution.png", "mos_distribution.pdf"):
        assert (tmp_path / "scored" / name).is_file()


def test_bad_rating_files_are_refused_with_the_reason(study, tmp_path, capsys):
    page, key = study
    good = _ratings(key, tmp_path / "a.json", "ann", {"bicubic": 2, "srresnet": 3, "HR": 5})
    twice = _ratings(key, tmp_path / "b.json", "ann", {"bicubic": 2, "srresnet": 3, "HR": 5})
    with pytest.raises(RatingError, match=f"{twice} and {good} are both from rater 'ann'"):
        load_ratings(key, [good, twice])
    other = tmp_path / "c.json"
    other.write_text(json.dumps({"study": "0000", "rater": "cy", "scores": {}}))
    with pytest.raises(RatingError, match="belongs to study '0000', not to this one"):
        load_ratings(key, [other])
    partial = json.loads(good.read_text())
    partial["scores"].pop(next(iter(partial["scores"])))
    partial["rater"] = "dee"
    (tmp_path / "d.json").write_text(json.dumps(partial))
    with pytest.raises(
        RatingError, match=r"\(rater 'dee'\) is incomplete: 1 of 6 images not scored"
    ):
        load_ratings(key, [tmp_path / "d.json"])
    assert (
        main(["rate", "--score", str(tmp_path / "d.json"), "--out", str(page.parent.parent)]) == 1
    )
    # The page's own folder holds no key: one sentence saying which folder to give.
    assert main(["rate", "--score", str(tmp_path / "d.json"), "--out", str(page.parent)]) == 1
    assert "give --out the folder `rate` wrote" in capsys.readouterr().err


@pytest.mark.timeout(180)
def test_rating_page_in_headless_chromium(study, tmp_path, chromium):
    """Open the page from disk in a real browser with no network, rate every image with the
    keyboard (each method its own score, read from the image shown), save, and score the file."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    page, key = study
    wanted = {"bicubic": 2, "srresnet": 3, "HR": 5}
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chromium(
        prefs={"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.get(page.as_uri())
    driver.find_element(By.ID, "rater").send_keys("ann", Keys.ENTER)
    body = driver.find_element(By.TAG_NAME, "body")
    # Under load the page renders late: wait (bounded) for each condition, never read it once.
    wait = WebDriverWait(driver, 30)
    shown = []
    for n in range(len(key["items"])):
        wait.until(
            lambda d, n=n: d.find_element(By.ID, "progress").text.startswith(
                f"image {n + 1} of {len(key['items'])}"
            )
        )
        item = driver.find_element(By.ID, "view").get_attribute("data-item")
        wait.until(
            lambda d: d.execute_script(
                "const v = document.getElementById('view');return v.complete && v.naturalWidth > 0"
            )
        )  # the PNG loaded from disk
        shown.append(item)
        body.send_keys(str(wanted[key["items"][item]["method"]]))
    assert sorted(shown) == sorted(key["items"])
    wait.until(lambda d: d.find_element(By.ID, "status").text == "all scored: save your scores")
    driver.find_element(By.ID, "save").click()
    target = downloads / "ratings-ann.json"
    wait.until(lambda d: target.exists() and target.stat().st_size > 0)
    saved = json.loads(target.read_text())
    assert saved["rater"] == "ann" and saved["order"] == shown
    table = mos_table(key, load_ratings(key, [target]))
    assert {m: t["mos"] for m, t in table.items()} == {"bicubic": 2.0, "srresnet": 3.0, "HR": 5.0}


# --- LPIPS ---------------------------------------------------------------------------------------


def test_lpips_is_the_packages_value_on_the_cropped_rgb_pair():
    import lpips

    from sr_course.evaluation.metrics import lpips_distance, lpips_model

    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-40, 41, hr.shape), 0, 255).astype(np.uint8)
    torch.manual_seed(0)
    ours = lpips_model(weights=None)
    assert lpips_distance(ours, hr, hr) == 0.0
    got = lpips_distance(ours, sr, hr)
    torch.manual_seed(0)
    theirs = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False).eval()

    def tensor(img):  # what lpips expects: (N, 3, H, W) in [-1, 1]
        return torch.from_numpy(img[4:-4, 4:-4]).permute(2, 0, 1)[None].float() / 127.5 - 1

    assert got == pytest.approx(theirs(tensor(sr), tensor(hr)).item(), abs=1e-6)
    assert got > 0
    gray = hr.mean(axis=2).astype(np.uint8)  # a gray HR is compared as RGB
    assert lpips_distance(ours, np.repeat(gray[:, :, None], 3, axis=2), gray) == 0.0


def test_lpips_loads_alexnet_weights_from_a_file_and_says_what_to_do_offline(tmp_path, monkeypatch):
    import torchvision

    from sr_course.evaluation.metrics import ALEXNET_URL, lpips_model

    torch.manual_seed(1)
    alexnet = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(alexnet.state_dict(), path)
    model = lpips_model(weights=path)
    assert torch.equal(model.net.slice1[0].weight, alexnet.features[0].weight)
    assert torch.equal(model.net.state_dict()["slice5.10.weight"], alexnet.features[10].weight)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError) as err:
        lpips_model("imagenet")
    assert ALEXNET_URL in str(err.value) and "lpips.weights=" in str(err.value)
    assert "(OSError)" in str(err.value)  # our stand-in, not a real attempt to reach the network
    assert str(Path(torch.hub.get_dir()) / "checkpoints" / "alexnet-owt-7be5be79.pth") in str(
        err.value
    )


def test_evaluate_reports_lpips_beside_psnr_ssim(sample_root, tmp_path):
    from sr_course.evaluation.evaluate import evaluate

    cfg = load_config("smoke", data_root=str(sample_root))
    torch.manual_seed(0)
    result = evaluate({}, ["Sample"], cfg, out_dir=tmp_path, verbose=False)
    row = result["table"]["bicubic"]["Sample"]
    assert set(row) == {"psnr", "ssim", "lpips"} and 0 < row["lpips"] < 1
    md = (tmp_path / "results.md").read_text()
    assert md.startswith("| method | Sample PSNR / SSIM / LPIPS |")
    assert "LPIPS here uses a random AlexNet" in md
    assert (tmp_path / "results.csv").read_text().splitlines()[
        0
    ] == "split,method,image,psnr,ssim,lpips"
    off = load_config("smoke", data_root=str(sample_root), lpips={"enabled": False})
    assert "lpips" not in evaluate({}, ["Sample"], off, verbose=False)["table"]["bicubic"]["Sample"]
    assert Path(tmp_path / "results.json").is_file()


def test_report_includes_the_scored_study(study, sample_root, tmp_path):
    from sr_course.evaluation.report import write_report

    page, key = study
    runs = tmp_path / "runs"
    files = [_ratings(key, tmp_path / "a.json", "ann", {"bicubic": 2, "srresnet": 3, "HR": 5})]
    score_study(page.parent.parent / KEY, files, runs / "rating")
    cfg = load_config("smoke", data_root=str(sample_root), runs_dir=str(runs))
    text = write_report(cfg, verbose=False).read_text()
    assert "### Mean opinion score (1-5)\n\nMOS of 1 rater on Sample" in text
    assert "No rating study scored yet" not in text
    assert "| HR | 5.00 | ±0.00 | 2 | 5.00-5.00 |" in text
    assert (runs / "report" / "mos_distribution.png").is_file()
