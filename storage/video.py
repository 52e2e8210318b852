"""Video files: MP4 (H.264, yuv420p) with the recipe inside, read back, a poster frame, GIF and WebP.

The ffmpeg is the static build that the `imageio-ffmpeg` wheel ships (`imageio_ffmpeg.get_ffmpeg_exe()`),
so nothing outside `requirements.txt` is needed. Like `storage.artifacts.encode_png`, `encode_mp4` is a
pure function of its arguments: the same frames, fps and metadata give the same bytes, so a replay on
the same machine and library versions gives the same artifact id. What makes that so:

* `-threads 1` for x264 and the colour conversion: x264's output depends on its thread count, which
  ffmpeg would otherwise pick from the number of cores;
* `-fflags +bitexact` and `-flags:v +bitexact`: no library version strings or creation time in the
  container; `-sws_flags bitexact+accurate_rnd`: the RGB to YUV conversion takes no CPU-specific
  shortcuts;
* the only metadata is ours (`-map_metadata 1` from an ffmetadata file we write; nothing is copied
  from the raw input).

The recipe is stored as MP4 metadata keys of our choosing (`-movflags use_metadata_tags`, which writes
QuickTime `mdta` keys), one per entry of `metadata`, like the PNG text chunks: `atelier` for the plan
JSON and `parameters` for the infotext. ffmpeg reads them back unchanged (quotes, newlines and any
Unicode included); `mp4_metadata` does that through ffmpeg's own `ffmetadata` output.

Sizes: H.264 codes whole 16×16 macroblocks but stores a crop rectangle, so any *even* width and height
is encoded as is, with no rescaling and no padding, and decodes to the same size (imageio's
`macro_block_size=16` rescaling is a choice of imageio's writer, which we do not use). yuv420p halves
the chroma in both directions, so an odd width or height cannot be stored: `encode_mp4` raises
`ValueError` and names the nearest even sizes, rather than pad or crop the picture behind the caller's
back. Frames from the video models are multiples of 8, so this only concerns hand-made inputs.
"""
from __future__ import annotations

import io
import pathlib
import re
import subprocess
import tempfile
from fractions import Fraction

import imageio_ffmpeg
import numpy as np
import PIL.Image

MP4_MIME = "video/mp4"
# Keys that ffmpeg reports for the container itself (the `ftyp` box; the muxer's version, which the
# bitexact flag leaves out); they are not ours to set, and `mp4_metadata` does not return them.
_CONTAINER_KEYS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder"})
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
MIN_FPS, MAX_FPS = 1.0, 120.0


