"""The FC code package: right contents for CPython 3.12 on manylinux, and it imports when unpacked.

The deliverable targets CPython 3.12 (s.yaml runtime python3.12); its compiled wheels cannot load in
the interpreter running these tests unless that is 3.12 too. So the same build (deploy/package.py,
same dependency set, same layout) is also made for the running interpreter's version, and that zip is
unpacked and imported in a fresh interpreter that sees nothing but the unpacked zip and the standard
library. The 3.12 zip itself is checked statically: every compiled module is cp312 or abi3.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = [pytest.mark.package, pytest.mark.slow]

TARGET = "3.12"
LOCAL = f"{sys.version_info.major}.{sys.version_info.minor}"
NOT_IN_PRODUCTION = ("pytest", "_pytest", "hypothesis", "ruff", "dashscope", "alibabacloud_oss_v2", "yaml")


def _build(package_module: ModuleType, out: Path, version: str) -> Path:
    start = time.monotonic()
    package_module.build(out, version)
    print(
        f"\npackage CPython {version}: {out.stat().st_size / 1e6:.1f} MB in {time.monotonic() - start:.1f} s",
        file=sys.stderr,
    )
    return out


@pytest.fixture(scope="module")
def fc_zip(package_module: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(package_module, tmp_path_factory.mktemp("pkg") / "outpaint-fc.zip", TARGET)


@pytest.fixture(scope="module")
def local_zip(package_module: ModuleType, fc_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if LOCAL == TARGET:
        return fc_zip
    return _build(package_module, tmp_path_factory.mktemp("pkg-local") / f"outpaint-fc-{LOCAL}.zip", LOCAL)


def test_zip_holds_the_handler_the_code_and_the_dependencies(fc_zip: Path) -> None:
    with zipfile.ZipFile(fc_zip) as zf:
        names = zf.namelist()
        infos = {i.filename: i for i in zf.infolist()}
        bootstrap = zf.read("bootstrap").decode()
    tops = {n.split("/", 1)[0] for n in names}
    assert "handler.py" in names
    assert "outpaint/__init__.py" in names
    assert "outpaint/config.py" in names
    for module in ("oss2", "crcmod", "httpx", "pydantic", "pydantic_core", "pydantic_settings", "PIL"):
        assert module in tops, f"{module} missing"
    assert not [n for n in names if n.startswith("outpaint/local/")], "the emulators are not shipped"
    assert not [n for n in names if n.startswith(("outpaint/cli/", "outpaint/__main__"))], "nor the CLI"
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert not tops & set(NOT_IN_PRODUCTION), "no test or local-stack dependencies"
    assert not [n for n in names if n.startswith("bin/")]
    # oss2 comes without the sdist-only crcmod; crcmod-plus provides the module.
    assert any(re.match(r"crcmod_plus-[\d.]+\.dist-info/", n) for n in names)
    assert not any(re.match(r"crcmod-[\d.]+\.dist-info/", n) for n in names)
    # The custom-runtime entry point is executable and pinned to the target version.
    assert (infos["bootstrap"].external_attr >> 16) & 0o111
    assert bootstrap.startswith("#!/bin/bash")
    assert "@PYTHON_VERSION@" not in bootstrap
    assert f'"{TARGET}"' in bootstrap
    assert "-m outpaint.runtime" in bootstrap


def test_compiled_modules_match_fc_python_312_on_manylinux(fc_zip: Path) -> None:
    with zipfile.ZipFile(fc_zip) as zf:
        names = zf.namelist()
        wheels = [zf.read(n).decode() for n in names if n.endswith(".dist-info/WHEEL")]
    extensions = [n for n in names if n.endswith(".so")]
    assert extensions, "pydantic-core, Pillow and crcmod-plus ship compiled modules"
    for so in extensions:
        base = so.rsplit("/", 1)[-1]
        if ".cpython-" in base:
            assert ".cpython-312-x86_64-linux-gnu.so" in base, so
        elif ".abi3." not in base:
            assert ".so." in so or base.startswith("lib") or "/" in so, so  # vendored shared libraries
    for wheel in wheels:
        for tag in re.findall(r"^Tag: (.+)$", wheel, re.MULTILINE):
            python, abi, platform = tag.split("-")
            assert platform == "any" or "manylinux" in platform, tag
            assert platform == "any" or "x86_64" in platform, tag
            assert python.startswith(("py3", "py2", "cp312", "cp3")), tag
            if abi not in ("none", "abi3"):
                assert abi == "cp312", tag


def test_zip_size_is_reported_and_reasonable(fc_zip: Path) -> None:
    size = fc_zip.stat().st_size
    with zipfile.ZipFile(fc_zip) as zf:
        unpacked = sum(i.file_size for i in zf.infolist())
    print(f"\n{fc_zip.name}: {size / 1e6:.1f} MB zipped, {unpacked / 1e6:.1f} MB unpacked", file=sys.stderr)
    # FC accepts up to 500 MB unpacked for a directly uploaded zip; stay far below it.
    assert size < 50e6
    assert unpacked < 200e6


SMOKE = r"""
import importlib, json, os, pkgutil, sys, sysconfig
root = sys.argv[1]
sys.path.insert(0, root)
os.environ.update({"OUTPAINT_BUCKET": "smoke-bucket", "DASHSCOPE_API_KEY": "sk-smoke"})
import handler
for name in ("on_upload", "on_tick", "initialize"):
    assert callable(getattr(handler, name)), name
