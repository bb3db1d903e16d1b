"""Every writer labels and signs by default: PNG (watermark, XMP, Ed25519 chunk, C2PA),
MIDI (text meta event + sidecar), WAV (RIFF INFO + C2PA), poems (footer + sidecar);
``provenance=False`` and ``MUSELAB_PROVENANCE=0`` turn it off."""

from __future__ import annotations

import json
import shutil
import stat
import wave
from pathlib import Path

import mido
import numpy as np
import pytest
from PIL import Image

from muselab.image.io import read_png_metadata, save_png
from muselab.provenance import apply, keys, label, manifest
from muselab.provenance import watermark as wm
from muselab.provenance.verify import verify
from tests.provenance.conftest import edit_one_pixel, photo

META = {"seed": 11, "model": "hinge-gan", "run": "00001-test", "parent": 7}


def test_png_is_marked_labelled_and_signed(prov_home: Path, tmp_path: Path) -> None:
    img = photo("coffee.png", 320)
    save_png(tmp_path / "a.png", img, META)
    save_png(tmp_path / "b.png", img, META)  # same generation again
    with Image.open(tmp_path / "a.png") as im:
        pixels, text = np.asarray(im), dict(im.text)
    with Image.open(tmp_path / "b.png") as im:
        assert np.array_equal(np.asarray(im), pixels)  # deterministic marked pixels
    assert read_png_metadata(tmp_path / "a.png") == META  # the old record is untouched
    assert label.DIGITAL_SOURCE_TYPE in text[label.XMP_KEY]
    assert text[label.PNG_LABEL_KEY] == label.LABEL
    signed = json.loads(text[apply.PNG_MANIFEST_KEY])
    rec = signed["manifest"]
    assert (rec["seed"], rec["model"], rec["parents"], rec["parameters"]) == (11, "hinge-gan",
                                                                             [7], META)
    assert rec["software"]["name"] == "muselab" and rec["watermark"]["embedded"]
    assert wm.extract(pixels, search=False).work_id == int(rec["work_id"], 16)
    c2pa = manifest.c2pa_read((tmp_path / "a.png").read_bytes(), "image/png")
    assert c2pa.present and c2pa.valid and c2pa.trusted
    assert c2pa.manifest["work_id"] == rec["work_id"]
    v = verify(tmp_path / "a.png")
    assert (v.state, v.label, v.watermark) == ("verified", True, rec["work_id"])
    assert v.signature == "c2pa (this installation)"


def test_one_pixel_edit_is_tampered(prov_home: Path, tmp_path: Path) -> None:
    save_png(tmp_path / "a.png", photo("chelsea.png", 256), META)
    edit_one_pixel(tmp_path / "a.png")
    v = verify(tmp_path / "a.png")
    assert v.state == "tampered" and v.signature == "invalid"
    assert any("C2PA" in n for n in v.notes) and any("content changed" in n for n in v.notes)


def test_small_images_are_labelled_and_signed_without_a_mark(prov_home: Path,
                                                              tmp_path: Path) -> None:
    img = photo("astronaut.png", 64)
    save_png(tmp_path / "e.png", img, META)
    with Image.open(tmp_path / "e.png") as im:
        assert np.array_equal(np.asarray(im), img)  # too small for a robust mark
    v = verify(tmp_path / "e.png")
    assert (v.state, v.watermark) == ("verified", None)


def test_off_switches(prov_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = photo("coffee.png", 256)
    save_png(tmp_path / "off.png", img, META, provenance=False)
    save_png(tmp_path / "plain.png", img)  # no metadata: training data, not an output
    monkeypatch.setenv("MUSELAB_PROVENANCE", "0")
    save_png(tmp_path / "env.png", img, META)
    for name in ("off.png", "plain.png", "env.png"):
        with Image.open(tmp_path / name) as im:
            assert np.array_equal(np.asarray(im), img)
        assert verify(tmp_path / name, search=False).state == "none"


def test_key_is_private_and_made_once(prov_home: Path) -> None:
    first = keys.identity()
    key = prov_home / "provenance" / keys.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert keys.identity().key_pem == first.key_pem


def _piece() -> object:
    from muselab.music.tokens import Key, Note, Piece

    notes = [Note(4 * i, 4, 60 + (i % 5), 0, 80) for i in range(8)]
    return Piece(notes=notes, key=Key(0, False), time_signature=(4, 4), tempo=100.0,
                 style="folk")


def test_midi_text_event_and_sidecar(prov_home: Path, tmp_path: Path) -> None:
    from muselab.music.midi import read_midi, write_midi

    path = write_midi(_piece(), tmp_path / "t.mid", {"seed": 5})  # type: ignore[arg-type]
    texts = [m.text for t in mido.MidiFile(path).tracks for m in t if m.type == "text"]
    assert any("trainedAlgorithmicMedia" in t for t in texts)
    assert len(read_midi(path).notes) == 8  # still a normal MIDI file
    v = verify(path)
    assert (v.state, v.label) == ("verified", True)
    rec = json.loads(manifest.sidecar_path(path).read_text())["manifest"]
    assert rec["seed"] == 5 and rec["kind"] == "midi"
    path.write_bytes(path.read_bytes()[:-4] + b"\x00\xff\x2f\x00")  # change the last event
    assert verify(path).state == "tampered"


def _wav(path: Path) -> None:
    t = np.arange(8000) / 8000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes())