def _ffmpeg(args: list[str], *, stdin: bytes | None = None) -> bytes:
    """Run the bundled ffmpeg with `args`; its stdout. Raises RuntimeError with ffmpeg's message."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-y", "-loglevel", "error", *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"ffmpeg failed ({done.returncode}): {' | '.join(message[-3:])}")
    return done.stdout


def _escape(text: str) -> str:
    """`text` escaped for an ffmetadata file (https://ffmpeg.org/ffmpeg-formats.html#Metadata-2)."""
    return re.sub(r"([=;#\\\n])", r"\\\1", text)


def _parse_ffmetadata(text: str) -> dict[str, str]:
    """The global section of an ffmetadata file: `key=value` lines, backslash escapes any character."""
    entries: dict[str, str] = {}
    lines: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            current.append("\\" + next(chars, ""))
        elif char == "\n":
            lines.append("".join(current))
            current = []
        else:
            current.append(char)
    lines.append("".join(current))
    for line in lines[1:]:                                  # line 0 is the ";FFMETADATA1" header
        if line.startswith("["):                            # [STREAM] / [CHAPTER]: not global any more
            break
        if not line or line.startswith((";", "#")):
            continue
        key_end = _unescaped_equals(line)
        if key_end < 0:
            continue
        key, value = line[:key_end], line[key_end + 1:]
        entries[re.sub(r"\\(.)", r"\1", key, flags=re.S)] = re.sub(r"\\(.)", r"\1", value, flags=re.S)
    return entries


def _unescaped_equals(line: str) -> int:
    """Index of the first `=` in `line` that no backslash escapes; -1 if none."""
    i = 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == "=":
            return i
        i += 1
    return -1


def _check_frames(frames: list[PIL.Image.Image], fps: float, *, even: bool = True) -> tuple[int, int]:
    """(width, height) of `frames` once they are checked to be usable at `fps` (`even`: for yuv420p)."""
    if not frames:
        raise ValueError("a video needs at least one frame; got an empty list")
    if not MIN_FPS <= fps <= MAX_FPS:
        raise ValueError(f"fps must be between {MIN_FPS:g} and {MAX_FPS:g}; got {fps!r}")
    width, height = frames[0].size
    for index, frame in enumerate(frames):
        if frame.size != (width, height):
            raise ValueError(f"all frames must have one size; frame 0 is {width}x{height}, "
                             f"frame {index} is {frame.size[0]}x{frame.size[1]}")
    if even and (width % 2 or height % 2):
        raise ValueError(f"H.264 yuv420p needs an even width and height; got {width}x{height}. "
                         f"Resize or crop the frames to {width - width % 2}x{height - height % 2} "
                         f"or {width + width % 2}x{height + height % 2} first")
    return width, height


def _check_metadata(metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key) or key in _CONTAINER_KEYS:
            raise ValueError(f"metadata key {key!r} is not allowed: use letters, digits, '_', '.', '-' "
                             f"(starting with a letter), and none of {sorted(_CONTAINER_KEYS)}")
        if not isinstance(value, str) or "\0" in value:
            raise ValueError(f"metadata value for {key!r} must be a string without NUL characters")


def encode_mp4(frames: list[PIL.Image.Image], fps: float, metadata: dict[str, str], *, crf: int = 18) -> bytes:
    """MP4 bytes (H.264 High, yuv420p, BT.709, `faststart` so browsers play it while loading).

    Args:
        frames: the pictures, all one size with even width and height (see the module docstring);
            any mode, converted to RGB.
        fps: frames per second, 1 to 120; stored as a fraction (24000/1001 stays exact).
        metadata: stored as MP4 metadata keys, read back by `mp4_metadata`; keys are short names
            (letters, digits, `_.-`), values any text.
        crf: x264 quality, 0 (lossless) to 51; default 18, visually near lossless.
    Raises:
        ValueError: for empty input, mixed or odd sizes, fps out of range, or unusable metadata keys.
    """
    width, height = _check_frames(frames, fps)
    _check_metadata(metadata)
    rate = Fraction(fps).limit_denominator(1001)
    raw = b"".join(np.asarray(frame.convert("RGB"), dtype=np.uint8).tobytes() for frame in frames)
    with tempfile.TemporaryDirectory(prefix="atelier-mp4-") as folder:
        meta_path = pathlib.Path(folder, "meta.txt")
        out_path = pathlib.Path(folder, "out.mp4")
        meta_path.write_text(";FFMETADATA1\n" + "".join(f"{_escape(k)}={_escape(v)}\n" for k, v in metadata.items()),
                             encoding="utf-8")
        _ffmpeg(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(rate), "-i", "pipe:0",
                 "-f", "ffmetadata", "-i", str(meta_path),
                 "-map", "0:v", "-map_metadata", "1", "-map_chapters", "-1",
                 "-threads", "1", "-filter_threads", "1", "-sws_flags", "bitexact+accurate_rnd+full_chroma_int",
                 "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,"
                 "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv",
                 "-c:v", "libx264", "-preset", "medium", "-crf", str(int(crf)), "-pix_fmt", "yuv420p",
                 "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
                 "-fflags", "+bitexact", "-flags:v", "+bitexact",
                 "-movflags", "+faststart+use_metadata_tags", "-f", "mp4", str(out_path)], stdin=raw)
        return out_path.read_bytes()


