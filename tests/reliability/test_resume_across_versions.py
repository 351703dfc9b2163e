"""A checkpoint written by an older version lacks the config fields added since: resuming it is no
config change while those fields keep their defaults (which reproduce the older behaviour)."""
from __future__ import annotations

from streamvae.config import to_dict
from streamvae.registry import load_config
from streamvae.rundir import config_changes


def _ocm(*sets: str) -> dict:
    return to_dict(load_config(None, ["learner.name=ocm", *sets]))


def _without(cfg: dict, *keys: str) -> dict:
    """The config as a version before ``keys`` existed wrote it."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    for key in keys:
        section, _, name = key.rpartition(".")
        (out[section] if section else out).pop(name)
    return out


def test_fields_added_since_the_checkpoint_at_their_defaults_are_no_change():
    saved = _without(_ocm(), "precision", "learner.bf16_min_rows")
    assert config_changes(saved, _ocm()) == {}


def test_a_new_field_set_away_from_its_default_is_a_change():
    saved = _without(_ocm(), "precision")
    assert config_changes(saved, _ocm("precision=bf16")) == {"precision": [None, "bf16"]}


def test_edits_of_fields_the_checkpoint_has_are_changes_as_before():
    changes = config_changes(_ocm(), _ocm("learner.lr=0.0003"))
    assert list(changes) == ["learner.lr"] and changes["learner.lr"][1] == 0.0003
