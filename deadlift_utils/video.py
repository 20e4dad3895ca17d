"""Reading and writing videos, with clear errors for files that are not usable videos.

Reading uses OpenCV's FFmpeg backend with rotation metadata applied (a phone's portrait clip,
stored landscape with a rotation tag, is read upright; OpenCV 4.11 changed the default, so
it is set explicitly). Writing makes files a
browser plays inline (JupyterLab in Chromium): H.264 `.mp4` or VP8 `.webm`, through the
ffmpeg binary that ships inside the imageio-ffmpeg wheel (no system ffmpeg needed). OpenCV's
own `mp4v` files do not play in browsers, and its wheel cannot encode H.264.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

# FFmpeg's own diagnostics ("moov atom not found") would print beside the one-line errors
# raised here: the package's __init__ sets OPENCV_FFMPEG_LOGLEVEL (deadlift_utils.quiet).
import cv2
import numpy as np  # noqa: E402

from .config import VIDEO_EXTENSIONS  # noqa: E402

# Leading bytes of still-image formats; FFmpeg opens these as one-frame "videos".
_IMAGE_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"BM": "BMP",
                b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}
_HEIF_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"avif")


@dataclass
class VideoInfo:
    path: str
    fps: float
    frame_count: int  # as the container reports it; may be an estimate
    width: int   # as displayed: rotation metadata applied
    height: int
    rotation: int = 0  # the file's rotation tag in degrees as OpenCV reports it (0 = none); frames are read upright

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps else 0.0


def _fix_hint(path: Path) -> str:
    return (f"Check that {path.name} is a complete video file (mp4/mov/avi/mkv/webm), "
            f"e.g. by playing it, and re-export or re-copy it if not.")


_VIDEO_MAGIC = (b"\x1a\x45\xdf\xa3", b"OggS", b"FLV", b"\x00\x00\x01\xba")  # mkv/webm, ogg, flv, mpeg-ps
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")  # how MP4 / MOV files start


def _why_unreadable(path: Path) -> str:
    """Why OpenCV could not open `path`, from its bytes: cut short, no frames, or not a video at all.
    Reads only box headers, so it is cheap even for a large file."""
    return "cannot be opened as a video" + _unreadable_detail(path)


def _unreadable_detail(path: Path) -> str:
    """': <reason>' when the bytes say why, else ''."""
    import struct

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(12)
            if head[4:8] in _ISO_BOXES:  # MP4 / MOV (ISO base media): walk the top-level boxes
                pos, kinds, media = 0, set(), 0
                while pos + 8 <= size:
                    f.seek(pos)
                    n, kind = struct.unpack(">I4s", f.read(8))
                    header = 8
                    if n == 1:
                        n, header = struct.unpack(">Q", f.read(8))[0], 16
                    elif n == 0:
                        n = size - pos
                    if n < header:
                        break
                    if pos + n > size:
                        return (f": it is cut short (the file ends inside its {kind.decode('latin-1')} box), "
                                "as when a recording or a copy did not finish")
                    kinds.add(kind)
                    media += (n - header) if kind == b"mdat" else 0
                    pos += n
                if b"moov" not in kinds:
                    return ": it has no index (moov box), as when a recording or a copy did not finish"
                return ": it holds no frames (its media data is empty)" if media == 0 else ""
    except (OSError, struct.error):
        return ""
    if head[:4] == b"RIFF" or head[:1] == b"\x47" or any(head.startswith(m) for m in _VIDEO_MAGIC):  # 0x47: MPEG-TS
        return ""
    return ": its contents match no video format (a text or other file named like a video?)"


def open_capture(path: str | os.PathLike) -> "cv2.VideoCapture":
    """cv2.VideoCapture that applies the file's rotation metadata (frames come out upright)."""
    cap = cv2.VideoCapture(str(path))
    if cap.isOpened() and hasattr(cv2, "CAP_PROP_ORIENTATION_AUTO"):
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def _image_kind(path: Path) -> str | None:
    """"JPEG"/"PNG"/... when the file's leading bytes are a still image's, else None."""
    with open(path, "rb") as f:
        head = f.read(16)
    for magic, kind in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Open `path` and read its first frame; return its size, fps and frame count.

    Raises FileNotFoundError if it does not exist and ValueError (naming the file and the fix)
    if it is a folder, a pose JSON, a still image (even renamed .mp4), not a video, truncated,
    or holds no frames. Width and height are as displayed: a rotation tag is applied.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file. Check the path (and the data_dir parameter).")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a video; pass a video file, or run "
                         f"python -m deadlift_utils extract FOLDER (or batch FOLDER) over a folder.")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes). {_fix_hint(path)}")
    if path.suffix.lower() == ".json":
        raise ValueError(f"{path}: is a pose file, not a video; pass the video, or classify the pose file: "
                         f"python -m deadlift_utils classify {path.name} --model CLASSIFIER_FOLDER")
    kind = _image_kind(path)
    if kind:
        raise ValueError(f"{path}: is a still image ({kind}), not a video; pass the video file "
                         f"(mp4/mov/avi/mkv/webm) of the lift.")
    cap = open_capture(path)
    try:
        if not cap.isOpened():
            raise ValueError(f"{path}: {_why_unreadable(path)}. {_fix_hint(path)}")
        ok, frame = cap.read()
        if not ok or frame is None:
            raise ValueError(f"{path}: holds no readable frames (empty or truncated video). {_fix_hint(path)}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360 \
            if hasattr(cv2, "CAP_PROP_ORIENTATION_META") else 0
        h, w = frame.shape[:2]  # the frame as read, i.e. upright
    finally:
        cap.release()
    if not (0 < fps < 1000):
        # A still image opened as a one-frame "video" reports no usable frame rate.
        if count <= 1:
            raise ValueError(f"{path}: is a still image or has no frame rate, not a video. {_fix_hint(path)}")
        fps = 30.0
    return VideoInfo(str(path), float(fps), max(count, 1), int(w), int(h), rotation)


def iter_frames(path: str | os.PathLike, frame_stride: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame_index, BGR frame) for every `frame_stride`-th frame, starting at 0.

    Skipped frames are only grabbed, not converted, which saves time at stride > 1.
    """
    if int(frame_stride) != frame_stride or frame_stride < 1:
        raise ValueError(f"frame_stride must be a whole number >= 1, got {frame_stride!r}")
    cap = open_capture(path)
    if not cap.isOpened():
        raise ValueError(f"{path}: {_why_unreadable(Path(path))}. {_fix_hint(Path(path))}")
    try:
        index = 0
        while True:
            if index % frame_stride == 0:
                ok, frame = cap.read()
                if not ok:
                    break
                yield index, frame
            elif not cap.grab():
                break
            index += 1
    finally:
        cap.release()


def scale_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`frame` resized to `size` (w, h) for the output videos. OpenCV's area averaging is fast
    only for whole-number factors (1080p -> 540p: 0.8 ms); for 1080p -> 720p it takes 8.6 ms a
    frame on this class of CPU, bilinear 1.8 ms, so other factors use bilinear."""
    h, w = frame.shape[:2]
    if (w, h) == tuple(size):
        return frame
    whole = w % size[0] == 0 and h % size[1] == 0 and w // size[0] == h // size[1]
    return cv2.resize(frame, tuple(size), interpolation=cv2.INTER_AREA if whole else cv2.INTER_LINEAR)


class FrameFile:
    """Frames kept for a later pass over the same samples (analyze's annotated video), JPEG-
    compressed one after another in a file, so memory stays flat on long videos.

    Cheaper than decoding the full-size video again or an H.264 round trip: per 720p frame
    about 2.5 ms to write and 5 ms to read back, against 9 ms to decode and scale a 1080p
    frame (two decoded per sample at stride 2). `FrameFile(path).write(frame)`, `close(keep)`;
    `FrameFile.read(path)` yields the frames; `FrameFile.count(path)` counts them.
    """

    QUALITY = 92

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        self._f = open(self._tmp, "wb")
        self.frames_written = 0

    def write(self, frame: np.ndarray) -> None:
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.QUALITY])
        if not ok:
            raise RuntimeError(f"{self.path}: could not compress a frame")
        self._f.write(len(buf).to_bytes(4, "little"))
        self._f.write(buf.tobytes())
        self.frames_written += 1

    def close(self, keep: bool = True) -> Path | None:
        if self._f is not None:
            self._f.close()
            self._f = None
        if keep:
            os.replace(self._tmp, self.path)
            return self.path
        self._tmp.unlink(missing_ok=True)
        return None

    @staticmethod
    def _records(path) -> Iterator[tuple[int, int]]:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            pos = 0
            while pos + 4 <= size:
                f.seek(pos)
                n = int.from_bytes(f.read(4), "little")
                if pos + 4 + n > size:
                    return
                yield pos + 4, n
                pos += 4 + n

    @classmethod
    def count(cls, path) -> int:
        return sum(1 for _ in cls._records(path))

    @classmethod
    def read(cls, path) -> Iterator[np.ndarray]:
        with open(path, "rb") as f:
            while True:
                head = f.read(4)
                if len(head) < 4:
                    return
                buf = f.read(int.from_bytes(head, "little"))
                frame = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)
                if frame is None:
                    raise ValueError(f"{path}: a kept frame is damaged")
                yield frame


