"""Engine benchmark: the seed's naive tile loop against the engine, on a real film and a mini-MIAS PNG.

    python bench/engine.py [--repeats 5] [--naive-repeats 3] [--models-dir models] [--json F] [--profile]

One run measures, per image and with the same weights and canonical image for both paths:
- the engine end to end (`Engine.analyze_bytes`), median over --repeats after a warm-up, with its stages
  (decode, preprocess, segment, classify, draw) as the engine reports them;
- the seed's naive loop (`ml.sliding_window.naive_predict`: one `predict` call per non-overlapping tile,
  no skipping) on the canonical image, and the naive/engine ratio of segmentation time;
- arithmetic: network FLOPs per tile (TensorFlow's graph profiler) x tiles run / segment time, against a
  large 3x3 convolution measured in the same process (what this device can do at best);
- memory: peak resident set (ru_maxrss) after the engine runs, and Python/numpy peak (tracemalloc)
  during one engine analysis.
Not part of the pass/fail suite: it prints figures and the goals they are compared with.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from breastapp.ml.sliding_window import naive_predict, tile_origins  # noqa: E402

SHARED_DATA = Path(os.environ.get("BREASTAPP_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
MG_NAMES = ("mg_seg_unet", "mg_cls")  # what a mammogram analysis loads by default
STAGES = ("decode", "preprocess", "segment", "classify", "draw")
GOALS = {
    "speedup_naive_over_engine": 3.0,  # at least
    "end_to_end_png_1024_s": 1.0,  # at most
    "end_to_end_mg1_j2k_s": 2.0,  # at most, JPEG 2000 decoding included
    "peak_rss_mb": 1536.0,  # at most
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed engine runs per image (median)")
    parser.add_argument("--naive-repeats", type=int, default=3, help="timed naive runs per image")
    parser.add_argument("--models-dir", type=Path, default=REPO_ROOT / "models")
    parser.add_argument("--dicom", type=Path, default=SHARED_DATA / "dicom" / "MG1_J2KI.dcm")
    parser.add_argument("--png", type=Path, default=SHARED_DATA / "mini-mias" / "images" / "mdb001.png")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--profile", action="store_true", help="cProfile one engine run per image")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------- setup


def weights_dir(models_dir: Path) -> tuple[Path, str]:
    """The trained weights when all mammography names are there, else freshly initialised ones in tmp."""
    if all((models_dir / f"{name}.keras").is_file() for name in MG_NAMES):
        return models_dir, f"trained weights from {models_dir}"
    from breastapp.ml.registry import write_initialised_weights

    folder = Path(tempfile.mkdtemp(prefix="bench-weights-"))
    write_initialised_weights(folder)
    return folder, f"INITIALISED (untrained) weights written to {folder}: {models_dir} lacks {MG_NAMES}"


def network_flops(model, tile: int) -> float:
    """Floating-point operations of one tile through the network (TensorFlow's graph profiler)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    @tf.function(autograph=False)
    def forward(batch):
        return model(batch, training=False)

    concrete = forward.get_concrete_function(tf.TensorSpec([1, tile, tile, 1], tf.float32))
    frozen = convert_variables_to_constants_v2(concrete)
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return float(tf.compat.v1.profiler.profile(graph=frozen.graph, options=options).total_float_ops)


def reference_conv_gflops(repeats: int = 5) -> float:
    """GFLOP/s of a large 3x3 convolution (1x512x512x64 -> 64): the device's practical ceiling."""
    import tensorflow as tf

    x = tf.random.normal([1, 512, 512, 64])
    kernel = tf.random.normal([3, 3, 64, 64])
    conv = tf.function(lambda a: tf.nn.conv2d(a, kernel, strides=1, padding="SAME"), autograph=False)
    conv(x).numpy()  # trace and warm up
    flops = 2.0 * 512 * 512 * 64 * 64 * 9
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        conv(x).numpy()  # .numpy() waits for the device
        times.append(time.perf_counter() - start)
    return flops / statistics.median(times) / 1e9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


# ------------------------------------------------------------------------------------------- measure


def time_engine(engine, data: bytes, repeats: int) -> dict:
    """Median wall time and per-stage medians of `repeats` analyses after one warm-up."""
    output = engine.analyze_bytes(data)  # warm-up: loads weights, traces graphs
    walls, stages = [], {stage: [] for stage in STAGES}
    for _ in range(repeats):
        start = time.perf_counter()
        output = engine.analyze_bytes(data)
        walls.append(time.perf_counter() - start)
        for stage in STAGES:
            stages[stage].append(output.result.timings_s.get(stage, float("nan")))
    return {
        "wall_s": statistics.median(walls),
        "wall_runs_s": walls,
        "stages_s": {stage: statistics.median(values) for stage, values in stages.items()},
        "lesions": len(output.result.lesions),
        "verdict": output.result.verdict,
        "png_bytes": len(output.overlay_png) + len(output.heatmap_png) + len(output.mask_png),
    }


def canonical_input(data: bytes, card: dict):
    """The canonical image both paths segment (decode + preprocess exactly as the engine does)."""
    from breastapp.imaging.decode import decode
    from breastapp.imaging.preprocess import PreprocessSettings, canonicalize_mammogram

    frame = decode(data)
    settings = PreprocessSettings(
        target_spacing_mm=card["input"].get("spacing_mm", 0.2),
        contrast=card["input"].get("contrast", "hist_eq"),
    )
    return frame, canonicalize_mammogram(frame, settings)


def time_naive(model, pixels, tile: int, repeats: int) -> dict:
    """The seed's loop over the whole canonical image; one untimed run first (predict's own tracing)."""
    naive_predict(model, pixels[:tile, :tile], tile)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        naive_predict(model, pixels, tile)
        times.append(time.perf_counter() - start)
    tiles = math.ceil(pixels.shape[0] / tile) * math.ceil(pixels.shape[1] / tile)
    return {"segment_s": statistics.median(times), "runs_s": times, "tiles": tiles}


def traced_peak_mb(engine, data: bytes) -> float:
    """Peak of Python/numpy allocations during one analysis (TensorFlow's own buffers are not traced)."""
    tracemalloc.start()
    engine.analyze_bytes(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def profile_text(engine, data: bytes, lines: int = 18) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    engine.analyze_bytes(data)
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(lines)
    return stream.getvalue()


def bench_image(label: str, path: Path, engine, settings, seg, args) -> dict:
    """Every figure for one image: engine, naive, tiles, FLOP rates, memory."""
    data = path.read_bytes()
    figures = {"image": label, "file": path.name, "engine": time_engine(engine, data, args.repeats)}
    figures["peak_rss_after_engine_mb"] = peak_rss_mb()
    figures["traced_peak_mb"] = traced_peak_mb(engine, data)
    frame, canon = canonical_input(data, seg.card)
    tiles = settings.tiles(seg.card)
    engine_tiles = len(tile_origins(canon.shape, tiles, canon.breast_box, canon.breast_mask))
    figures.update(
        original_shape=list(frame.shape), canonical_shape=list(canon.shape), engine_tiles=engine_tiles
    )
    figures["naive"] = time_naive(seg.model, canon.pixels, tiles.tile, args.naive_repeats)
    segment_s = figures["engine"]["stages_s"]["segment"]
    figures["speedup_segment"] = figures["naive"]["segment_s"] / segment_s
    flops = args.flops_per_tile
    figures["engine_gflops_s"] = flops * engine_tiles / segment_s / 1e9
    figures["naive_gflops_s"] = flops * figures["naive"]["tiles"] / figures["naive"]["segment_s"] / 1e9
    if args.profile:
        figures["profile"] = profile_text(engine, data)
    return figures


# --------------------------------------------------------------------------------------------- report


def print_report(report: dict) -> None:
    print(f"\nbreastapp engine bench — TensorFlow on {report['device']}, {report['threads']} thread(s)")
    print(f"weights: {report['weights']}")
    print(f"segmentation network: {report['flops_per_tile'] / 1e9:.2f} GFLOP per {report['tile']}px tile")
    print(f"reference 3x3 conv 1x512x512x64->64: {report['reference_gflops_s']:.1f} GFLOP/s\n")
    header = f"{'image':<18}{'shape':>12}{'canon':>11}" + "".join(f"{s:>11}" for s in STAGES)
    print(header + f"{'total':>9}{'naive seg':>11}{'ratio':>7}{'tiles e/n':>11}{'GF/s e/n':>13}")
    for fig in report["images"]:
        stages = fig["engine"]["stages_s"]
        print(
            f"{fig['image']:<18}{'x'.join(map(str, fig['original_shape'])):>12}"
            f"{'x'.join(map(str, fig['canonical_shape'])):>11}"
            + "".join(f"{stages[s]:>11.3f}" for s in STAGES)
            + f"{fig['engine']['wall_s']:>9.3f}{fig['naive']['segment_s']:>11.3f}"
            f"{fig['speedup_segment']:>7.2f}"
            f"{str(fig['engine_tiles']) + '/' + str(fig['naive']['tiles']):>11}"
            f"{fig['engine_gflops_s']:>6.1f}/{fig['naive_gflops_s']:<6.1f}"
        )
    print("\n(seconds; stages are the engine's own timings, medians; ratio = naive/engine segmentation time)")
    for fig in report["images"]:
        print(
            f"{fig['image']}: peak RSS after engine {fig['peak_rss_after_engine_mb']:.0f} MB, "
            f"numpy/Python peak in one analysis {fig['traced_peak_mb']:.0f} MB, "
            f"verdict {fig['engine']['verdict']} with {fig['engine']['lesions']} lesion(s)"
        )
    print_goals(report)
    for fig in report["images"]:
        if "profile" in fig:
            print(f"\n--- cProfile, one engine analysis of {fig['image']} ---\n{fig['profile']}")


def goal_checks(report: dict) -> list[tuple[str, float, str, float, bool]]:
    by_label = {fig["image"]: fig for fig in report["images"]}
    checks = [
        ("naive/engine segmentation, MG1", by_label["MG1_J2KI"]["speedup_segment"], ">=", 3.0),
        ("naive/engine segmentation, mini-MIAS", by_label["mini-MIAS"]["speedup_segment"], ">=", 3.0),
        ("end-to-end 1024 PNG (s)", by_label["mini-MIAS"]["engine"]["wall_s"], "<=", 1.0),
        ("end-to-end MG1 J2K (s)", by_label["MG1_J2KI"]["engine"]["wall_s"], "<=", 2.0),
        ("peak RSS (MB)", report["peak_rss_mb"], "<=", GOALS["peak_rss_mb"]),
    ]
    return [
        (name, value, op, goal, value >= goal if op == ">=" else value <= goal)
        for name, value, op, goal in checks
    ]


def print_goals(report: dict) -> None:
    print("\ngoals:")
    for name, value, op, goal, met in goal_checks(report):
        print(f"  {name:<40}{value:>9.2f}  goal {op} {goal:<7g} {'met' if met else 'MISSED'}")


# ----------------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    args = parse_args(argv)
    from breastapp.ml.engine import Engine, EngineSettings
    from breastapp.ml.registry import load_weights
    from breastapp.ml.runtime import configure, device_name, thread_count

    configure()
    models_dir, weights_note = weights_dir(args.models_dir)
    settings = EngineSettings(models_dir=models_dir)
    engine = Engine(settings)
    seg = load_weights(models_dir, settings.mg_segmentation[0])
    tile = settings.tiles(seg.card).tile
    args.flops_per_tile = network_flops(seg.model, tile)
    images = [("MG1_J2KI", args.dicom), ("mini-MIAS", args.png)]
    report = {
        "device": device_name(),
        "threads": thread_count(),
        "weights": weights_note,
        "tile": tile,
        "flops_per_tile": args.flops_per_tile,
        "images": [bench_image(label, path, engine, settings, seg, args) for label, path in images],
    }
    report["reference_gflops_s"] = reference_conv_gflops()
    report["peak_rss_mb"] = max(fig["peak_rss_after_engine_mb"] for fig in report["images"])
    report["goals"] = [
        {"name": n, "value": v, "op": op, "goal": g, "met": met} for n, v, op, g, met in goal_checks(report)
    ]
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
