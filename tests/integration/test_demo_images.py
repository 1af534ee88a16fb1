"""`outpaint demo --images DIR --meta k=v`: your own images through the emulated stack; refusals are cards."""

from __future__ import annotations

from PIL import Image

from outpaint.cli import main


def test_own_images_are_planned_run_and_refusals_shown_with_their_reason(tmp_path, capsys):
    images = tmp_path / "mine"
    images.mkdir()
    Image.new("RGB", (800, 600), (40, 120, 200)).save(images / "sea.jpg")
    Image.new("RGB", (600, 900), (200, 120, 40)).save(images / "door.png")
    (images / "broken.jpg").write_bytes(b"not an image at all")
    (images / "notes.txt").write_text("ignored: not an image file name")
    out = tmp_path / "out"

    code = main(
        ["demo", "--images", str(images), "--meta", "ratio=16:9", "--out", str(out), "--task-seconds", "0.2"]
    )

    text = capsys.readouterr().out
    assert code == 0, text
    assert "2 results with the planned geometry, 1 upload(s) refused" in text
    assert len(list((out / "results").iterdir())) == 2
    page = (out / "index.html").read_text()
    assert '<div class="refused"><b>REJECTED</b><br>source.not_an_image<br>not an image' in page
    assert '<img src="sources/broken.jpg"' not in page  # no broken picture: a card and a link
    assert "ratio=16:9" in page
    assert "notes.txt" not in page


def test_an_images_folder_without_images_is_refused_with_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()

    assert main(["demo", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2

    assert "no image files" in capsys.readouterr().err
