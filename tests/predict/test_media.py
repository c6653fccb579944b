"""Inputs: folder discovery and order, image decoding, video sampling, unreadable files."""

import os
import sys

import numpy as np
import pytest
from PIL import Image

from affectjax.predict import media
from affectjax.train.errors import DataError, UserError


def test_folders_are_searched_recursively_in_sorted_order(tmp_path, media_helpers):
    write_image, _ = media_helpers
    for rel in ("b.png", "a/z.JPG", "a/b/c.jpeg", "A.webp", "a/notes.txt", "c.bmp",
                "clip.MP4"):
        path = str(tmp_path / "in" / rel)
        if rel.endswith((".txt", ".MP4")):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w").close()
        else:
            write_image(path)
    found = media.discover([str(tmp_path / "in")])
    assert [i.name for i in found] == ["A.webp", "a/b/c.jpeg", "a/z.JPG", "b.png", "c.bmp",
                                       "clip.MP4"]
    assert [i.kind for i in found] == ["image"] * 5 + ["video"]
    assert found[1].path == os.path.join(str(tmp_path / "in"), "a/b/c.jpeg")


def test_file_arguments_keep_their_order_and_names_stay_distinct(tmp_path, media_helpers):
    write_image, _ = media_helpers
    one = write_image(str(tmp_path / "x" / "face.png"))
    two = write_image(str(tmp_path / "y" / "face.png"))
    odd = write_image(str(tmp_path / "scan.tif"))
    found = media.discover([two, one, odd])
    assert [i.path for i in found] == [two, one, odd]
    assert [i.name for i in found] == ["face.png", "face~2.png", "scan.tif"]
    assert found[2].kind == "image"  # a named file of another extension: Pillow decides


def test_missing_path_and_empty_folder_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no such file or folder: .*nope"):
        media.discover([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image .* found in"):
        media.discover([str(tmp_path / "empty")])


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "RGB"])
def test_images_are_read_as_rgb_uint8(tmp_path, media_helpers, mode):
    write_image, _ = media_helpers
    path = write_image(str(tmp_path / f"im_{mode}.png"), size=(30, 20), mode=mode)
    image = media.read_image(path)
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8


def test_transparent_pixels_are_put_on_white(tmp_path):
    path = str(tmp_path / "clear.png")
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(path)
    assert (media.read_image(path) == 255).all()


def test_corrupt_and_truncated_images_raise_unreadable(tmp_path, media_helpers):
    write_image, _ = media_helpers
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(media.UnreadableError, match="not an image"):
        media.read_image(str(junk))
    good = write_image(str(tmp_path / "good.png"), size=(64, 64))
    data = open(good, "rb").read()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(media.UnreadableError):
        media.read_image(str(cut))


def test_video_is_sampled_at_fps_with_timestamps(tmp_path, media_helpers):
    _, write_video = media_helpers
    path = write_video(str(tmp_path / "clip.avi"), frames=10, fps=10.0)
    frames = list(media.read_video(path, fps=2.0))
    assert [f.frame for f in frames] == [0, 5]
    assert [f.time_s for f in frames] == [0.0, 0.5]
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    # red grows with the frame index and is the first channel (RGB, not OpenCV's BGR)
    assert frames[1].image[..., 0].mean() > frames[0].image[..., 0].mean() + 50
    assert len(list(media.read_video(path, fps=0))) == 10
    assert len(list(media.read_video(path, fps=1.0))) == 1
    assert len(list(media.read_video(path, fps=30.0))) == 10


def test_corrupt_video_raises_unreadable(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 2048)
    with pytest.raises(media.UnreadableError):
        list(media.read_video(str(bad)))


def test_iter_frames_reports_bad_files_and_goes_on(tmp_path, media_helpers):
    write_image, write_video = media_helpers
    write_image(str(tmp_path / "in" / "a.png"))
    (tmp_path / "in" / "b.jpg").write_bytes(b"garbage")
    write_video(str(tmp_path / "in" / "c.avi"), frames=10, fps=10.0)
    (tmp_path / "in" / "d.mp4").write_bytes(b"garbage")
    write_image(str(tmp_path / "in" / "e.png"))
    errors, done = [], []
    frames = list(media.iter_frames(media.discover([str(tmp_path / "in")]), fps=2.0,
                                    on_error=lambda item, why: errors.append(item.name),
                                    on_input=lambda item: done.append(item.name)))
    assert [(f.source.name, f.frame) for f in frames] == [
        ("a.png", None), ("c.avi", 0), ("c.avi", 5), ("e.png", None)]
    assert errors == ["b.jpg", "d.mp4"]
    assert done == ["a.png", "b.jpg", "c.avi", "d.mp4", "e.png"]


def test_missing_opencv_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 raises ImportError
    with pytest.raises(UserError, match=r'^reading videos needs OpenCV: pip install -e '
                                        r'"\.\[faces\]"$'):
        media.require_cv2("reading videos")
