"""Install the BlazePose model files from registry packages (run once by `make models`).

Nothing here runs at analysis time: extraction only reads the files this writes into
config.POSE_MODELS_DIR. Sources (both pinned, checked by sha256):
  - PyPI wheel mediapipe==0.10.21 (Apache-2.0): pose_detection.tflite and pose_landmark_full.tflite
  - npm tarball @mediapipe/pose@0.5.1675469404 (Apache-2.0): pose_landmark_{lite,full,heavy}.tflite
mediapipe >= 1.x ships no model files, and its PoseLandmarker wants a `.task` bundle: an
uncompressed, 4-byte-aligned zip of `pose_detector.tflite` + `pose_landmarks_detector.tflite`
whose input tensors carry NormalizationOptions metadata. The raw files have none, so we add it
with the flatbuffers classes that ship inside the mediapipe wheel.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from . import config
from .io_utils import file_sha256

WHEEL_SPEC = "mediapipe==0.10.21"
WHEEL_NAME = "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3"
NPM_SPEC = "@mediapipe/pose@0.5.1675469404"
NPM_NAME = "mediapipe-pose-0.5.1675469404.tgz"
NPM_SHA256 = "8bb349a7b3a3ba699df23be804ddd3b3eab810b50b15406894be257859388a84"

VARIANTS = ("lite", "full", "heavy")
# Input normalisation the MediaPipe graphs use: pixels -> [0, 1] for the landmark model,
# -> [-1, 1] for the detector.
LANDMARK_NORM = (0.0, 255.0)
DETECTOR_NORM = (127.5, 127.5)


def task_path(variant: str = "full", models_dir: Path | None = None) -> Path:
    """Path of the installed PoseLandmarker bundle for `variant`."""
    if variant not in VARIANTS:
        raise ValueError(f"model_variant must be one of {VARIANTS}, got {variant!r}")
    return Path(models_dir or config.POSE_MODELS_DIR) / f"pose_landmarker_{variant}.task"


def _checked(path: Path, sha: str) -> Path:
    got = file_sha256(path)
    if got != sha:
        raise ValueError(f"{path}: sha256 {got} does not match the pinned {sha}; delete it and rerun `make models`.")
    return path


def add_normalization_metadata(model: bytes, mean: float, std: float) -> bytes:
    """Return the TFLite `model` with input NormalizationOptions(mean, std) metadata added.

    Mirrors what mediapipe's MetadataPopulator does, without its C++ extension (absent from
    the mediapipe 1.x wheels).
    """
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as md
    from mediapipe.tasks.metadata import schema_py_generated as tfl

    norm = md.NormalizationOptionsT()
    norm.mean, norm.std = [float(mean)], [float(std)]
    unit = md.ProcessUnitT()
    unit.optionsType = md.ProcessUnitOptions.NormalizationOptions
    unit.options = norm
    tensor = md.TensorMetadataT()
    tensor.name = "image"
    tensor.processUnits = [unit]
    subgraph = md.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [tensor]
    meta = md.ModelMetadataT()
    meta.name = "BlazePose"
    meta.subgraphMetadata = [subgraph]
    meta.minParserVersion = "1.0.0"
    b = flatbuffers.Builder(0)
    b.Finish(meta.Pack(b), b"M001")
    meta_buf = bytes(b.Output())

    m = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(model, 0))
    buf = tfl.BufferT()
    buf.data = bytearray(meta_buf)
    m.buffers = list(m.buffers or [])
    m.metadata = [x for x in (m.metadata or []) if x.name not in (b"TFLITE_METADATA", "TFLITE_METADATA")]
    m.buffers.append(buf)
    entry = tfl.MetadataT()
    entry.name = "TFLITE_METADATA"
    entry.buffer = len(m.buffers) - 1
    m.metadata.append(entry)
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), b"TFL3")
    return bytes(b.Output())


def build_task_bundle(detector: bytes, landmarker: bytes, out_path: Path) -> Path:
    """Write a PoseLandmarker `.task` bundle (uncompressed, aligned zip) atomically."""
    from mediapipe.tasks.python.metadata.metadata_writers.model_asset_bundle_utils import (
        create_model_asset_bundle,
    )

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".task.tmp")
    create_model_asset_bundle(
        {
            "pose_detector.tflite": add_normalization_metadata(detector, *DETECTOR_NORM),
            "pose_landmarks_detector.tflite": add_normalization_metadata(landmarker, *LANDMARK_NORM),
        },
        str(tmp),
    )
    tmp.replace(out_path)
    return out_path


def _download_wheel(cache: Path) -> Path:
    wheel = cache / WHEEL_NAME
    if not wheel.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", WHEEL_SPEC, "--no-deps", "--only-binary=:all:",
             "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11", "--implementation", "cp",
             "--abi", "cp311", "-d", str(cache), "-q"],
            check=True,
        )
    return _checked(wheel, WHEEL_SHA256)


def _download_npm(cache: Path) -> Path | None:
    tgz = cache / NPM_NAME
    if not tgz.exists():
        npm = shutil.which("npm")
        if npm is None:
            print("npm not found: installing only the 'full' model from the PyPI wheel "
                  "(install Node.js/npm for 'lite' and 'heavy').")
            return None
        subprocess.run([npm, "pack", NPM_SPEC, "--silent", "--pack-destination", str(cache)],
                       check=True, stdout=subprocess.DEVNULL)
    return _checked(tgz, NPM_SHA256)


def install_pose_models(models_dir: Path | None = None, force: bool = False) -> dict[str, Path]:
    """Fetch the pinned packages (once; cached) and write pose_landmarker_{variant}.task files.

    Returns {variant: path} for the variants installed. Idempotent: existing bundles are
    kept unless `force`.
    """
    models_dir = Path(models_dir or config.POSE_MODELS_DIR)
    cache = models_dir / "_packages"
    cache.mkdir(parents=True, exist_ok=True)
    wanted = {v: task_path(v, models_dir) for v in VARIANTS}
    if not force and all(p.exists() for p in wanted.values()):
        return wanted

    with zipfile.ZipFile(_download_wheel(cache)) as z:
        detector = z.read("mediapipe/modules/pose_detection/pose_detection.tflite")
        landmarkers = {"full": z.read("mediapipe/modules/pose_landmark/pose_landmark_full.tflite")}
    tgz = _download_npm(cache)
    if tgz is not None:
        with tarfile.open(tgz) as t:
            for v in VARIANTS:
                landmarkers[v] = t.extractfile(f"package/pose_landmark_{v}.tflite").read()

    installed = {}
    for v, model in landmarkers.items():
        if force or not wanted[v].exists():
            build_task_bundle(detector, model, wanted[v])
        installed[v] = wanted[v]
    return installed


def main() -> int:
    paths = install_pose_models(force="--force" in sys.argv)
    for v, p in paths.items():
        print(f"pose model {v}: {p} ({p.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
