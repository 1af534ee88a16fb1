"""`outpaint demo` and the stack flags it shares with `outpaint local up`, without starting a stack."""

from __future__ import annotations

import pytest

from outpaint.cli import demo, local, main


def test_an_earlier_demo_output_is_replaced_but_other_files_survive(tmp_path):
    out = tmp_path / "out"
    (out / "sources").mkdir(parents=True)
    (out / "sources" / "old.jpg").write_bytes(b"x")
    (out / "results").mkdir()
    for name in ("index.html", "contact-sheet.png", "stack.log"):
        (out / name).write_text("old")
    (out / "notes.txt").write_text("mine")

    demo.prepare_out(out)

    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def test_a_new_or_empty_out_dir_is_used(tmp_path):
    demo.prepare_out(tmp_path / "new" / "out")
    assert (tmp_path / "new" / "out").is_dir()
    demo.prepare_out(tmp_path / "new" / "out")  # empty
    assert list((tmp_path / "new" / "out").iterdir()) == []


def test_a_folder_that_is_not_a_demo_output_is_refused_with_exit_2(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("years of work")

    assert main(["demo", "--out", str(tmp_path)]) == 2

    assert (tmp_path / "thesis.tex").read_text() == "years of work"
    assert list(tmp_path.iterdir()) == [tmp_path / "thesis.tex"]
    err = capsys.readouterr().err
    assert "is not empty and is not an earlier demo's output" in err


def test_an_out_path_that_is_a_file_is_refused_with_exit_2(tmp_path, capsys):
    target = tmp_path / "demo-output"
    target.write_text("a file")

    assert main(["demo", "--out", str(target)]) == 2

    assert target.read_text() == "a file"
    assert "is a file, not a directory" in capsys.readouterr().err


def test_demo_help_shows_the_defaults_the_demo_uses(capsys):
    with pytest.raises(SystemExit):
        demo.build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "emulated task duration (default 1-3)" in text
    assert "(default 1.0;" in text
    assert "2-5" not in text


def test_local_up_help_shows_its_own_defaults(capsys):
    with pytest.raises(SystemExit):
        local.build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "emulated task duration (default 2-5)" in text


@pytest.mark.parametrize("value", ["5-2", "x", "1-y", "-1"])
def test_a_bad_task_seconds_range_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        local.build_parser().parse_args(["--task-seconds", value])
    assert exit_info.value.code == 2
    assert "argument --task-seconds: expected MIN-MAX seconds" in capsys.readouterr().err


def test_task_seconds_ranges_parse_to_pairs():
    assert local.build_parser().parse_args(["--task-seconds", "0.5-1"]).task_seconds == (0.5, 1.0)
    assert local.build_parser().parse_args(["--task-seconds", "3"]).task_seconds == (3.0, 3.0)
    assert demo.build_parser().parse_args([]).task_seconds == (1.0, 3.0)
    assert local.build_parser().parse_args([]).task_seconds == (2.0, 5.0)


def test_dashscope_real_targets_the_real_service_and_the_emulator_is_the_default():
    parser = local.build_parser()

    assert local.config_from(parser.parse_args([])).dashscope_url is None
    real = local.config_from(parser.parse_args(["--dashscope", "real"]))
    assert real.dashscope_url == "https://dashscope.aliyuncs.com/api/v1"
    assert real.public_endpoint is None  # inputs through DashScope's temporary storage
    other = local.config_from(parser.parse_args(["--dashscope-url", "https://example.invalid/api/v1"]))
    assert other.dashscope_url == "https://example.invalid/api/v1"


def test_demo_real_without_a_key_is_refused_before_anything_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)

    assert main(["demo", "--dashscope", "real", "--out", str(tmp_path / "out")]) == 2

    assert "needs DASHSCOPE_API_KEY" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_limit_below_one_is_refused(tmp_path, capsys):
    assert main(["demo", "--limit", "0", "--out", str(tmp_path / "out")]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err


def test_local_up_against_the_real_service_needs_yes_and_starts_nothing_without(capsys):
    assert main(["local", "up", "--dashscope", "real"]) == 2

    assert "pass --yes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--meta", "ratio=16:9"], "--meta applies to --images only"),
        (["--price", "-1"], "--price must not be negative"),
    ],
)
def test_flags_that_make_no_sense_are_refused_with_exit_2(flags, message, tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "out"), *flags]) == 2
    assert message in capsys.readouterr().err
