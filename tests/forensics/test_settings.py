"""A gallery's own settings (forensics/settings.py) through the CLI, on SQLite and PostgreSQL: the
round-trip vectors at enrollment are off by default, turned on by `gallery init --roundtrip`,
changed by `gallery settings`, shown by `gallery settings` and `gallery list`, and every change is
an audit event (who, when, old, new) that keeps `audit verify` intact."""

from __future__ import annotations

import pytest

from forensics.testing import run_cli as run
from forensics.enroll import enroll
from forensics.errors import ForensicsError
from forensics.manifest import EnrollItem
from forensics.settings import ROUNDTRIP_AT_ENROLLMENT, GallerySettings, read_settings, set_roundtrip_at_enrollment
from gallery import audit
from gallery.db import open_gallery
from gallery.sealed import SETTING


def setting_events(db) -> list:
    with open_gallery(db, create=False) as g:
        return [e for e in audit.iter_events(g) if e.action == SETTING]


def test_off_by_default_on_with_init_roundtrip_and_every_change_audited(gallery_url):
    run("gallery", "init", "--db", gallery_url)
    assert "round-trip vectors at enrollment │ off" in run("gallery", "settings", "--db", gallery_url).output
    assert "round-trip vectors at enrollment: off" in run("gallery", "list", "--db", gallery_url).output
    assert setting_events(gallery_url) == []

    res = run("gallery", "init", "--roundtrip", "--operator", "alice", "--db", gallery_url)
    assert "round-trip vectors at enrollment: off → on" in res.output
    assert "faces are already enrolled" not in res.output  # an empty gallery has nothing to build
    assert "round-trip vectors at enrollment: on" in run("gallery", "list", "--db", gallery_url).output
    res = run("gallery", "settings", "--no-roundtrip", "--operator", "bob", "--db", gallery_url)
    assert "on → off" in res.output and "round-trip vectors at enrollment │ off" in res.output
    assert "already off" in run("gallery", "settings", "--no-roundtrip", "--db", gallery_url).output

    events = setting_events(gallery_url)
    assert [(e.actor, e.target, e.details) for e in events] == [
        ("alice", ROUNDTRIP_AT_ENROLLMENT, {"setting": ROUNDTRIP_AT_ENROLLMENT, "old": False, "new": True}),
        ("bob", ROUNDTRIP_AT_ENROLLMENT, {"setting": ROUNDTRIP_AT_ENROLLMENT, "old": True, "new": False})]
    assert all(e.ts for e in events)  # when
    assert "intact" in run("audit", "verify", "--db", gallery_url).output


def test_the_settings_travel_with_a_copy_of_the_gallery(tmp_path, gallery_url):
    run("gallery", "init", "--roundtrip", "--db", tmp_path / "source.db")
    run("gallery", "copy", "--from", tmp_path / "source.db", "--to", gallery_url)
    assert "round-trip vectors at enrollment │ on" in run("gallery", "settings", "--db", gallery_url).output


def test_the_setting_and_its_event_are_one_transaction(tmp_path, monkeypatch):
    """A setting is never changed without its audit event: when the event cannot be written, the
    setting keeps its old value."""
    import gallery.sealed as sealed

    g = open_gallery(tmp_path / "g.db")

    def refuse(*args, **kwargs):
        raise RuntimeError("the audit log refused")

    monkeypatch.setattr(sealed.audit, "append_event", refuse)
    with pytest.raises(RuntimeError):
        set_roundtrip_at_enrollment(g, True, "alice")
    assert read_settings(g) == GallerySettings(roundtrip_at_enrollment=False)


def test_a_stored_value_of_the_wrong_type_is_an_error_not_a_default(tmp_path):
    g = open_gallery(tmp_path / "g.db")
    g.set_meta(ROUNDTRIP_AT_ENROLLMENT, "yes")
    with pytest.raises(ForensicsError, match="holds 'yes', not true or false"):
        read_settings(g)
    set_roundtrip_at_enrollment(g, True, "alice")  # the way out the message names
    assert read_settings(g).roundtrip_at_enrollment is True


def test_turning_it_on_for_a_gallery_with_faces_names_the_command_that_builds_them(tmp_path, data_dir):
    db = tmp_path / "g.db"
    photo = next((data_dir / "lfw" / "deepfunneled_250" / "Aaron_Peirsol").glob("*.jpg"))
    run("enroll", photo, "--subject-from", "stem", "--db", db, "--workers", 0)
    res = run("gallery", "settings", "--roundtrip", "--db", db)
    assert "1 faces are already enrolled" in res.output
    assert f"forensics gallery roundtrip --db {db}" in " ".join(res.output.split())


def test_enroll_refuses_up_front_without_the_models_the_setting_calls_for(tmp_path):
    """A caller of `forensics.enroll.enroll` that gives no round-trip models for a gallery that
    computes them at enrollment is refused before anything is enrolled (never a silent skip)."""
    g = open_gallery(tmp_path / "g.db")
    set_roundtrip_at_enrollment(g, True, "alice")
    with pytest.raises(ForensicsError, match="no models to compute them"):
        enroll(g, None, [EnrollItem(tmp_path / "a.jpg", "A")])
    assert g.repository().count_images() == 0
