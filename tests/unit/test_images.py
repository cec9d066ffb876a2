"""Frame image checks with real images made by Pillow."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image

from bot.core.errors import InputError
from bot.core.images import check_image, read_image
from bot.runware.client import data_uri
from bot.runware.models import sniff_image
from bot.settings import ImageSettings
from bot.ui.texts_errors import error_text
from tests.helpers import raises_saying

CFG = ImageSettings()


def make(fmt: str, size: tuple[int, int] = (640, 360), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, (200, 80, 40)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
async def test_accepts_png_jpeg_webp(fmt: str, mime: str) -> None:
    data = make(fmt)
    img = await read_image("frame.bin", data, CFG)  # the name says nothing: the bytes decide
    assert (img.filename, img.mime, img.width, img.height) == ("frame.bin", mime, 640, 360)
    assert img.data == data


def test_accepts_edge_sizes_and_aspects() -> None:
    assert check_image("a.png", make("PNG", (300, 300)), CFG).width == 300
    assert check_image("b.png", make("PNG", (750, 300)), CFG).width == 750  # exactly 2.5:1
    assert check_image("c.png", make("PNG", (300, 750)), CFG).height == 750  # exactly 1:2.5


def test_gif_refused_by_content_even_when_named_png() -> None:
    with pytest.raises(InputError) as err:
        check_image("cat.png", make("GIF"), CFG)
    assert '"cat.png" is a GIF' in error_text(err.value)
    assert "PNG, JPEG or WEBP" in error_text(err.value)


def test_text_file_named_png_refused() -> None:
    with pytest.raises(InputError) as err:
        check_image("notes.png", b"hello, this is not a picture\n" * 10, CFG)
    assert error_text(err.value) == '"notes.png" is not an image the bot can read. Attach a PNG, JPEG or WEBP image.'


def test_empty_file_refused() -> None:
    with raises_saying(InputError, r'"e\.png" is empty'):
        check_image("e.png", b"", CFG)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_image_refused(fmt: str) -> None:
    noisy = Image.frombytes("RGB", (800, 600), bytes(range(256)) * (800 * 600 * 3 // 256))
    buf = io.BytesIO()
    noisy.save(buf, format=fmt)
    data = buf.getvalue()
    with pytest.raises(InputError) as err:
        check_image("cut.img", data[: len(data) // 2], CFG)
    assert error_text(err.value).startswith(f'"cut.img" looks like a {fmt} but could not be read')


def test_corrupted_png_chunk_refused() -> None:
    data = bytearray(make("PNG"))
    data[60] ^= 0xFF  # inside the image data: the CRC no longer matches
    with raises_saying(InputError, "could not be read"):
        check_image("bad.png", bytes(data), CFG)


def test_too_small_names_size_and_rule() -> None:
    with pytest.raises(InputError) as err:
        check_image("tiny.jpg", make("JPEG", (200, 400)), CFG)
    assert error_text(err.value) == (
        '"tiny.jpg" is 200×400 pixels; each side must be at least 300 pixels. Use a larger image.'
    )


def test_too_large_dimensions() -> None:
    cfg = ImageSettings(max_side=1000)
    with raises_saying(InputError, r"1200×600 pixels; each side must be at most 1000 pixels"):
        check_image("big.png", make("PNG", (1200, 600)), cfg)


def test_too_many_bytes_says_cap_in_mib() -> None:
    cfg = ImageSettings(max_bytes=2 * 1024 * 1024)
    data = make("PNG") + b"\0" * (2 * 1024 * 1024)  # size is checked before anything is decoded
    with pytest.raises(InputError) as err:
        check_image("huge.png", data, cfg)
    assert error_text(err.value).startswith('"huge.png" is 2.1 MiB; images can be at most 2 MiB')


@pytest.mark.parametrize(("size", "words"), [((1000, 300), "wide as it is tall"), ((300, 1000), "tall as it is wide")])
def test_extreme_aspect_refused(size: tuple[int, int], words: str) -> None:
    with pytest.raises(InputError) as err:
        check_image("strip.webp", make("WEBP", size), CFG)
    msg = error_text(err.value)
    assert f'"strip.webp" is {size[0]}×{size[1]} pixels, 3.33 times as {words}' in msg
    assert "between 1:2.5 and 2.5:1" in msg


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header claiming a huge size, followed by a few bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding() -> None:
    # A header claiming 30000×30000 pixels: Pillow's own guard or the side limit refuses it, nothing is decoded.
    with raises_saying(InputError, r'"bomb\.png" has too many pixels to open safely'):
        check_image("bomb.png", _png_claiming(30000, 30000), ImageSettings(max_side=100_000))
    with raises_saying(InputError, "8000×8000 pixels; each side must be at most 4096 pixels"):
        check_image("bomb.png", _png_claiming(8000, 8000), CFG)


def test_long_or_odd_file_names_are_tidied() -> None:
    with pytest.raises(InputError) as err:
        check_image("x" * 200 + "\n.png", b"nope", CFG)
    assert error_text(err.value).startswith('"' + "x" * 77 + '..." is not an image')


def test_sniff_image() -> None:
    assert sniff_image(make("PNG")) == "image/png"
    assert sniff_image(make("JPEG")) == "image/jpeg"
    assert sniff_image(make("WEBP")) == "image/webp"
    assert sniff_image(make("GIF")) is None
    assert sniff_image(b"RIFF\0\0\0\0WAVE") is None


def test_data_uri_round_trips() -> None:
    img = check_image("f.png", make("PNG"), CFG)
    uri = data_uri(img.data, img.mime)
    head, _, body = uri.partition(",")
    assert head == "data:image/png;base64"
    assert base64.b64decode(body) == img.data
