"""Build the deployable code package for Function Compute: ``build/outpaint-fc.zip``.

    python deploy/package.py [--python-version 3.12] [--out build/outpaint-fc.zip]

The zip's root holds ``handler.py`` (FC handler ``handler.on_upload`` / ``handler.on_tick``), the
``outpaint`` package without ``outpaint/local`` (the emulators) and the operator CLI (``outpaint/cli``,
``__main__``): nothing on the handlers' import path uses them (the smoke test proves it),
the custom-runtime ``bootstrap``, and the runtime dependencies of pyproject's ``[project]
dependencies`` installed for manylinux x86_64 and the target CPython, binary wheels only (no build
step runs for the target). No test dependencies, no ``__pycache__``/``*.pyc``.

Two dependencies publish only source distributions:
- ``oss2`` is pure Python: it is built into a wheel here (``pip wheel``, cached by pip) and installed
  with ``--no-deps``; its own requirements are read from that wheel and installed as binary wheels.
- ``crcmod`` (required by oss2) has a C extension, so a locally built wheel would match this machine,
  not FC. ``crcmod-plus`` ships manylinux abi3 wheels of the same ``crcmod`` module (same API) and is
  installed instead; the smoke test checks oss2's CRC-64 through it.

The zip is reproducible: entries sorted, timestamps fixed, permissions normalised.
"""

from __future__ import annotations

import argparse
import email.parser
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "outpaint-fc.zip"
DEFAULT_PYTHON = "3.12"  # s.yaml runtime python3.12
SOURCE_ONLY = {"oss2"}  # built into a wheel locally (pure Python)
REPLACED = {"crcmod": "crcmod-plus==2.3.6"}  # sdist with a C extension -> binary drop-in
# glibc: FC python3.12 is Debian 11 (2.31), python3.10 Debian 10 (2.28). Pillow 13 ships only
# manylinux_2_27/2_28 wheels, so manylinux2014 alone would not find it; 2_28 is the highest both take.
PLATFORMS = ["manylinux2014_x86_64"] + [f"manylinux_2_{v}_x86_64" for v in (17, 24, 26, 27, 28)]
# Never imported by handler.py's code path: outpaint.local (emulators, local FC runner) and the
# operator CLI (outpaint.cli, `python -m outpaint`), which runs on a workstation, not in FC.
EXCLUDED_PACKAGES = {"local", "cli", "__main__.py"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def project_dependencies() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    subprocess.run(cmd, check=True)  # noqa: S603 - fixed pip arguments built here


def _wheel_requirements(wheel: Path) -> list[str]:
    """Requires-Dist of a wheel, without extras-only requirements."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
    return [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]


def install_dependencies(target: Path, python_version: str, work: Path) -> None:
    binary: list[str] = []
    local_wheels: list[Path] = []
    wheel_dir = work / "wheels"
    for req in project_dependencies():
        if _name(req) not in SOURCE_ONLY:
            binary.append(req)
            continue
        _pip("wheel", "--no-deps", "--wheel-dir", str(wheel_dir), req)
        wheel = next(wheel_dir.glob(_name(req).replace("-", "_") + "-*.whl"))
        if not wheel.name.endswith("-py3-none-any.whl") and "-py2.py3-none-any" not in wheel.name:
            raise SystemExit(f"package.py: {wheel.name} is not pure Python; it cannot be built here for FC")
        local_wheels.append(wheel)
        for sub in _wheel_requirements(wheel):
            binary.append(REPLACED.get(_name(sub), sub))
    platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
    _pip(
        "install",
        "--target",
        str(target),
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        *platform_args,
        "--only-binary=:all:",
        "--no-compile",
        *binary,
    )
    _pip("install", "--target", str(target), "--no-deps", "--no-compile", *map(str, local_wheels))


def copy_sources(target: Path, python_version: str) -> None:
    shutil.copy2(ROOT / "handler.py", target / "handler.py")
    src = ROOT / "src" / "outpaint"

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}
        if Path(directory) == src:
            skipped |= {n for n in names if n in EXCLUDED_PACKAGES}
        return skipped

    shutil.copytree(src, target / "outpaint", ignore=ignore)
    bootstrap = (ROOT / "deploy" / "bootstrap").read_text(encoding="utf-8")
    (target / "bootstrap").write_text(bootstrap.replace("@PYTHON_VERSION@", python_version), encoding="utf-8")


def write_zip(source: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    files = sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and not (set(p.relative_to(source).parts) & {"__pycache__"}) and p.suffix != ".pyc"
    )
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=FIXED_TIME)
            executable = path.name == "bootstrap"
            info.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(out)


def build(out: Path = DEFAULT_OUT, python_version: str = DEFAULT_PYTHON) -> Path:
    with tempfile.TemporaryDirectory(prefix="outpaint-package-") as tmp:
        work = Path(tmp)
        stage = work / "stage"
        stage.mkdir()
        install_dependencies(stage, python_version, work)
        # pip --target may leave console scripts and caches that FC does not need.
        shutil.rmtree(stage / "bin", ignore_errors=True)
        copy_sources(stage, python_version)
        write_zip(stage, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--python-version", default=DEFAULT_PYTHON, help="target CPython, e.g. 3.12")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    start = time.monotonic()
    out = build(args.out, args.python_version)
    with zipfile.ZipFile(out) as zf:
        unpacked = sum(i.file_size for i in zf.infolist())
        count = len(zf.infolist())
    print(
        f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}: {out.stat().st_size / 1e6:.1f} MB "
        f"zipped, {unpacked / 1e6:.1f} MB unpacked, {count} files, CPython {args.python_version}, "
        f"built in {time.monotonic() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