handler.initialize(None)  # reads Settings from the environment (pydantic + pydantic-settings)
import outpaint
assert outpaint.__file__.startswith(root), outpaint.__file__
modules = sorted(m.name for m in pkgutil.walk_packages(outpaint.__path__, "outpaint."))
assert not [m for m in modules if m.startswith(("outpaint.local", "outpaint.cli"))], modules
for name in modules:
    importlib.import_module(name)
import oss2, oss2.utils, crcmod.crcmod, httpx, PIL.Image, functions_framework, pydantic_core
crc = oss2.utils.Crc64(0)
crc.update(b"123456789")
assert crc.crc == 11051210869376104954, crc.crc
assert crcmod.crcmod._usingExtension, "crcmod-plus C extension not loaded"
import io
img = PIL.Image.new("RGB", (8, 8)); buf = io.BytesIO(); img.save(buf, "PNG")
assert PIL.Image.open(io.BytesIO(buf.getvalue())).size == (8, 8)
stdlib = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
outside = sorted(
    m.__name__ for m in list(sys.modules.values())
    if getattr(m, "__file__", None)
    and not m.__file__.startswith(root)
    and not any(m.__file__.startswith(p) for p in stdlib)
)
assert not outside, f"imported from outside the package: {outside}"
print(json.dumps({"modules": len(modules), "loaded": len(sys.modules)}))
"""


def test_unpacked_zip_imports_in_a_fresh_interpreter(local_zip: Path, tmp_path: Path) -> None:
    root = tmp_path / "code"
    with zipfile.ZipFile(local_zip) as zf:
        zf.extractall(root)
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
    start = time.monotonic()
    # -I: ignore PYTHON* variables and the user site; -S: no site-packages (so not the venv).
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SMOKE, str(root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    print(f"\nimport smoke test: {time.monotonic() - start:.1f} s, {proc.stdout.strip()}", file=sys.stderr)


def test_bootstrap_refuses_a_python_it_was_not_built_for(fc_zip: Path, tmp_path: Path) -> None:
    if LOCAL == TARGET:
        pytest.skip("the local interpreter is the target version")
    with zipfile.ZipFile(fc_zip) as zf:
        zf.extract("bootstrap", tmp_path)
    path = tmp_path / "bootstrap"
    path.chmod(0o755)
    env = {"PATH": os.environ.get("PATH", ""), "OUTPAINT_PYTHON": sys.executable}
    proc = subprocess.run([str(path)], capture_output=True, text=True, env=env, timeout=30, check=False)
    assert proc.returncode == 1
    assert f"holds CPython {TARGET} wheels" in proc.stderr
