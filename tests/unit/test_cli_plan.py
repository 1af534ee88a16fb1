"""`outpaint plan` on real (Pillow-generated) image files."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from outpaint.cli import main

PLAN_ENV = (
    "OUTPAINT_BUCKET",
    "OUTPAINT_DEFAULT_RATIO",
    "OUTPAINT_DEFAULT_GRAVITY",
    "OUTPAINT_BEST_QUALITY",
    "OUTPAINT_ADD_WATERMARK",
    "OUTPAINT_LIMIT_IMAGE_SIZE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in PLAN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (1600, 1200), "teal").save(path, "JPEG")
    return path


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["plan", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_json_variants(capsys, photo):
    code, report = run_json(
        capsys, str(photo), "--meta", "outpaint-ratio=21:9,16:9", "--meta", "size=1200x628"
    )
    assert code == 0
    assert report["image"] | {"path": None} == {
        "path": None,
        "width": 1600,
        "height": 1200,
        "format": "JPEG",
        "size_bytes": photo.stat().st_size,
        "frames": 1,
        "mode": "RGB",
    }
    assert [v["name"] for v in report["variants"]] == ["7x3", "16x9", "1200x628"]
    wide, api, sized = report["variants"]
    assert wide["parameters"] == {
        "left_offset": 600,
        "right_offset": 600,
        "best_quality": False,
        "add_watermark": True,
        "limit_image_size": True,
    }
    assert (wide["output_width"], wide["output_height"]) == (2800, 1200)
    assert api["parameters"]["output_ratio"] == "16:9"
    assert sized["finish"] == {"width": 1200, "height": 628}
    assert len(sized["digest"]) == 64


def test_text_output(capsys, photo):
    assert (
        main(["plan", str(photo), "--meta", "outpaint-size=1200x628", "--meta", "outpaint-colour=red"]) == 0
    )
    out = capsys.readouterr().out
    assert "JPEG 1600×1200" in out
    assert "variant 1200x628" in out
    assert '"left_offset": 346' in out
    assert "API output: 2293×1200" in out
    assert "finish:     resize to 1200×628" in out
    assert "warning:    unknown key outpaint-colour ignored" in out


def test_refusal_exits_1_with_code(capsys, photo):
    assert main(["plan", str(photo), "--meta", "outpaint-ratio=4:3"]) == 1
    assert "refused: plan.already_at_ratio: outpaint-ratio='4:3'" in capsys.readouterr().err
    code, report = run_json(capsys, str(photo), "--meta", "outpaint-scale=5")
    assert code == 1
    assert report["error"]["code"] == "plan.scale_out_of_range"


def test_animated_image_is_refused(capsys, tmp_path):
    path = tmp_path / "anim.webp"
    frames = [Image.new("RGB", (600, 600), color) for color in ("red", "blue")]
    frames[0].save(path, "WEBP", save_all=True, append_images=frames[1:])
    code, report = run_json(capsys, str(path), "--meta", "outpaint-ratio=16:9")
    assert code == 1
    assert report["error"]["code"] == "plan.animated"


@pytest.mark.parametrize(
    ("size", "fmt", "code"),
    [((300, 800), "PNG", "plan.image_too_small"), ((800, 600), "GIF", "plan.unsupported_format")],
)
def test_image_limits_from_the_real_file(capsys, tmp_path, size, fmt, code):
    path = tmp_path / f"image.{fmt.lower()}"
    Image.new("RGB", size).save(path, fmt)
    exit_code, report = run_json(capsys, str(path), "--meta", "ratio=1:1")
    assert (exit_code, report["error"]["code"]) == (1, code)


def test_defaults_from_environment_and_flags(capsys, photo, monkeypatch):
    monkeypatch.setenv("OUTPAINT_DEFAULT_RATIO", "1:1")
    monkeypatch.setenv("OUTPAINT_ADD_WATERMARK", "false")
    code, report = run_json(capsys, str(photo))
    assert code == 0
    [variant] = report["variants"]
    assert variant["parameters"]["output_ratio"] == "1:1"
    assert variant["parameters"]["add_watermark"] is False

    code, report = run_json(capsys, str(photo), "--default-ratio", "16:9", "--watermark", "--best-quality")
    [variant] = report["variants"]
    assert variant["parameters"]["output_ratio"] == "16:9"
    assert variant["parameters"]["add_watermark"] is True
    assert variant["parameters"]["best_quality"] is True


def test_no_metadata_and_no_default_is_skipped(capsys, photo):
    code, report = run_json(capsys, str(photo))
    assert (code, report["skipped"], report["variants"]) == (0, "no expansion requested", [])


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--default-gravity", "up"], {}, "invalid defaults"),
        ([], {"OUTPAINT_DEFAULT_GRAVITY": "up"}, "OUTPAINT_DEFAULT_GRAVITY"),
    ],
)
def test_bad_defaults_exit_2(capsys, photo, monkeypatch, argv, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["plan", str(photo), *argv]) == 2
    assert message in capsys.readouterr().err


def test_unreadable_file_exits_2(capsys, tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("not an image")
    assert main(["plan", str(path), "--meta", "ratio=1:1"]) == 2
    assert "source.not_an_image" in capsys.readouterr().err


def test_bad_meta_syntax_is_a_usage_error(capsys, photo):
    with pytest.raises(SystemExit) as info:
        main(["plan", str(photo), "--meta", "ratio"])
    assert info.value.code == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
