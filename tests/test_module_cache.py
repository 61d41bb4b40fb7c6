"""The disk cache of generated module source (``bpm.compiler.module_cache``): a model
compiled once loads in another process without deriving it or importing sympy; the
entry's key covers everything the text depends on; a damaged, foreign or unsafe entry
is never used; ``BPM_CACHE=0`` turns it off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bpm.compiler import loader, module_cache
from bpm.compiler.errors import Source

ROOT = Path(__file__).parent.parent
LAC = ROOT / "models" / "lac.bpm"
PROBE = (
    "import sys\n"
    "from bpm.compiler.loader import load\n"
    "cls = load(sys.argv[1])\n"
    "print(cls.name, 'sympy' in sys.modules)\n"
)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder of this test, and an empty in-memory cache of classes."""
    monkeypatch.setenv("BPM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BPM_CACHE", raising=False)
    monkeypatch.setattr(loader, "_CACHE", {})
    return tmp_path / "cache" / "modules"


def probe(env: dict) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, str(LAC)], capture_output=True,
                          text=True, check=True, env=env, cwd=ROOT)  # fmt: skip
    return done.stdout.strip()


def test_a_model_compiled_once_loads_from_the_cache_without_sympy(cache):
    env = dict(os.environ)
    assert probe(env) == "lac True"  # compiled: sympy derived the closed forms
    (entry,) = cache.glob("*.py")
    assert probe(env) == "lac False"  # read back: no derivation, no sympy
    text = LAC.read_text()
    generated = loader.generate_source(Source(text, str(LAC)), 2000)
    assert entry.read_text().split("\n", 1)[1] == generated  # the same bytes
    assert module_cache.read(entry.stem) == generated


def test_the_key_covers_the_text_its_name_and_the_tree_budget():
    key = module_cache.entry_key("model a", "a.bpm", 2000)
    assert key == module_cache.entry_key("model a", "a.bpm", 2000.0)
    others = {
        module_cache.entry_key("model b", "a.bpm", 2000),
        module_cache.entry_key("model a", "b.bpm", 2000),
        module_cache.entry_key("model a", "a.bpm", float("inf")),
    }
    assert key not in others and len(others) == 3


def test_a_damaged_or_foreign_entry_is_not_used(cache):
    cls = loader.load(LAC)
    (entry,) = cache.glob("*.py")
    good = entry.read_text()
    entry.write_text(good.replace(entry.stem, "0" * 64, 1))  # another key's header
    assert module_cache.read(entry.stem) is None
    entry.write_text(good.split("\n", 1)[0] + "\nraise RuntimeError('damaged')\n")
    loader._CACHE.clear()
    again = loader.load(LAC)  # generated afresh, and the entry repaired
    assert again.state_names == cls.state_names
    assert entry.read_text() == good


def test_a_folder_others_may_write_to_is_not_read(cache):
    loader.load(LAC)
    (entry,) = cache.glob("*.py")
    cache.chmod(0o777)
    try:
        assert module_cache.read(entry.stem) is None
    finally:
        cache.chmod(0o700)
    assert module_cache.read(entry.stem) is not None


def test_bpm_cache_0_reads_and_writes_nothing(cache, monkeypatch):
    monkeypatch.setenv("BPM_CACHE", "0")
    assert module_cache.cache_dir() is None
    loader.load(LAC)
    assert not cache.exists()


def test_the_default_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("BPM_CACHE_DIR", raising=False)
    monkeypatch.delenv("BPM_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert module_cache.cache_dir() == tmp_path / "bpm" / "modules"
