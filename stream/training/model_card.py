"""MODEL_CARD.md for a trained colour model, from the metrics dict ``carcolor train`` writes.

Every domain side by side (traffic-colors, other-cameras, the motorway clip's cars), the
model it replaces and the baselines in every table, seeds as mean and spread.

    write_model_card(Path("models/mine"), results, meta)   # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from ..labels import LABELS
from .domains import gray_recall

PAPER = ('"A Dataset Containing Tiny and Low Quality Images for Vehicle Classification", '
         "Zenodo record 6634554 (https://zenodo.org/records/6634554), CC BY 4.0")
NAMES = {"shipped": "**shipped (this model)**", "cnn": "its CNN alone (no rule)", "previous": "model it replaced",
         "teacher": "teacher EfficientNet-Lite0", "hsv_rule": "HSV rule alone", "histogram_lr": "colour histogram + LR"}


def _pct(x) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}"


def _spread(s: Optional[Dict], key: str, cars: bool = False) -> str:
    if not s or key not in s:
        return "-"
    v = s[key]
    if cars:
        return f"{v['mean']:.1f} ({v['min']:.0f}-{v['max']:.0f})"
    return f"{100 * v['mean']:.1f} ({100 * v['min']:.1f}-{100 * v['max']:.1f})"


def _gray(rep: Dict) -> str:
    """Gray recall on other-cameras, val and test together."""
    return _pct(gray_recall([rep.get("val", {}), rep.get("test", {})]))


def _cell(rep: Dict, split: str, dom: str, key: str = "top1") -> str:
    d = rep.get(split, {}).get(dom)
    if not d:
        return "-"
    if key == "cars":
        return f"{d['cars_right']} / {d['cars']}" if "cars" in d else "-"
    return _pct(d[key])


def write_model_card(out: Path, r: Dict, meta: Dict) -> None:
    """MODEL_CARD.md from the metrics dict written by training."""
    m = r["model"]
    reps = r["reports"]
    ms = r.get("classifier_ms_per_crop", {})
    doms_val = list(reps["shipped"]["val"])
    doms_test = list(reps["shipped"]["test"])
    checks = list(reps["shipped"].get("check", {}))
    w, t, thr = r["rule_weight"], r["temperature"], r["unknown_threshold"]
    L: List[str] = []
    a = L.append
    a(f"# Model card: carcolor colour model `{out.name}`\n")
    a(f"Recognises the body colour of a vehicle crop: {', '.join(LABELS)}. Output: probabilities over these "
      f"ten (labels.txt order); below a top-1 probability of {thr:.2f} the decision is `unknown`.\n")
    a(f"The shipped classifier: a {m['input_size']} px CNN (softmax softened by a temperature of {t:.2f}, "
      f"fitted on several cameras), mixed with the hand-made HSV colour rule: probabilities = "
      f"{1 - w:.2f} x CNN + {w:.2f} x the rule's one-hot vote. `model.json` holds the input size, temperature, "
      "rule weight and threshold; `rule_weight` / `unknown_threshold` in config.yaml override them.\n")
    a("## Every domain (top-1 %, the shipped settings)\n")
    head = ["classifier"] + [f"{d} val" for d in doms_val] + [f"{d} test" for d in doms_test] \
        + [f"{c}: cars right" for c in checks] + ["gray recall, other-cameras val+test", "ms/crop"]
    a("| " + " | ".join(head) + " |")
    a("|---|" + "---:|" * (len(head) - 1))
    for key in ("shipped", "cnn", "previous", "teacher", "histogram_lr", "hsv_rule"):
        if key not in reps:
            continue
        rep = reps[key]
        cells = [_cell(rep, "val", d) for d in doms_val] + [_cell(rep, "test", d) for d in doms_test] \
            + [_cell(rep, "check", c, "cars") for c in checks] + [_gray(rep)]
        cells.append(f"{ms[key]:.3f}" if key in ms else "-")
        a(f"| {NAMES[key]} | " + " | ".join(cells) + " |")
    a("")
    a("Every choice (input size, rule weight, temperature, threshold, the recipe itself) was made on the *val* "
      "columns, traffic-colors val and other-cameras val counting the same; the test columns and the motorway "
      "clip were looked at once, at the end. other-cameras test is 42 crops of 20 cars: +-5 points is noise. "
      "ms/crop: the whole classifier with preprocessing, 100 px crops, this 2-core machine (shared).\n")
    if r.get("seeds") and r["seeds"][next(iter(r["seeds"]))]["n"] > 1 or r.get("real_only_seeds"):
        s, so = r.get("seeds"), r.get("real_only_seeds")
        n = s[next(iter(s))]["n"]
        a(f"## Seeds (mean and min-max over {n} seeds: the same recipe retrained)\n")
        cols = [k for k in s if k.startswith("shipped ")] + [k for k in s if k.startswith("cnn ")]
        a("| recipe | " + " | ".join(c.replace("shipped ", "shipped: ").replace("cnn ", "CNN: ") for c in cols) + " |")
        a("|---|" + "---:|" * len(cols))
        a("| real crops + renders (this recipe) | " + " | ".join(_spread(s, c, "cars" in c) for c in cols) + " |")
        if so:
            a("| real crops only (same student, no renders) | " + " | ".join(_spread(so, c, "cars" in c) for c in cols) + " |")
        a("\nThe shipped model is the first seed's.\n")
    a("## Per-colour recall of the shipped model (%, support in brackets)\n")
    a("| colour | " + " | ".join(f"{d} {sp}" for sp in ("val", "test") for d in reps["shipped"][sp]) + " |")
    a("|---|" + "---:|" * (len(doms_val) + len(doms_test)))
    for c in LABELS:
        cells = []
        for sp in ("val", "test"):
            for d, rep in reps["shipped"][sp].items():
                cells.append(f"{_pct(rep['recall'][c])} ({rep['support'][c]})" if c in rep["recall"] else "-")
        a(f"| {c} | " + " | ".join(cells) + " |")
    a("")
    a("## Data\n")
    a(f"- **Real:** `traffic-colors` (`{r['data']}`): crops from one overhead traffic camera in daylight "
      f"({sum(r['train_counts'])} train crops: " + ", ".join(f"{LABELS[i]} {n}" for i, n in enumerate(r["train_counts"]) if n)
      + f"). Images from {PAPER}; labels and splits added for carcolor. "
      f"{sum(r['synthesised'].values())} more made by label-changing hue rotation of chromatic crops for the rare "
      "colours (" + ", ".join(f"{k} {v}" for k, v in r["synthesised"].items()) + ").")
    a("- **Validation and test from other cameras:** `other-cameras` (real crops from ten other scenes: parking "
      "lots, a forecourt, a street, photos for val; two motorways and two front-on roads for test; split by scene). "
      "Sources: DeGirum PySDKExamples and degirum_tools (MIT), Intel sample-videos (CC BY 4.0), Q-engineering "
      "YoloV5-NPU (BSD-3-Clause), OpenVINO Open Model Zoo (Apache-2.0).")
    rd = r.get("renders") or {}
    if rd:
        args = r["args"]
        n_real_views = (sum(r["train_counts"]) + sum(r["synthesised"].values())) * args["views"]
        n_render_views = rd["n"] * args["render_views"]
        share = n_render_views / max(1, n_real_views + n_render_views)
        a(f"- **Rendered:** {rd['n']} crops from `carcolor synth` (`{rd['folder']}`; Blender Cycles on the CPU; "
          f"real outdoor skies from Poly Haven, CC0; Kenney Car Kit models, CC0, repainted, and procedural bodies), "
          f"{args['render_views']} views each: **{100 * share:.0f}% of the training views** (sample weight "
          f"{args['render_weight']:g} each). By colour: " + ", ".join(f"{k} {v}" for k, v in rd["colour"].items())
          + "; by light: " + ", ".join(f"{k} {v}" for k, v in rd["light"].items())
          + "; by body: " + ", ".join(f"{k} {v}" for k, v in rd["car_kind"].items()) + ".")
        a("\n![renders: a row per colour](renders.png)\n")
    a("## Input size (chosen on the multi-domain val: the fastest within "
      f"{100 * r['args']['tolerance']:.1f} points of the best)\n")
    vk = [k for k in r["sweep"][0] if k.startswith("val_top1/")]
    a("| input px | width | params | MFLOPs | mean val top-1 | " + " | ".join(k.split("/")[1] + " val" for k in vk)
      + " | ms/crop (ORT, b8) |")
    a("|---:|---:|---:|---:|---:|" + "---:|" * len(vk) + "---:|")
    for row in r["sweep"]:
        star = " **(shipped)**" if (row["size"], row["width"]) == (m["input_size"], m["width"]) else ""
        a(f"| {row['size']}{star} | {row['width']} | {row['params']:,} | {row['flops'] / 1e6:.1f} | "
          f"{_pct(row['val_mean_top1'])} | " + " | ".join(_pct(row[k]) for k in vk) + f" | {row['ms_per_crop']:.3f} |")
    a("")
    a("## Confidence that means the same on any camera\n")
    rule = (f"the smallest threshold at which the accepted val crops are >= "
            f"{100 * r['args']['accept_accuracy']:.0f}% right, averaged over the val domains"
            if r["args"].get("accept_accuracy") else
            "where the calibrated answer is more likely wrong than right, the same rule on every camera "
            "(an accuracy target on val gave 0.94 and kept 2% of the motorway crops: on other cameras "
            "the errors are confident)")
    a(f"One temperature, T = {t:.2f}, minimises the log-loss of the CNN on the val domains (each counting the "
      f"same; T < 1 sharpens: training's label smoothing and class weights leave it under-confident); "
      f"`unknown` below {thr:.2f}: {rule}.\n")
    a("| domain | ECE before | ECE after | mean confidence | accuracy | kept (not unknown) | accuracy of kept |")
    a("|---|---:|---:|---:|---:|---:|---:|")
    for k, v in r["reliability"].items():
        a(f"| {k} | {_pct(v['before']['ece'])} | {_pct(v['after']['ece'])} | {_pct(v['after']['mean_confidence'])} | "
          f"{_pct(v['after']['accuracy'])} | {_pct(v['accepted'])} | {_pct(v['accepted_accuracy'])} |")
    a("\n![reliability per domain](reliability.png)\n")
    a("## Colour-rule weight (mean val top-1 over the val domains)\n")
    a("| rule weight | " + " | ".join(f"{x:.2f}" for x, _ in r["rule_weight_val"]) + " |")
    a("|---|" + "---:|" * len(r["rule_weight_val"]))
    a("| mean val top-1 | " + " | ".join(_pct(acc) for _, acc in r["rule_weight_val"]) + " |")
    a(f"\nRule: the largest weight within {100 * r['args']['tolerance']:.1f} points of the best (the rule learns "
      "nothing from any camera, so among equally good mixtures the one leaning on it most should travel best).\n")
    if r.get("error_sheets"):
        a("## The remaining errors (shipped model; label > prediction, top-1 probability)\n")
        for k, v in r["error_sheets"].items():
            a(f"{k}: {v['errors']} errors\n\n![{k} errors]({v['file']})\n")
    a("## Model\n")
    a(f"- Architecture: {meta['architecture']}; {m['params']:,} parameters, {m['flops'] / 1e6:.1f} MFLOPs per crop.")
    a(f"- Input: {m['input_size']}x{m['input_size']} RGB float32 NHWC in [-1, 1] (`stream.preprocess`: centre "
      "square crop, resize, `x / 127.5 - 1`).")
    a(f"- Speed: {m['ms_per_crop_onnx_b8']:.3f} ms/crop for the CNN (onnxruntime, CPU, batch 8).")
    a(f"- Rebuild (training wall time here {r['wall_s'] / 60:.0f} min; `make model` also makes the renders):\n\n"
      f"  ```\n  {r['command']}\n  ```\n")
    a("## Limits\n")
    a("- Daylight and dusk only in the real data; night and IR pictures carry no colour a camera can see.")
    a("- Silver in sun vs white and navy at dusk vs black are where it fails, and where labellers disagree too.")
    a("- other-cameras has no green, yellow, brown or purple: their recall rests on renders and hue synthesis.")
    a("- Renders are crude cars (low-poly models and procedural shells): they teach paint under light, not shape.\n")
    a("## Credits\n")
    a(f"traffic-colors: {PAPER}. other-cameras: the sources above. Renders: Poly Haven HDRIs (CC0), Kenney Car Kit "
      "(CC0), rendered with Blender (GPL; a training-time tool, nothing of it ships).\n")
    (out / "MODEL_CARD.md").write_text("\n".join(L), encoding="utf-8")
