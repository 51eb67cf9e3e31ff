"""A blind rating study of super-resolved images, as in the paper's mean-opinion-score (MOS) test
(Ledig et al. 2017, Sec. 3.4: raters score each image 1 (bad) to 5 (excellent), not knowing which
method made it), and its scoring.

    make_study(models, split, config, out)   the study in `out`:
        page/           what raters get, opened from disk or put on any static host as it is:
          index.html    one image at a time, in a random order per rater, no method names; keys
                        1-5 score, arrows move, a progress count, and a button that saves the
                        rater's scores as a JSON file (nothing is sent anywhere)
          images/*.png  the images, under names that do not tell the method
        key.json        which image is which method: the instructor's, beside the page and never
                        inside it (a rater who could open it would know every answer)
    score_study(key, ratings, out)          checks the rating files (same study, one file per rater,
        complete) and writes the MOS per method with 95% confidence intervals, the spread of the
        raters' own means, and a figure of the score distribution per method (like the paper's Fig. 5)

The HR image is one of the methods, as the paper's hidden anchor: raters who score it low are not
reading the scale as intended.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..data.datasets import SRDataset
from ..data.lists import as_rgb, write_png
from ..errors import MissingFile, UserError, WouldOverwrite
from ..utils import atomic_write
from .visualize import STYLE, _method_images, _resolve, save_figure

KEY = "key.json"
PAGE = "page"  # the folder to publish; the key stays one level up
SCORES = (1, 2, 3, 4, 5)


class RatingError(UserError, ValueError):
    """A rating file that does not belong to the study, repeats a rater, or is incomplete."""


def make_study(
    models: dict,
    split: str,
    config,
    out: str | os.PathLike,
    images: list[int] | None = None,
    title: str | None = None,
    tile: int | None = None,
) -> Path:
    """Write the study for bicubic, the models ({name: checkpoint or model}) and the HR anchor on
    the images of `split`: the page in out/page/, the key in out/key.json; returns the path of
    index.html."""

    out = Path(out)
    site = out / PAGE
    if (out / KEY).exists() or (site / "index.html").exists():
        raise WouldOverwrite(
            f"{out} already holds a study (its key.json would be replaced and the ratings made "
            "for it could no longer be scored): choose another folder"
        )
    methods = _resolve({"bicubic": "bicubic", **models, "HR": "hr"})
    ds = SRDataset(split, config)
    chosen = list(range(len(ds))) if images is None else list(images)
    study = secrets.token_hex(8)
    (site / "images").mkdir(parents=True, exist_ok=True)
    items, key = [], {}
    for i in chosen:
        panels, _ = _method_images(ds, i, methods, int(config.scale), tile)
        for method, img in panels.items():
            item = hashlib.sha256(f"{study}/{i}/{method}".encode()).hexdigest()[:12]
            write_png(as_rgb(img), site / "images" / f"{item}.png")
            items.append(item)
            key[item] = {"method": method, "image": ds.name(i)}
    items.sort()  # the page shuffles per rater; stored sorted so that the file tells nothing
    with atomic_write(out / KEY, "w") as f:
        json.dump({"study": study, "split": split, "items": key}, f, indent=1)
    page = _PAGE.replace("__STUDY__", json.dumps({"study": study, "items": items})).replace(
        "__TITLE__", title or f"Rate the images ({split})"
    )
    with atomic_write(site / "index.html", "w") as f:
        f.write(page)
    return site / "index.html"


def load_ratings(key: dict, paths: list) -> list[dict]:
    """The rating files, checked against the study's key: same study, one file per rater, every
    image scored once with 1-5. Raises RatingError naming the file and what is wrong."""
    ratings, raters = [], {}
    items = set(key["items"])
    for path in paths:
        try:
            r = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise RatingError(f"{path} is not a rating file ({err})") from None
        if r.get("study") != key["study"]:
            raise RatingError(
                f"{path} belongs to study {r.get('study')!r}, not to this one ({key['study']}): "
                "score each study with its own key.json"
            )
        rater = str(r.get("rater", "")).strip()
        if not rater:
            raise RatingError(f"{path} has no rater name")
        if rater in raters:
            raise RatingError(f"{path} and {raters[rater]} are both from rater {rater!r}: keep one")
        scores = r.get("scores", {})
        missing, extra = items - set(scores), set(scores) - items
        bad = [k for k, v in scores.items() if v not in SCORES]
        if missing or extra or bad:
            what = []
            if missing:
                what.append(f"{len(missing)} of {len(items)} images not scored")
            if extra:
                what.append(f"{len(extra)} images not in the study")
            if bad:
                what.append(f"{len(bad)} scores outside 1-5")
            raise RatingError(f"{path} (rater {rater!r}) is incomplete: {', '.join(what)}")
        raters[rater] = path
        ratings.append({"rater": rater, "scores": scores})
    if not ratings:
        raise RatingError("no rating files given")
    return ratings


def mos_table(key: dict, ratings: list[dict]) -> dict:
    """{method: {mos, ci95, n, counts: [n of 1 .. n of 5], rater_means: [...]}} in the order the
    methods first appear in the key."""
    from scipy import stats  # scipy loads slowly; only scoring a study needs it

    methods = list(dict.fromkeys(v["method"] for v in key["items"].values()))
    table = {}
    for m in methods:
        mine = [k for k, v in key["items"].items() if v["method"] == m]
        scores = np.array([r["scores"][k] for r in ratings for k in mine], dtype=float)
        n = len(scores)
        sem = scores.std(ddof=1) / np.sqrt(n) if n > 1 else 0.0
        half = float(stats.t.ppf(0.975, n - 1) * sem) if n > 1 else 0.0
        table[m] = {
            "mos": float(scores.mean()),
            "ci95": half,
            "n": n,
            "counts": [int((scores == s).sum()) for s in SCORES],
            "rater_means": [float(np.mean([r["scores"][k] for k in mine])) for r in ratings],
        }
    return table


def score_study(
    key_path: str | os.PathLike, rating_paths: list, out: str | os.PathLike | None = None
) -> dict:
    """Check the rating files, print and save the MOS table (mos.md, mos.json) and the score
    distribution figure (mos_distribution.png / .pdf) in `out` (default: beside key.json)."""
    key_path = Path(key_path)
    if not key_path.is_file():
        raise MissingFile(
            f"no study's answer key at {key_path}: give --out the folder `rate` wrote (the one "
            f"holding key.json and {PAGE}/), not its {PAGE}/ folder"
        )
    key = json.loads(key_path.read_text())
    ratings = load_ratings(key, rating_paths)
    table = mos_table(key, ratings)
    out = Path(out) if out is not None else Path(key_path).parent
    lines = [
        f"MOS of {len(ratings)} rater{'s' * (len(ratings) != 1)} on {key['split']} "
        f"({len(key['items'])} images, scores 1-5)",
        "",
        "| method | MOS | 95% CI | ratings | raters' own means (min-max) |",
        "|---|---|---|---|---|",
    ]
    for m, t in table.items():
        lines.append(
            f"| {m} | {t['mos']:.2f} | ±{t['ci95']:.2f} | {t['n']} | "
            f"{min(t['rater_means']):.2f}-{max(t['rater_means']):.2f} |"
        )
    text = "\n".join(lines)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "mos.md", "w") as f:
        f.write(text + "\n")
    with atomic_write(out / "mos.json", "w") as f:
        json.dump({"split": key["split"], "raters": len(ratings), "methods": table}, f, indent=1)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(table), 2.6), layout="constrained")
        bottom = np.zeros(len(table))
        colors = plt.cm.RdYlGn(np.linspace(0.1, 0.9, len(SCORES)))
        for s, color in zip(SCORES, colors):
            share = np.array([t["counts"][s - 1] / t["n"] for t in table.values()])
            ax.bar(list(table), share, bottom=bottom, color=color, label=str(s), width=0.6)
            bottom += share
        for x, t in enumerate(table.values()):
            ax.text(x, 1.02, f"{t['mos']:.2f}", ha="center", va="bottom")
        ax.set_ylim(0, 1.12)
        ax.set_ylabel("share of ratings")
        ax.set_title("score distribution per method (MOS on top)")
        ax.legend(title="score", frameon=False, bbox_to_anchor=(1.0, 0.5), loc="center left")
        save_figure(fig, out / "mos_distribution")
        plt.close(fig)
    print(f"saved {out / 'mos.md'}, {out / 'mos.json'}, {out / 'mos_distribution.png'} and .pdf")
    return table


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #202124; color: #e8eaed; }
  header, footer { padding: 10px 16px; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
  main { display: flex; justify-content: center; align-items: center; min-height: 60vh; }
  #view { max-width: 96vw; max-height: 72vh; image-rendering: auto; }
  button { font-size: 16px; padding: 6px 14px; border-radius: 6px; border: 1px solid #5f6368;
           background: #303134; color: #e8eaed; cursor: pointer; }
  button.chosen { background: #8ab4f8; color: #202124; }
  #progress { font-variant-numeric: tabular-nums; }
  .hint { color: #9aa0a6; font-size: 14px; }
  #start { padding: 40px; max-width: 720px; margin: auto; line-height: 1.5; }
</style>
</head>
<body>
<div id="start">
  <h1>__TITLE__</h1>
  <p>You will see images one at a time, in a random order. Score each from 1 (bad quality) to
  5 (excellent quality). Judge the image as a photograph: sharpness, natural texture, artefacts.
  Keys: <b>1</b>-<b>5</b> score and go on, <b>&larr;</b> / <b>&rarr;</b> move. At the end, save your
  scores and send the file to whoever runs the study. Nothing is sent from this page.</p>
  <p><label>Your name or initials: <input id="rater" autocomplete="off"></label>
  <button id="begin">Start</button></p>
</div>
<div id="study" hidden>
  <header>
    <span id="progress"></span>
    <span class="hint">1 bad &middot; 2 poor &middot; 3 fair &middot; 4 good &middot; 5 excellent</span>
  </header>
  <main><img id="view" alt="image to rate"></main>
  <footer>
    <button id="prev">&larr; back</button>
    <span id="buttons"></span>
    <button id="next">next &rarr;</button>
    <button id="save">Save my scores</button>
    <span id="status" class="hint"></span>
  </footer>
</div>
<script>
"use strict";
const STUDY = __STUDY__;
const scores = {};
let order = [], pos = 0, rater = "";

function shuffled(items) {  // Fisher-Yates with the browser's random numbers: a new order per rater
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const r = new Uint32Array(1); crypto.getRandomValues(r);
    const j = r[0] % (i + 1); [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
function show() {
  const item = order[pos];
  const view = document.getElementById("view");
  view.src = "images/" + item + ".png";
  view.dataset.item = item;
  const done = Object.keys(scores).length;
  document.getElementById("progress").textContent =
    "image " + (pos + 1) + " of " + order.length + " \\u00b7 " + done + " scored";
  for (const b of document.querySelectorAll("#buttons button"))
    b.classList.toggle("chosen", scores[item] === Number(b.dataset.score));
  document.getElementById("status").textContent =
    done === order.length ? "all scored: save your scores" : "";
}
function rate(score) {
  scores[order[pos]] = score;
  if (pos < order.length - 1) pos++;
  show();
}
function move(step) { pos = Math.min(order.length - 1, Math.max(0, pos + step)); show(); }
function save() {
  const done = Object.keys(scores).length;
  if (done < order.length &&
      !confirm((order.length - done) + " images are not scored yet. Save anyway?")) return;
  const data = {study: STUDY.study, rater: rater, order: order, scores: scores,
                saved: new Date().toISOString()};
  const blob = new Blob([JSON.stringify(data, null, 1)], {type: "application/json"});
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "ratings-" + rater.replace(/[^A-Za-z0-9_-]+/g, "_") + ".json";
  document.body.appendChild(a); a.click(); a.remove();
  document.getElementById("status").textContent = "saved " + a.download;
}
function begin() {
  rater = document.getElementById("rater").value.trim();
  if (!rater) { document.getElementById("rater").focus(); return; }
  order = shuffled(STUDY.items);
  document.getElementById("start").hidden = true;
  document.getElementById("study").hidden = false;
  show();
}
for (let s = 1; s <= 5; s++) {
  const b = document.createElement("button");
  b.textContent = s; b.dataset.score = s; b.addEventListener("click", () => rate(s));
  document.getElementById("buttons").appendChild(b);
}
document.getElementById("begin").addEventListener("click", begin);
document.getElementById("rater").addEventListener("keydown", e => { if (e.key === "Enter") begin(); });
document.getElementById("prev").addEventListener("click", () => move(-1));
document.getElementById("next").addEventListener("click", () => move(1));
document.getElementById("save").addEventListener("click", save);
document.addEventListener("keydown", e => {
  if (document.getElementById("study").hidden) return;
  if (e.key >= "1" && e.key <= "5") rate(Number(e.key));
  else if (e.key === "ArrowLeft") move(-1);
  else if (e.key === "ArrowRight") move(1);
});
</script>
</body>
</html>
"""