def mp4_metadata(data: bytes) -> dict[str, str]:
    """The metadata entries an MP4 carries (those `encode_mp4` wrote), without the container's own keys."""
    with tempfile.TemporaryDirectory(prefix="atelier-mp4-") as folder:
        path = pathlib.Path(folder, "in.mp4")
        path.write_bytes(data)
        text = _ffmpeg(["-i", str(path), "-map_metadata", "0", "-fflags", "+bitexact",
                        "-f", "ffmetadata", "pipe:1"]).decode("utf-8")
    return {k: v for k, v in _parse_ffmetadata(text).items() if k not in _CONTAINER_KEYS}


def mp4_without_metadata(data: bytes) -> bytes:
    """The MP4 `data` with no metadata keys (no recipe) and no chapters: its streams copied as they are
    (nothing decoded or encoded again, so every frame is the same), in a new container."""
    with tempfile.TemporaryDirectory(prefix="atelier-mp4-") as folder:
        path, out_path = pathlib.Path(folder, "in.mp4"), pathlib.Path(folder, "out.mp4")
        path.write_bytes(data)
        _ffmpeg(["-i", str(path), "-map", "0", "-map_metadata", "-1", "-map_chapters", "-1", "-c", "copy",
                 "-fflags", "+bitexact", "-flags:v", "+bitexact", "-movflags", "+faststart", "-f", "mp4",
                 str(out_path)])
        return out_path.read_bytes()


def video_info(data: bytes) -> dict:
    """What ffmpeg reports about the first video stream: `codec`, `pix_fmt`, `fps`, `size`, `duration`."""
    return _decode(data, max_frames=1)[1]


def _decode(data: bytes, max_frames: int | None = None) -> tuple[list[PIL.Image.Image], dict]:
    with tempfile.TemporaryDirectory(prefix="atelier-mp4-") as folder:
        path = pathlib.Path(folder, "in.mp4")
        path.write_bytes(data)
        output = ["-map", "0:v:0", "-fps_mode", "passthrough", "-threads", "1"]
        if max_frames is not None:
            output += ["-frames:v", str(max_frames)]
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24", output_params=output)
        try:
            meta = next(reader)
            width, height = meta["size"]
            frames = [PIL.Image.frombytes("RGB", (width, height), bytes(chunk)) for chunk in reader]
        finally:
            reader.close()
    info = {key: meta.get(key) for key in ("codec", "pix_fmt", "fps", "size", "duration")}
    return frames, info


def count_frames(data: bytes) -> int:
    """How many frames a video has (ffmpeg decodes it to nowhere; nothing is kept in memory)."""
    with tempfile.TemporaryDirectory(prefix="atelier-mp4-") as folder:
        path = pathlib.Path(folder, "in.mp4")
        path.write_bytes(data)
        return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


def read_mp4(data: bytes) -> tuple[list[PIL.Image.Image], float]:
    """(frames as RGB images, fps) of a video. ffmpeg reports fps to two decimals (23.976 reads 23.98)."""
    frames, info = _decode(data)
    return frames, float(info["fps"])


def poster(data: bytes) -> PIL.Image.Image:
    """The first frame of a video, as an RGB image."""
    frames, _ = _decode(data, max_frames=1)
    if not frames:
        raise ValueError("the video has no frames")
    return frames[0]


def _pillow_animation(frames: list[PIL.Image.Image], fps: float, fmt: str, **options) -> bytes:
    _check_frames(frames, fps, even=False)
    first, *rest = [frame.convert("RGB") for frame in frames]
    buffer = io.BytesIO()
    first.save(buffer, format=fmt, save_all=True, append_images=rest, duration=round(1000 / fps), loop=0, **options)
    return buffer.getvalue()


def encode_gif(frames: list[PIL.Image.Image], fps: float) -> bytes:
    """Looping animated GIF (256 colours per frame; GIF counts time in 1/100 s, so fps is rounded to that).
    Pillow merges consecutive identical frames into one longer frame."""
    return _pillow_animation(frames, fps, "GIF", optimize=False)


def encode_webp(frames: list[PIL.Image.Image], fps: float, *, quality: int = 90) -> bytes:
    """Looping animated WebP (lossy, `quality` 0-100; frame times in milliseconds)."""
    return _pillow_animation(frames, fps, "WEBP", quality=quality, method=4)