def list_videos(folder: str | os.PathLike) -> list[Path]:
    """All videos under `folder` (recursively), sorted. Raises if there are none."""
    folder = Path(folder)
    if folder.is_file():
        raise ValueError(f"{folder}: is a file, not a folder; pass the folder that holds your videos "
                         f"(extract and analyze take a single video).")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder. Point at the folder that holds your videos.")
    videos = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not videos:
        raise ValueError(f"{folder}: holds no videos ({', '.join(VIDEO_EXTENSIONS)}). "
                         f"Copy your videos there or pass another folder.")
    return videos


class VideoWriter:
    """Write BGR frames to a browser-playable `.mp4` (H.264) or `.webm` (VP8).

    Frames must all have the size given at construction (odd sizes are padded by one
    pixel, which H.264 needs). Use as a context manager; the file appears only when
    complete (written to a temp name, then renamed).
    """

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix.lower()
        if suffix not in (".mp4", ".webm"):
            raise ValueError(f"{self.path}: write .mp4 or .webm (the formats browsers play)")
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.size = (int(width), int(height))
        self.out_size = (self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        import imageio_ffmpeg

        if suffix == ".mp4":  # H.264; ultrafast keeps a 1080p clip's two videos to about a second
            codec, extra = "libx264", ["-preset", "ultrafast", "-crf", "28", "-movflags", "+faststart"]
        else:                 # VP8 WebM
            codec, extra = "libvpx", ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "2M"]
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp), self.out_size, fps=self.fps, codec=codec, pix_fmt_in="bgr24",
            pix_fmt_out="yuv420p", quality=None, macro_block_size=1, output_params=extra,
            ffmpeg_log_level="error",
        )
        self._gen.send(None)
        self.frames_written = 0

    def write(self, frame: np.ndarray) -> None:
        if frame.shape[1::-1] != self.size:
            frame = cv2.resize(frame, self.size)
        if self.out_size != self.size:
            frame = cv2.copyMakeBorder(frame, 0, self.out_size[1] - self.size[1], 0,
                                       self.out_size[0] - self.size[0], cv2.BORDER_REPLICATE)
        self._gen.send(np.ascontiguousarray(frame))
        self.frames_written += 1

    def close(self, keep: bool = True) -> Path | None:
        if self._gen is not None:
            try:
                self._gen.close()
            except (RuntimeError, subprocess.SubprocessError) as e:
                keep = False
                raise RuntimeError(f"{self.path}: ffmpeg failed while writing: {e}") from e
            finally:
                self._gen = None
        if keep and self.frames_written:
            os.replace(self._tmp, self.path)
            return self.path
        if self._tmp.exists():
            self._tmp.unlink()
        return None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(keep=exc_type is None)
        return False
