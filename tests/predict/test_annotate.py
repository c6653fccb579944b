"""Pictures: annotated images (size, panel, drawn marks), contact sheets, V/A plots."""

import os

import numpy as np
import pytest
from PIL import Image

from affectjax.predict import annotate

ROW = {"file": "a.png", "face": 0, "expr_label": "Happiness", "expr_prob/Happiness": 0.91,
       "expr_prob/Neutral": 0.09, "valence": 0.53, "arousal": -0.2, "au/AU6": 1,
       "au/AU12": 1, "au/AU4": 0, "landmark0_x": 20.0, "landmark0_y": 30.0}


def test_face_lines_give_expression_va_and_active_aus():
    assert annotate.face_lines(ROW) == ["Happiness 0.91  V +0.53  A -0.20", "AUs: AU6 AU12"]
    assert annotate.face_lines({**ROW, "au/AU6": 0, "au/AU12": 0})[1] == "AUs: none"
    assert annotate.face_lines({"file": "a.png", "face": -1, "box_x": None}) == [
        "no face found"]
    attrs = {f"attr/a{i}": 1 for i in range(8)}
    assert annotate.face_lines({"valence": 0.0, **attrs})[-1] == (
        "attr: a0, a1, a2, a3, a4, a5 (+2)")


@pytest.mark.parametrize("shape, drawn", [
    ((64, 64), (256, 256)),       # small: enlarged to 256
    ((112, 80), (256, 183)),      # the longer side (width 112) becomes 256
    ((600, 400), (600, 400)),     # in range: as is
    ((2000, 1000), (1024, 512)),  # large: reduced to 1024
])
def test_annotated_image_size(shape, drawn):
    image = np.full((shape[1], shape[0], 3), 90, np.uint8)
    picture = annotate.annotate(image, [((0, 0, shape[0], shape[1]), ROW)])
    assert picture.mode == "RGB" and picture.width == drawn[0]
    assert picture.height > drawn[1] + 20  # the text panel below the image
    panel = np.asarray(picture)[drawn[1]:]
    assert (panel == annotate.TEXT).all(-1).any()  # some text is written


def test_landmarks_and_boxes_are_drawn_in_scaled_pixels():
    image = np.full((64, 64, 3), 90, np.uint8)
    picture = np.asarray(annotate.annotate(image, [((8, 8, 48, 48), ROW)], draw_boxes=True))
    assert tuple(picture[120, 80]) == annotate.DOT            # landmark (20, 30) x 4
    assert tuple(picture[130, 32]) == annotate.BOX            # the box's left edge at x = 32
    plain = np.asarray(annotate.annotate(image, [((8, 8, 48, 48), ROW)]))
    assert tuple(plain[130, 32]) != annotate.BOX              # no box without detection


def test_contact_sheet_keeps_frames_spread_over_the_video():
    sheet = annotate.ContactSheet(max_frames=4)
    for i in range(37):
        frame = np.full((48, 64, 3), i * 6, np.uint8)
        sheet.add(frame, [((0, 0, 64, 48), {**ROW, "landmark0_x": 5.0})], float(i))
    assert len(sheet.kept) <= 8
    times = [item[3] for item in sheet.kept]
    assert times[0] == 0.0 and times[-1] >= 28.0             # the whole length is covered
    picture = sheet.render()
    tiles = 4
    assert picture.width == tiles * annotate.TILE_SIDE + (tiles + 1) * 4
    assert annotate.ContactSheet().render() is None


def test_contact_sheet_grid_has_up_to_four_columns():
    sheet = annotate.ContactSheet()
    for i in range(6):
        sheet.add(np.zeros((100, 100, 3), np.uint8), [(None, {"face": -1})], i * 0.5)
    picture = sheet.render()
    assert picture.width == 4 * annotate.TILE_SIDE + 5 * 4
    one_row = annotate.ContactSheet()
    one_row.add(np.zeros((100, 100, 3), np.uint8), [(None, {"face": -1})], 0.0)
    assert picture.height > 2 * (one_row.render().height - 8)


def test_va_plot_is_written_and_skipped_without_values(tmp_path):
    track = annotate.VATrack()
    for t in range(5):
        track.add(t * 0.5, [{"valence": 0.1 * t, "arousal": -0.1 * t},
                            {"valence": 0.3 * t, "arousal": 0.0}])
    track.add(2.5, [])                                       # a frame without a face
    assert track.valence[1] == pytest.approx(0.2) and np.isnan(track.valence[-1])
    path = annotate.output_path(str(tmp_path / "out"), "sub/clip.avi", "_va.png")
    assert path == os.path.join(str(tmp_path / "out"), "sub", "clip_va.png")
    assert annotate.plot_va(track, path, title="clip.avi") == path
    assert Image.open(path).size == (800, 320)
    empty = annotate.VATrack()
    empty.add(0.0, [{"expr_label": "Fear"}])
    assert annotate.plot_va(empty, str(tmp_path / "none.png")) is None
    assert not (tmp_path / "none.png").exists()
