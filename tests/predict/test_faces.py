"""Face crops: the margin arithmetic, and OpenCV's Haar cascade on SynthFaces faces."""

import numpy as np
import pytest

from affectjax.data.synthfaces import SynthFaces
from affectjax.predict import faces


@pytest.mark.parametrize("box, size, expected", [
    ((40, 50, 100, 80), (300, 300), (15, 30, 150, 120)),     # 25 % on every side
    ((0, 0, 100, 100), (300, 300), (0, 0, 125, 125)),        # clipped at the top left
    ((250, 260, 50, 40), (300, 300), (237, 250, 63, 50)),    # clipped at the bottom right
    ((10, 10, 3, 3), (12, 12), (9, 9, 3, 3)),                 # fractional: rounded outwards
])
def test_expand_widens_by_the_margin_and_clips(box, size, expected):
    assert faces.expand(box, 0.25, *size) == expected


def test_expand_never_gives_an_empty_box():
    assert faces.expand((20, 20, 0, 0), 0.25, 10, 10) == (9, 9, 1, 1)


def test_whole_image_is_face_zero():
    image = np.zeros((30, 40, 3), np.uint8)
    (face,) = faces.whole_image(image)
    assert face.index == 0 and face.box == (0, 0, 40, 30) and face.image is image


def test_landmarks_move_to_image_pixels():
    row = {"landmark0_x": 1.0, "landmark0_y": 2.0, "member1/landmark0_x": 3.0,
           "valence": 0.5, "expr_label": "Fear"}
    moved = faces.to_image_pixels(row, (10, 20, 5, 5))
    assert moved == {"landmark0_x": 11.0, "landmark0_y": 22.0, "member1/landmark0_x": 13.0,
                     "valence": 0.5, "expr_label": "Fear"}


@pytest.fixture(scope="module")
def studio():
    """Rendered 256-pixel "studio" faces; the cascade finds the faces of 0, 1, 5, 6 and 7."""
    return SynthFaces(8, seed=0, image_size=256, domain="studio").batch([0, 1, 5])["image"]


def test_haar_finds_a_synthfaces_face_and_crops_it_with_the_margin(studio):
    pytest.importorskip("cv2")
    detector = faces.FaceDetector()
    (box,) = detector.detect(studio[0])
    x, y, w, h = box
    assert 120 <= w <= 220 and abs((x + w / 2) - 128) < 30 and abs((y + h / 2) - 128) < 40
    (face,) = detector(studio[0])
    assert face.index == 0
    assert face.box == faces.expand(box, faces.MARGIN, 256, 256)
    assert face.image.shape == (face.box[3], face.box[2], 3)
    np.testing.assert_array_equal(
        face.image, studio[0][face.box[1]:face.box[1] + face.box[3],
                              face.box[0]:face.box[0] + face.box[2]])


def test_haar_numbers_faces_left_to_right(studio):
    pytest.importorskip("cv2")
    pair = np.concatenate([studio[1], studio[2]], axis=1)   # 512 x 256, two faces
    found = faces.FaceDetector()(pair)
    assert [f.index for f in found] == [0, 1]
    assert found[0].box[0] < 256 <= found[1].box[0]


def test_no_face_in_a_plain_or_noisy_image():
    pytest.importorskip("cv2")
    detector = faces.FaceDetector()
    assert detector(np.full((200, 300, 3), 128, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert detector(noise) == []