def test_wav_info_label_and_c2pa(prov_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    _wav(path)
    rec = apply.wav_labelled(str(path), {"seed": 2}, "a.wav")
    with wave.open(str(path)) as w:  # still a valid WAV with the same samples
        assert w.getnframes() == 8000
    v = verify(path)
    assert (v.state, v.label, v.work_id) == ("verified", True, rec["work_id"])
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"data") + 100] ^= 1  # one sample
    path.write_bytes(bytes(raw))
    assert verify(path).state == "tampered"


def test_poems_footer_and_sidecar(prov_home: Path, tmp_path: Path) -> None:
    from muselab.poetry.poet import Poem
    from muselab.poetry.service import read_poems_file, save_poems

    poems = [Poem(text="床前明月光", lang="zh", form="jueju5", seed=s, model="tang",
                  constrained=True) for s in (1, 2)]
    path = tmp_path / "p.jsonl"
    save_poems(poems, path)
    lines = path.read_text("utf-8").splitlines()
    assert json.loads(lines[-1])[label.FOOTER_KEY] == label.LABEL
    assert [r["seed"] for r in read_poems_file(path)] == [1, 2]  # the footer is skipped
    assert verify(path).state == "verified"
    path.write_text(path.read_text("utf-8").replace("明月", "白日"), "utf-8")
    assert verify(path).state == "tampered"


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="needs the fluidsynth binary")
@pytest.mark.parametrize("c2pa", [True, False], ids=["c2pa", "sidecar"])
def test_rendered_wav_names_its_midi(prov_home: Path, tmp_path: Path, c2pa: bool,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from muselab.io import sha256_file
    from muselab.music.midi import render_wav, write_midi

    if not c2pa:
        monkeypatch.setattr(manifest, "c2pa_available", lambda: False)
    mid = write_midi(_piece(), tmp_path / "t.mid")  # type: ignore[arg-type]
    assert render_wav(mid, tmp_path / "t.wav", metadata={"seed": 4}) is None
    v = verify(tmp_path / "t.wav")
    assert (v.state, v.label) == ("verified", True)
    assert v.signature.startswith("c2pa" if c2pa else "ed25519")
    if c2pa:
        rec = manifest.c2pa_read((tmp_path / "t.wav").read_bytes(), "audio/wav").manifest
    else:
        rec = manifest.read_sidecar(tmp_path / "t.wav")["manifest"]
    assert rec["parents"] == [f"sha256:{sha256_file(mid)}"] and rec["seed"] == 4


def test_without_c2pa_ed25519_still_signs(prov_home: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest, "c2pa_available", lambda: False)
    save_png(tmp_path / "a.png", photo("chelsea.png", 256), META)
    assert not manifest.c2pa_read((tmp_path / "a.png").read_bytes(), "image/png").present
    v = verify(tmp_path / "a.png")
    assert (v.state, v.signature) == ("verified", "ed25519 (this installation)")
    edit_one_pixel(tmp_path / "a.png")
    assert verify(tmp_path / "a.png").state == "tampered"


@pytest.mark.parametrize("comment", ['{"bars": 4}', "stylize walk"], ids=["json", "text"])
def test_gif_comment_label_and_sidecar(prov_home: Path, tmp_path: Path, comment: str) -> None:
    from muselab.image.io import save_gif

    frames = [photo("coffee.png", 64) // (i + 1) for i in range(3)]
    save_gif(tmp_path / "w.gif", frames, fps=10, comment=comment)
    with Image.open(tmp_path / "w.gif") as gif:
        assert gif.n_frames == 3
        text = gif.info["comment"].decode()
    if comment.startswith("{"):
        assert json.loads(text)["bars"] == 4  # still the caller's JSON, label added as keys
    assert label.LABEL in text
    v = verify(tmp_path / "w.gif")
    assert (v.state, v.label, v.signature) == ("verified", True, "ed25519 (this installation)")
    first = (tmp_path / "w.gif").read_bytes()
    save_gif(tmp_path / "w.gif", frames, fps=10, comment=comment)
    assert (tmp_path / "w.gif").read_bytes() == first  # same walk, same bytes
    raw = bytearray((tmp_path / "w.gif").read_bytes())
    raw[len(raw) // 3] ^= 0x01  # inside the first frame's image data
    (tmp_path / "w.gif").write_bytes(bytes(raw))
    assert verify(tmp_path / "w.gif", watermark=False).state == "tampered"


def test_cli_no_provenance_flag(prov_home: Path, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from muselab.cli import app

    monkeypatch.setenv("MUSELAB_PROVENANCE", "1")  # restored after the test
    for flag, want in (([], "verified"), (["--no-provenance"], "none")):
        out = tmp_path / (flag[0][2:] if flag else "on")
        res = CliRunner().invoke(app, [*flag, "sample", "emoji-vae32", "--n", "1",
                                       "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert verify(out / "seed000000.png", search=False).state == want
